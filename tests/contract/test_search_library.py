"""SearchIndex contract for the asset library: reader keys, terms, orders and facets.

Runs on every index adapter (memory, SQLite FTS5, PostgreSQL, OpenSearch on osmem-server),
with the fixture of ``test_search_index``. The rule under test above all: a document a
caller may not read never appears, neither in hits nor in any facet count.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import attrs
import pytest

from studio9.ids import new_id
from studio9.metadata import InvalidSearch, SearchDocument, SearchHit, SearchIndex, SearchQuery
from studio9.metadata.domain import FACET_SIZE, name_key
from tests.contract import test_search_index as base
from tests.contract.test_search_index import ADA, BOB, NOW, _doc

#: The ``index`` fixture of the SearchIndex contract: every adapter.
index = base.index

CAROL = new_id(3_000)
FACETS = ("owner_id", "fields.asset_kind", "terms.tags", "kind")


def _asset(text: str = "", **changes: Any) -> SearchDocument:
    values: dict[str, Any] = {"kind": "asset", "readers": {f"u:{changes.get('owner_id', ADA)}"}}
    values.update(changes)
    return _doc(text, **values)


async def _search(index: SearchIndex, **query: Any) -> tuple[list[str], dict[str, dict[str, int]]]:
    page = await index.search(SearchQuery(**{"kind": "asset", "limit": 500, **query}))
    return [hit.id for hit in page.items], {k: dict(v) for k, v in page.facets.items()}


async def _pages(index: SearchIndex, **query: Any) -> list[SearchHit]:
    hits: list[SearchHit] = []
    cursor: str | None = None
    while True:
        page = await index.search(SearchQuery(**{"kind": "asset", **query, "cursor": cursor}))
        hits.extend(page.items)
        if page.next_cursor is None:
            return hits
        assert len(page.items) == query["limit"]
        cursor = page.next_cursor


async def test_a_caller_sees_and_counts_only_what_their_keys_may_read(index: SearchIndex) -> None:
    # Given assets readable through each kind of reader key, and one nobody else may read
    mine = _asset("quarterly report", owner_id=BOB, fields={"asset_kind": "table"}, terms={"tags": ["q1"]})
    group = _asset(
        "report", fields={"asset_kind": "model"}, terms={"tags": ["q1", "x"]}, readers={"u:A", "g:team"}
    )
    email = _asset(
        "report", fields={"asset_kind": "table"}, terms={"tags": ["y"]}, readers={"e:bob@example.org"}
    )
    project = _asset("report", owner_id=CAROL, fields={"asset_kind": "file"}, readers={"u:C", "p:proj"})
    hidden = _asset(
        "report secret", fields={"asset_kind": "secret"}, terms={"tags": ["hidden"]}, readers={"u:A"}
    )
    nobody = _asset("report", owner_id=CAROL, fields={"asset_kind": "orphan"}, readers=set())
    job = _doc("report", readers={f"u:{BOB}"})  # another kind: never in an asset query
    await index.upsert([mine, group, email, project, hidden, nobody, job])
    bob = {f"u:{BOB}", "g:team", "e:bob@example.org", "p:proj"}

    # When Bob searches with his keys
    ids, facets = await _search(index, readers=bob, facets=FACETS)
    # Then he sees and counts exactly the four he may read
    assert set(ids) == {mine.id, group.id, email.id, project.id}
    assert facets == {
        "owner_id": {ADA: 2, BOB: 1, CAROL: 1},
        "fields.asset_kind": {"table": 2, "model": 1, "file": 1},
        "terms.tags": {"q1": 2, "x": 1, "y": 1},
        "kind": {"asset": 4},
    }
    # And text matching a hidden document changes nothing
    ids, facets = await _search(index, text="secret", readers=bob, facets=FACETS)
    assert ids == []
    assert facets == {name: {} for name in FACETS}
    # And one key alone reaches one document
    assert (await _search(index, readers={"g:team"}))[0] == [group.id]
    # And a caller with no keys (or unknown ones) sees nothing
    assert await _search(index, readers=set(), facets=["owner_id"]) == ([], {"owner_id": {}})
    assert (await _search(index, readers={"u:nobody"}))[0] == []
    # And an administrator's query (no reader filter) sees and counts every asset
    ids, facets = await _search(index, facets=["fields.asset_kind"])
    assert set(ids) == {mine.id, group.id, email.id, project.id, hidden.id, nobody.id}
    assert facets["fields.asset_kind"] == {"table": 2, "model": 1, "file": 1, "secret": 1, "orphan": 1}


async def test_scopes_personal_and_shared(index: SearchIndex) -> None:
    own = _asset("a", owner_id=BOB)
    shared = _asset("a", readers={"u:A", f"u:{BOB}"})
    other = _asset("a", owner_id=CAROL)
    await index.upsert([own, shared, other])
    bob = {f"u:{BOB}"}
    assert (await _search(index, readers=bob, owner_id=BOB))[0] == [own.id]
    ids, facets = await _search(index, readers=bob, not_owner_id=BOB, facets=["owner_id"])
    assert (ids, facets) == ([shared.id], {"owner_id": {ADA: 1}})
    assert set((await _search(index, not_owner_id=ADA))[0]) == {own.id, other.id}


async def test_any_terms_match_one_value_of_a_list_and_combine(index: SearchIndex) -> None:
    both = _asset("x", fields={"asset_kind": "table"}, terms={"tags": ["q1", "sales"], "projects": ["P1"]})
    q1 = _asset("x", fields={"asset_kind": "model"}, terms={"tags": ["q1"], "projects": ["P2"]})
    bare = _asset("x")
    await index.upsert([both, q1, bare])
    assert set((await _search(index, any_terms={"tags": "q1"}))[0]) == {both.id, q1.id}
    assert (await _search(index, any_terms={"tags": "sales"}))[0] == [both.id]
    assert (await _search(index, any_terms={"tags": "q1", "projects": "P2"}))[0] == [q1.id]
    assert (await _search(index, any_terms={"tags": "q1"}, filters={"asset_kind": "table"}))[0] == [both.id]
    assert (await _search(index, any_terms={"tags": "Q1"}))[0] == []  # exact values
    assert (await _search(index, any_terms={"projects": "q1"}))[0] == []  # per key
    assert (await _search(index, any_terms={"tags": "q1=sales"}))[0] == []


async def test_terms_and_readers_follow_the_newest_document(index: SearchIndex) -> None:
    first = _asset("x", terms={"tags": ["old"]}, readers={"u:A", "g:old"})
    await index.upsert([first])
    newer = attrs.evolve(
        first, terms={"tags": ["new", "new"]}, readers={"g:new"}, updated_at=NOW + timedelta(1)
    )
    older = attrs.evolve(first, terms={"tags": ["stale"]}, readers={"g:stale"}, updated_at=NOW - timedelta(1))
    await index.upsert([newer])
    await index.upsert([older])  # a late replay changes nothing
    assert (await _search(index, readers={"g:old"}))[0] == []
    assert (await _search(index, readers={"g:stale"}))[0] == []
    assert (await _search(index, readers={"g:new"}, facets=["terms.tags"])) == (
        [first.id],
        {"terms.tags": {"new": 1}},
    )
    assert (await _search(index, any_terms={"tags": "old"}))[0] == []
    await index.delete([first.id])
    assert await _search(index, readers={"g:new"}, facets=["terms.tags"]) == ([], {"terms.tags": {}})


def _library(count: int) -> list[SearchDocument]:
    """Assets with tied update times and names (case, accents, none) to page through."""
    rng = random.Random(7)
    names = ["alpha", "Alpha", "beta", "Éclair", "eclair", "zeta", "", "ALPHA two", "Ω", "10", "9"]
    docs = []
    for i in range(count):
        name = rng.choice(names)
        fields = {"asset_kind": rng.choice(["table", "model"])}
        if name:
            fields["name"] = name
        docs.append(
            _asset(
                " ".join(["common"] + ["odd" if i % 2 else "even"] * (1 + i % 3)),
                id=new_id(10_000 + i),
                owner_id=rng.choice([ADA, BOB]),
                fields=fields,
                updated_at=NOW + timedelta(seconds=rng.randrange(5), microseconds=rng.choice([0, 1, 999])),
                readers={rng.choice(["u:A", "g:team", "p:proj"])},
            )
        )
    return docs


def _expected(docs: list[SearchDocument], order: str) -> list[str]:
    if order == "updated":
        ranked = sorted(docs, key=lambda d: (d.updated_at, d.id), reverse=True)
    elif order == "name":
        ranked = sorted(docs, key=lambda d: (name_key(d.fields), d.id))
    else:
        ranked = sorted(docs, key=lambda d: d.id, reverse=True)
    return [d.id for d in ranked]


@pytest.mark.parametrize("order", ["newest", "updated", "name", "relevance"])
async def test_every_order_pages_without_repeats_or_gaps(index: SearchIndex, order: str) -> None:
    docs = _library(40)
    await index.upsert(docs)
    keys = {"g:team", "p:proj"}
    readable = [d for d in docs if d.readers & keys]
    hits = await _pages(index, order=order, readers=keys, limit=7)
    assert [h.id for h in hits] == _expected(readable, order)
    # And with text, which filters but does not reorder (but under relevance)
    odd = [d for d in readable if "odd" in d.text]
    hits = await _pages(index, order=order, readers=keys, text="odd", limit=4)
    if order == "relevance":
        scored = sorted(odd, key=lambda d: (d.text.split().count("odd"), d.id), reverse=True)
        assert [h.id for h in hits] == [d.id for d in scored]
        assert all(h.score is not None for h in hits)
    else:
        assert [h.id for h in hits] == _expected(odd, order)
        assert all(h.score is None for h in hits)


async def test_name_order_folds_case_and_treats_no_name_as_empty(index: SearchIndex) -> None:
    docs = [
        _asset(id=new_id(1_000), fields={"name": "beta"}),
        _asset(id=new_id(2_000), fields={"name": "Alpha"}),
        _asset(id=new_id(3_000)),
        _asset(id=new_id(4_000), fields={"name": "alpha"}),
    ]
    await index.upsert(docs)
    ids = (await _search(index, order="name"))[0]
    assert ids == [docs[2].id, docs[1].id, docs[3].id, docs[0].id]


async def test_facets_count_the_whole_match_not_the_page_and_keep_the_top_values(
    index: SearchIndex,
) -> None:
    # s00 and t00 on 1 document, s01 and t01 on 2 ... , t69 on all: the top 50 by count
    # split a tie (s44 is in, t44 is not), which the lower value wins.
    docs = []
    for i in range(90):
        tags = [f"{p}{n:02d}" for n in range(69) for p in "st" if i <= n] + ["t69"]
        docs.append(_asset("z", terms={"tags": tags}, fields={"asset_kind": "table"}))
    await index.upsert(docs)
    first = await index.search(
        SearchQuery(kind="asset", limit=10, facets=["terms.tags", "fields.asset_kind"])
    )
    counts = Counter(tag for d in docs for tag in d.terms["tags"])
    expected = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:FACET_SIZE])
    assert dict(first.facets["terms.tags"]) == expected
    assert list(first.facets["terms.tags"]) == list(expected)  # in order
    assert "s44" in expected and "t44" not in expected
    assert dict(first.facets["fields.asset_kind"]) == {"table": 90}
    second = await index.search(
        SearchQuery(
            kind="asset", limit=10, facets=["terms.tags", "fields.asset_kind"], cursor=first.next_cursor
        )
    )
    assert second.facets == first.facets
    # Facets may change between pages; the cursor does not depend on them
    third = await index.search(SearchQuery(kind="asset", limit=10, cursor=second.next_cursor))
    assert third.facets == {}
    assert len(third.items) == 10


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"order": "oldest"}, "order"),
        ({"facets": ["tags"]}, "facets"),
        ({"facets": ["fields.a.b"]}, "facets"),
        ({"facets": ["terms."]}, "facets"),
        ({"facets": "owner_id"}, "facets"),
        ({"facets": [f"terms.k{i}" for i in range(20)]}, "facets"),
        ({"readers": "u:A"}, "readers"),
        ({"readers": {""}}, "readers"),
        ({"readers": {f"u:{i}" for i in range(10_001)}}, "readers"),
        ({"any_terms": {"a.b": "x"}}, "any_terms"),
        ({"any_terms": {"tags": 3}}, "any_terms"),
        ({"not_owner_id": 3}, "not_owner_id"),
    ],
)
def test_invalid_library_queries_name_the_field(values: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        SearchQuery(kind="asset", **values)
    assert caught.value.details["field"] == field


async def test_cursors_are_bound_to_order_scope_readers_and_terms(index: SearchIndex) -> None:
    await index.upsert([_asset("w", readers={"g:team"}, terms={"tags": ["a"]}) for _ in range(3)])
    base: dict[str, Any] = {"kind": "asset", "limit": 1, "readers": {"g:team"}}
    cursor = (await index.search(SearchQuery(**base, order="updated"))).next_cursor
    assert cursor is not None
    changes: list[dict[str, Any]] = [
        {"order": "name"},
        {"order": "newest"},
        {"order": "updated", "readers": {"g:team", "u:A"}},
        {"order": "updated", "not_owner_id": BOB},
        {"order": "updated", "any_terms": {"tags": "a"}},
    ]
    for changed in changes:
        with pytest.raises(InvalidSearch, match="different query"):
            await index.search(SearchQuery(**{**base, **changed, "cursor": cursor}))
    page = await index.search(SearchQuery(**base, order="updated", facets=["owner_id"], cursor=cursor))
    assert len(page.items) == 1
