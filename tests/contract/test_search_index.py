"""SearchIndex contract, run against every index adapter: memory, SQLite FTS5, PostgreSQL, OpenSearch.

OpenSearch runs on osmem-server (an in-memory server speaking its REST API): a fresh clone
of the cluster per test, and an index name of its own all the same.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.ids import new_id
from studio9.metadata import InvalidSearch, SearchDocument, SearchHit, SearchIndex, SearchQuery

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADA, BOB = new_id(1_000), new_id(2_000)
#: The production scheme table, with the OpenSearch adapter in it whether or not bootstrap has it yet.
INDEXES = {**bootstrap.INDEXES, "opensearch": "adapters.search_index.opensearch:OpenSearchSearchIndex"}


@contextlib.asynccontextmanager
async def opensearch_index(server_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """An index on ``server_url`` (osmem's ``http://host:port``), migrated as ``studio9 migrate`` does."""
    address = server_url.split("://", 1)[1].rstrip("/")
    url = f"opensearch://{address}/?index=studio9-test-{uuid.uuid4().hex[:12]}"
    async with bootstrap.open_adapter(
        INDEXES, url, setting="STUDIO9_INDEX_URL", options=AdapterOptions(data_dir=tmp_path)
    ) as adapter:
        await adapter.ensure_schema()
        yield adapter


@pytest.fixture(params=["memory", "sqlite", "postgresql", "opensearch"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "opensearch":
        async with opensearch_index(request.getfixturevalue("osmem_url"), tmp_path) as adapter:
            yield adapter
        return
    if request.param == "memory":
        database_url, index_url = "memory://", "memory://"
    elif request.param == "sqlite":
        database_url, index_url = f"sqlite+aiosqlite:///{tmp_path}/contract.db", "sql://"
    else:
        database_url, index_url = request.getfixturevalue("postgres_url"), "sql://"
    bootstrap.migrate(Settings(database_url=database_url, data_dir=tmp_path))
    async with contextlib.AsyncExitStack() as stack:
        database = await stack.enter_async_context(
            bootstrap.open_adapter(
                bootstrap.DATABASES,
                database_url,
                setting="STUDIO9_DATABASE_URL",
                options=AdapterOptions(data_dir=tmp_path),
            )
        )
        yield await stack.enter_async_context(
            bootstrap.open_adapter(
                bootstrap.INDEXES,
                index_url,
                setting="STUDIO9_INDEX_URL",
                options=AdapterOptions(data_dir=tmp_path, database=database),
            )
        )


def _doc(text: str = "", **changes: Any) -> SearchDocument:
    values: dict[str, Any] = {
        "id": new_id(),
        "kind": "job",
        "owner_id": ADA,
        "text": text,
        "fields": {},
        "updated_at": NOW,
        "body": {},
    }
    values.update(changes)
    return SearchDocument(**values)


async def _ids(index: SearchIndex, **query: Any) -> list[str]:
    page = await index.search(SearchQuery(**{"kind": "job", "limit": 500, **query}))
    return [hit.id for hit in page.items]


async def _all_pages(index: SearchIndex, **query: Any) -> list[SearchHit]:
    hits: list[SearchHit] = []
    cursor: str | None = None
    while True:
        page = await index.search(SearchQuery(**{"kind": "job", **query, "cursor": cursor}))
        hits.extend(page.items)
        if page.next_cursor is None:
            return hits
        assert len(page.items) == query["limit"]
        cursor = page.next_cursor


async def test_a_document_matches_when_it_has_every_word_in_any_case(index: SearchIndex) -> None:
    profile = _doc("data.profile failed: Column 'Age' has NULLs")
    train = _doc("model.train completed, accuracy 0.93")
    await index.upsert([profile, train])
    assert await _ids(index, text="DATA profile") == [profile.id]
    assert await _ids(index, text="profile age nulls") == [profile.id]
    assert await _ids(index, text="data train") == []  # every word, not any
    assert await _ids(index, text="prof") == []  # whole words only
    assert await _ids(index, text="model.TRAIN 0.93") == [train.id]


async def test_accents_and_case_are_kept_apart_from_stemming(index: SearchIndex) -> None:
    dessert = _doc("Crème BRÛLÉE recipes running")
    await index.upsert([dessert])
    assert await _ids(index, text="brûlée CRÈME") == [dessert.id]
    assert await _ids(index, text="creme") == []  # no accent folding
    assert await _ids(index, text="recipe") == []  # no stemming
    assert await _ids(index, text="run") == []
    greek = _doc("logos: λόγος")
    await index.upsert([greek])
    assert await _ids(index, text="ΛΌΓΟΣ") == [greek.id]  # final sigma folds like capital sigma


async def test_hits_carry_fields_and_body_and_a_score_only_for_text(index: SearchIndex) -> None:
    doc = _doc("profile", fields={"status": "failed"}, body={"id": "x", "progress": 0.5, "outputs": [1, 2]})
    await index.upsert([doc])
    [listed] = (await index.search(SearchQuery(kind="job"))).items
    assert (listed.id, listed.kind, listed.owner_id) == (doc.id, "job", ADA)
    assert listed.fields == {"status": "failed"}
    assert listed.body == {"id": "x", "progress": 0.5, "outputs": [1, 2]}
    assert listed.score is None
    [found] = (await index.search(SearchQuery(kind="job", text="profile"))).items
    assert found.score is not None
    assert found.score > 0


async def test_filters_match_fields_exactly_and_all_together(index: SearchIndex) -> None:
    failed = _doc("a", fields={"type": "data.profile", "status": "failed"})
    done = _doc("a", fields={"type": "data.profile", "status": "completed"})
    other = _doc("a", fields={"type": "model.train", "status": "failed"})
    bare = _doc("a")
    await index.upsert([failed, done, other, bare])
    assert await _ids(index, filters={"status": "failed", "type": "data.profile"}) == [failed.id]
    assert set(await _ids(index, filters={"status": "failed"})) == {failed.id, other.id}
    assert await _ids(index, filters={"status": "FAILED"}) == []
    assert await _ids(index, filters={"missing": "x"}) == []
    assert await _ids(index, text="a", filters={"type": "model.train"}) == [other.id]


async def test_owner_scoping_and_admins_see_every_owner(index: SearchIndex) -> None:
    mine, theirs = _doc("report", owner_id=ADA), _doc("report", owner_id=BOB)
    await index.upsert([mine, theirs])
    assert await _ids(index, text="report", owner_id=ADA) == [mine.id]
    assert await _ids(index, owner_id=BOB) == [theirs.id]
    assert set(await _ids(index, text="report")) == {mine.id, theirs.id}


async def test_kinds_are_separate_and_clear_removes_one_kind(index: SearchIndex) -> None:
    job, asset = _doc("shared words"), _doc("shared words", kind="asset")
    await index.upsert([job, asset])
    assert await _ids(index, text="shared") == [job.id]
    assert await _ids(index, kind="asset", text="shared") == [asset.id]
    await index.clear("job")
    assert await _ids(index) == []
    assert await _ids(index, text="shared") == []
    assert await _ids(index, kind="asset", text="shared") == [asset.id]


async def test_upsert_is_idempotent(index: SearchIndex) -> None:
    docs = [_doc(f"replayed item{i}") for i in range(3)]
    await index.upsert(docs)
    await index.upsert(docs)
    await index.upsert([])
    assert sorted(await _ids(index, text="replayed")) == sorted(d.id for d in docs)
    assert len(await _ids(index)) == 3


async def test_newer_document_wins_and_an_older_one_is_ignored(index: SearchIndex) -> None:
    first = _doc("queued alpha", fields={"status": "queued"}, body={"v": 1})
    newer = SearchDocument(
        id=first.id,
        kind="job",
        owner_id=BOB,
        text="failed omega",
        fields={"status": "failed"},
        updated_at=NOW + timedelta(seconds=2),
        body={"v": 2},
    )
    older = _doc(
        "running beta", id=first.id, fields={"status": "running"}, updated_at=NOW + timedelta(seconds=1)
    )
    await index.upsert([first])
    await index.upsert([newer])
    await index.upsert([older])  # an outbox replay arriving late
    [hit] = (await index.search(SearchQuery(kind="job"))).items
    assert (hit.owner_id, hit.fields, hit.body) == (BOB, {"status": "failed"}, {"v": 2})
    assert await _ids(index, text="omega") == [first.id]
    assert await _ids(index, text="alpha") == []  # the full-text index followed the update
    assert await _ids(index, text="beta") == []


async def test_within_one_batch_the_later_of_equal_times_wins(index: SearchIndex) -> None:
    doc_id = new_id()
    batch = [
        _doc("one", id=doc_id, updated_at=NOW + timedelta(seconds=1)),
        _doc("two", id=doc_id, updated_at=NOW + timedelta(seconds=3)),
        _doc("three", id=doc_id, updated_at=NOW + timedelta(seconds=3)),
        _doc("four", id=doc_id, updated_at=NOW + timedelta(seconds=2)),
    ]
    await index.upsert(batch)
    assert await _ids(index, text="three") == [doc_id]
    assert await _ids(index, text="two") == await _ids(index, text="four") == []
    await index.upsert([_doc("five", id=doc_id, updated_at=NOW + timedelta(seconds=3))])
    assert await _ids(index, text="five") == [doc_id]  # equal time: the later call wins


async def test_delete_removes_documents_and_ignores_unknown_ids(index: SearchIndex) -> None:
    keep, drop = _doc("common keep"), _doc("common drop")
    await index.upsert([keep, drop])
    await index.delete([drop.id, "unknown", drop.id])
    await index.delete([])
    assert await _ids(index, text="common") == [keep.id]
    assert await _ids(index, text="drop") == []
    assert await _ids(index) == [keep.id]


async def test_words_of_removed_documents_never_match_later_ones(index: SearchIndex) -> None:
    # SQLite reuses the highest rowid after a delete: a stale full-text entry would show here.
    deleted = _doc("vanished deleted")
    await index.upsert([deleted])
    await index.delete([deleted.id])
    after_delete = _doc("arrived")
    await index.upsert([after_delete])
    cleared = _doc("vanished cleared")
    await index.upsert([cleared])
    await index.clear("job")
    after_clear = _doc("arrived again")
    await index.upsert([after_clear])
    assert await _ids(index, text="vanished") == []
    assert await _ids(index, text="arrived") == [after_clear.id]


async def test_pages_without_text_go_newest_first_with_no_repeats_or_gaps(index: SearchIndex) -> None:
    docs = [_doc(f"item {i}", id=new_id(10_000 + i)) for i in range(25)]
    await index.upsert(list(reversed(docs)))
    pages = []
    cursor = None
    for _ in range(3):
        page = await index.search(SearchQuery(kind="job", limit=10, cursor=cursor))
        pages.append([hit.id for hit in page.items])
        cursor = page.next_cursor
    assert [len(p) for p in pages] == [10, 10, 5]
    assert cursor is None
    assert [i for p in pages for i in p] == [d.id for d in reversed(docs)]


async def test_an_exactly_full_last_page_has_no_next_cursor(index: SearchIndex) -> None:
    await index.upsert([_doc("x") for _ in range(4)])
    first = await index.search(SearchQuery(kind="job", limit=2))
    assert first.next_cursor is not None
    second = await index.search(SearchQuery(kind="job", limit=2, cursor=first.next_cursor))
    assert len(second.items) == 2
    assert second.next_cursor is None


async def test_pages_by_relevance_cover_every_match_once(index: SearchIndex) -> None:
    # Scores tie in groups, so the id breaks ties across page boundaries.
    docs = [_doc(" ".join(["needle"] * (1 + i % 3) + [f"hay{i}"])) for i in range(25)]
    await index.upsert([*docs, _doc("no match here")])
    paged = await _all_pages(index, text="needle", limit=10)
    whole = (await index.search(SearchQuery(kind="job", text="needle", limit=100))).items
    assert [h.id for h in paged] == [h.id for h in whole]
    assert sorted(h.id for h in paged) == sorted(d.id for d in docs)
    keys = [(h.score, h.id) for h in paged]
    assert keys == sorted(keys, reverse=True)


async def test_more_occurrences_rank_first_then_newest(index: SearchIndex) -> None:
    often = _doc("alpha alpha alpha beta", id=new_id(1_000))
    once = _doc("alpha beta gamma delta", id=new_id(2_000))
    once_newer = _doc("alpha beta gamma delta", id=new_id(3_000))
    await index.upsert([often, once, once_newer])
    assert await _ids(index, text="alpha") == [often.id, once_newer.id, once.id]


async def test_bad_cursors_raise_invalid_search(index: SearchIndex) -> None:
    await index.upsert([_doc("word") for _ in range(3)])
    cursor = (await index.search(SearchQuery(kind="job", limit=1))).next_cursor
    assert cursor is not None
    text_cursor = (await index.search(SearchQuery(kind="job", text="word", limit=1))).next_cursor
    for bad in ["garbage!", "eyJ4IjoxfQ", "bm90IGpzb24", "", cursor[:-3]]:
        with pytest.raises(InvalidSearch):
            await index.search(SearchQuery(kind="job", cursor=bad))
    for other in [
        SearchQuery(kind="asset", cursor=cursor),
        SearchQuery(kind="job", owner_id=ADA, cursor=cursor),
        SearchQuery(kind="job", text="word", cursor=cursor),
        SearchQuery(kind="job", cursor=text_cursor),
    ]:
        with pytest.raises(InvalidSearch, match="different query"):
            await index.search(other)


async def test_invalid_query_values_raise_invalid_search(index: SearchIndex) -> None:
    cases: list[dict[str, Any]] = [
        {"kind": "Job; DROP"},
        {"kind": "job", "filters": {"status') OR 1=1 --": "x"}},
        {"kind": "job", "filters": {"a.b": "x"}},
        {"kind": "job", "limit": 0},
        {"kind": "job", "limit": 100_000},
        {"kind": "job", "text": "x" * 5_000},
        {"kind": "job", "text": " ".join(f"w{i}" for i in range(100))},
    ]
    for values in cases:
        with pytest.raises(InvalidSearch):
            await index.search(SearchQuery(**values))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"alpha" OR beta*', {"both"}),  # the words alpha, or, beta: only "both" has all three
        ("NEAR(", set()),
        ("NEAR(alpha beta)", set()),
        ("-alpha", {"both", "alpha"}),
        ("terms:alpha", set()),  # not a column filter
        ("alpha:", {"both", "alpha"}),
        ("^alpha", {"both", "alpha"}),
        ("alpha AND NOT beta", set()),
        ("'; DROP TABLE search_documents; --", set()),
        ('a"b\\c %_', set()),
        ("*", {"both", "alpha", "beta"}),  # no words: no text filter
    ],
)
async def test_hostile_text_is_only_words(index: SearchIndex, text: str, expected: set[str]) -> None:
    docs = {
        "both": _doc("alpha or beta", id=new_id(1_000)),
        "alpha": _doc("alpha gamma", id=new_id(2_000)),
        "beta": _doc("beta", id=new_id(3_000)),
    }
    await index.upsert(list(docs.values()))
    found = set(await _ids(index, text=text))
    assert found == {docs[name].id for name in expected}
    assert len(await _ids(index)) == 3  # the table is still there


@pytest.mark.parametrize("text", [None, "", "   ", "!!! ... ---"])
async def test_text_without_words_does_not_filter(index: SearchIndex, text: str | None) -> None:
    docs = [_doc("one", id=new_id(1_000)), _doc("two", id=new_id(2_000))]
    await index.upsert(docs)
    page = await index.search(SearchQuery(kind="job", text=text))
    assert [h.id for h in page.items] == [docs[1].id, docs[0].id]
    assert all(h.score is None for h in page.items)


async def test_a_thousand_documents_upsert_in_one_call(index: SearchIndex) -> None:
    docs = [
        _doc(f"bulk item{i} {'even' if i % 2 == 0 else 'odd'}", fields={"parity": str(i % 2)})
        for i in range(1_000)
    ]
    await index.upsert(docs)
    await index.upsert(docs)  # and again, all of them conflicts
    even = await index.search(SearchQuery(kind="job", text="bulk even", limit=500))
    assert len(even.items) == 500
    assert even.next_cursor is None
    assert len(await _ids(index, filters={"parity": "1"})) == 500
    assert await _ids(index, text="item999") == [docs[999].id]
