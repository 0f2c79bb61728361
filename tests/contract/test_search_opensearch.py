"""What only the OpenSearch SearchIndex has: its URL, versioned schema, errors and write races.

Runs on osmem-server (a fresh clone of the in-memory cluster per test); the contract every
index adapter shares is in ``test_search_index.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import opensearchpy
import pytest
from opensearchpy import AsyncOpenSearch

from adapters.search_index.opensearch import OpenSearchSearchIndex
from adapters.search_index.opensearch_mapping import (
    MAPPINGS,
    SCHEMA_VERSION,
    index_body,
    index_name,
    migrate_schema,
    search_body,
    source,
)
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.metadata import SearchQuery
from studio9.urls import AdapterURL
from tests.contract.test_search_index import INDEXES, NOW, _doc, _ids, opensearch_index

SECRET = "s3cret-Pa55"  # a test credential that must never show up


@pytest.fixture
async def client(osmem_url: str) -> AsyncIterator[AsyncOpenSearch]:
    raw = AsyncOpenSearch(hosts=[osmem_url])
    yield raw
    await raw.close()


@pytest.fixture
async def index(osmem_url: str, tmp_path: Path) -> AsyncIterator[OpenSearchSearchIndex]:
    async with opensearch_index(osmem_url, tmp_path) as adapter:
        yield adapter


@pytest.fixture
def alias() -> str:
    return f"studio9-test-{uuid.uuid4().hex[:12]}"


#: The migration tests move the current schema ("v1" in their names) to a next one ("v2").
CURRENT, NEXT = SCHEMA_VERSION, SCHEMA_VERSION + 1


def _v2_body() -> dict[str, Any]:
    """The next schema version: the current one plus a field."""
    properties = {**MAPPINGS["properties"], "title": {"type": "keyword"}}
    return index_body({**MAPPINGS, "_meta": {"studio9_schema": NEXT}, "properties": properties})


@contextlib.contextmanager
def _silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _all_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(getattr(exc, "details", {}))


# -- schema --------------------------------------------------------------------------------


async def test_ensure_schema_puts_a_strict_versioned_index_behind_the_alias(
    index: OpenSearchSearchIndex, client: AsyncOpenSearch
) -> None:
    # Given a migrated index (the fixture ran ensure_schema)
    current = index_name(index.alias, SCHEMA_VERSION)
    # Then the alias points at the versioned index, whose mapping is strict
    assert await client.indices.get_alias(name=index.alias) == {current: {"aliases": {index.alias: {}}}}
    mapping = (await client.indices.get_mapping(index=current))[current]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["counts"] == {"type": "rank_features"}
    await index.check_schema()
    # And a document with an unknown top-level field is refused
    with pytest.raises(opensearchpy.RequestError) as refused:
        await client.index(index=index.alias, id="x", body={"id": "x", "surprise": 1})
    assert refused.value.error == "strict_dynamic_mapping_exception"
    # And running it again changes nothing
    doc = _doc("kept")
    await index.upsert([doc])
    await index.ensure_schema()
    assert await _ids(index, text="kept") == [doc.id]


async def test_migration_reindexes_and_swaps_the_alias_while_reads_go_on(
    client: AsyncOpenSearch, alias: str
) -> None:
    # Given documents in schema v1
    v1 = await migrate_schema(client, alias, version=CURRENT, body=index_body(), timeout=60)
    index = OpenSearchSearchIndex(client, alias=alias)
    docs = [_doc(f"migrated item{i}", fields={"n": str(i % 2)}) for i in range(40)]
    await index.upsert(docs)
    expected = await _ids(index, text="migrated")
    assert len(expected) == 40

    # When v2 replaces it while a reader keeps searching
    seen: list[list[str]] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            seen.append(await _ids(index, text="migrated"))
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    try:
        v2 = await migrate_schema(client, alias, version=NEXT, body=_v2_body(), timeout=60)
    finally:
        done.set()
        await reader
    # Then every read, before, during and after the swap, saw every document in order
    assert seen
    assert all(ids == expected for ids in seen)
    assert await client.indices.get_alias(name=alias) == {v2: {"aliases": {alias: {}}}}
    assert not await client.indices.exists(index=v1)
    odd = {doc.id for doc in docs[1::2]}
    assert await _ids(index, text="migrated", filters={"n": "1"}) == [i for i in expected if i in odd]
    # And writes go to v2, which has the new field
    await index.upsert([_doc("after migration")])
    assert len(await _ids(index, text="after")) == 1
    assert "title" in (await client.indices.get_mapping(index=v2))[v2]["mappings"]["properties"]
    # And this Studio9 (an older schema) refuses to move the alias back
    with pytest.raises(ConfigError, match="cannot migrate"):
        await index.ensure_schema()
    with pytest.raises(ConfigError, match="studio9 migrate"):
        await index.check_schema()


def _schema_v1_body() -> dict[str, Any]:
    """Schema v1 as Studio9 wrote it before the library: no readers, terms nor sort name, and
    ``updated_at`` a ``date``."""
    properties = {
        key: value
        for key, value in MAPPINGS["properties"].items()
        if key not in ("readers", "term_values", "sort_name")
    }
    properties["updated_at"] = {"type": "date"}
    return index_body({**MAPPINGS, "_meta": {"studio9_schema": 1}, "properties": properties})


async def test_v1_documents_move_to_the_library_schema_and_stay_searchable(
    client: AsyncOpenSearch, alias: str
) -> None:
    # Given a job document written by schema v1 (micro-seconds in updated_at, no new fields)
    await migrate_schema(client, alias, version=1, body=_schema_v1_body(), timeout=60)
    old = _doc("migrated job", fields={"status": "done"}, updated_at=NOW + timedelta(microseconds=7))
    v1_source = {
        key: value for key, value in source(old).items() if key not in ("readers", "term_values", "sort_name")
    }
    await client.index(index=alias, id=old.id, body=v1_source, refresh=True)
    # When this Studio9 migrates
    index = OpenSearchSearchIndex(client, alias=alias)
    await index.ensure_schema()
    await index.check_schema()
    newer = _doc("migrated job", updated_at=NOW + timedelta(microseconds=8))
    await index.upsert([newer])
    # Then the old document is found, ordered to the microsecond, and named as ""
    assert await _ids(index, text="migrated", order="updated") == [newer.id, old.id]
    assert await _ids(index, order="name") == sorted([old.id, newer.id])
    page = await index.search(SearchQuery(kind="job", order="updated", limit=1))
    rest = await index.search(SearchQuery(kind="job", order="updated", limit=1, cursor=page.next_cursor))
    assert [h.id for h in [*page.items, *rest.items]] == [newer.id, old.id]
    # And no reader filter lets it through
    assert await _ids(index, readers={f"u:{old.owner_id}"}) == []


def test_the_reader_filter_is_part_of_the_query_that_the_aggregations_count() -> None:
    query = SearchQuery(kind="asset", readers={"u:A", "g:B"}, facets=["owner_id", "terms.tags"])
    body = search_body(query, None)
    assert "post_filter" not in body
    assert {"terms": {"readers": ["g:B", "u:A"]}} in body["query"]["bool"]["filter"]
    assert set(body["aggs"]) == {"f0", "f1"}
    assert body["aggs"]["f1"]["terms"]["include"] == "tags=.*"


async def test_a_failed_reindex_leaves_the_old_version_behind_the_alias_and_writable(
    client: AsyncOpenSearch, alias: str
) -> None:
    v1 = await migrate_schema(client, alias, version=CURRENT, body=index_body(), timeout=60)
    index = OpenSearchSearchIndex(client, alias=alias)
    doc = _doc("survivor")
    await index.upsert([doc])
    # A v2 whose mapping cannot take v1's documents
    properties = {**MAPPINGS["properties"], "updated_at": {"type": "integer"}}
    broken = index_body({**MAPPINGS, "properties": properties})
    with pytest.raises(BackendUnavailable, match="did not complete: 1 failures"):
        await migrate_schema(client, alias, version=NEXT, body=broken, timeout=60)
    assert list(await client.indices.get_alias(name=alias)) == [v1]
    await index.upsert([_doc("still writable")])
    assert len(await _ids(index, text="still")) == 1
    assert await _ids(index, text="survivor") == [doc.id]


async def test_an_interrupted_migration_is_finished_by_running_it_again(
    client: AsyncOpenSearch, alias: str
) -> None:
    # An old version left without the alias, as after a crash between the swap and the delete
    await client.indices.create(index=index_name(alias, CURRENT), body=index_body())
    await migrate_schema(client, alias, version=NEXT, body=_v2_body(), timeout=60)
    assert not await client.indices.exists(index=index_name(alias, CURRENT))
    assert list(await client.indices.get_alias(name=alias)) == [index_name(alias, NEXT)]


async def test_a_plain_index_in_the_alias_place_is_a_config_error(
    client: AsyncOpenSearch, alias: str
) -> None:
    await client.indices.create(index=alias, body={})
    with pytest.raises(ConfigError, match="not an alias"):
        await migrate_schema(client, alias, version=CURRENT, body=index_body(), timeout=60)


async def test_without_migration_writes_fail_and_create_nothing(client: AsyncOpenSearch, alias: str) -> None:
    index = OpenSearchSearchIndex(client, alias=alias)
    with pytest.raises(BackendUnavailable, match="studio9 migrate"):
        await index.upsert([_doc("lost")])
    with pytest.raises(BackendUnavailable, match="studio9 migrate"):
        await index.search(SearchQuery(kind="job", text="lost"))
    with pytest.raises(ConfigError, match="studio9 migrate"):
        await index.check_schema()
    assert not await client.indices.exists(index=alias)  # no dynamically mapped index appeared


async def test_writes_during_a_migration_are_unavailable_not_lost(
    index: OpenSearchSearchIndex, client: AsyncOpenSearch
) -> None:
    current = index_name(index.alias, SCHEMA_VERSION)
    await client.indices.put_settings(index=current, body={"index": {"blocks": {"write": True}}})
    with pytest.raises(BackendUnavailable, match="read-only"):
        await index.upsert([_doc("blocked")])


# -- writes --------------------------------------------------------------------------------


async def test_cleared_or_deleted_documents_can_be_written_again_at_any_time(
    index: OpenSearchSearchIndex,
) -> None:
    # External versions would keep a tombstone that refuses these writes for 60 seconds.
    doc = _doc("reindexed")
    await index.upsert([doc])
    await index.clear("job")
    await index.upsert([doc])  # a full reindex after clear: the same updated_at
    assert await _ids(index, text="reindexed") == [doc.id]
    await index.delete([doc.id])
    older = _doc("older", id=doc.id, updated_at=NOW - timedelta(days=1))
    await index.upsert([older])  # nothing stored any more, so nothing is newer
    assert await _ids(index, text="older") == [doc.id]


async def test_concurrent_writers_of_the_same_documents_end_with_the_newest(
    index: OpenSearchSearchIndex,
) -> None:
    ids = [_doc().id for _ in range(20)]
    versions = [
        [_doc(f"version{v}", id=doc_id, updated_at=NOW + timedelta(seconds=v)) for doc_id in ids]
        for v in range(6)
    ]
    await asyncio.gather(*(index.upsert(batch) for batch in reversed(versions)))
    assert sorted(await _ids(index, text="version5")) == sorted(ids)
    assert await _ids(index, text="version4") == []


async def test_scores_are_exact_occurrence_counts_beyond_rank_feature_precision(
    index: OpenSearchSearchIndex,
) -> None:
    # rank_features keep 9 significant bits: 601 alone would be stored as 600.
    counts = [1, 511, 512, 600, 601, 262_145]
    docs = [_doc(" ".join(["tally"] * n)) for n in counts]
    await index.upsert(docs)
    page = await index.search(SearchQuery(kind="job", text="tally"))
    assert [(h.id, h.score) for h in page.items] == [
        (d.id, float(n)) for d, n in sorted(zip(docs, counts, strict=True), key=lambda p: -p[1])
    ]


async def test_words_longer_than_any_query_are_not_indexed(index: OpenSearchSearchIndex) -> None:
    long_word = "x" * 5_000  # a query cannot hold it (1000 characters at most)
    doc = _doc(f"short {long_word}")
    await index.upsert([doc])
    assert await _ids(index, text="short") == [doc.id]


# -- URL, errors, credentials --------------------------------------------------------------


async def test_ping_on_a_dead_port_is_unavailable_without_the_password(tmp_path: Path) -> None:
    url = AdapterURL.parse(f"opensearch://admin:{SECRET}@127.0.0.1:{_free_port()}/?index=x")
    index = OpenSearchSearchIndex.from_url(url, AdapterOptions(timeout=2, data_dir=tmp_path))
    try:
        with anyio.fail_after(2), pytest.raises(BackendUnavailable) as caught:
            await index.ping()
    finally:
        await index.aclose()
        await index.aclose()  # idempotent
    assert SECRET not in _all_text(caught.value)
    assert SECRET not in repr(index)


async def test_a_server_that_never_answers_is_unavailable_within_the_timeout(tmp_path: Path) -> None:
    with _silent_port() as port:
        url = AdapterURL.parse(f"opensearch+https://admin:{SECRET}@127.0.0.1:{port}/?verify_certs=false")
        index = OpenSearchSearchIndex.from_url(url, AdapterOptions(timeout=0.5, data_dir=tmp_path))
        started = time.monotonic()
        try:
            with pytest.raises(BackendUnavailable) as caught:
                await index.search(SearchQuery(kind="job", text="anything"))
        finally:
            await index.aclose()
    assert time.monotonic() - started < 2
    assert SECRET not in _all_text(caught.value)


async def test_startup_check_names_the_setting_but_not_the_password(tmp_path: Path) -> None:
    url = f"opensearch+https://admin:{SECRET}@127.0.0.1:{_free_port()}/?verify_certs=false"
    with pytest.raises(ConfigError) as caught:
        async with bootstrap.open_adapter(
            INDEXES, url, setting="STUDIO9_INDEX_URL", options=AdapterOptions(timeout=2, data_dir=tmp_path)
        ):
            pass
    assert caught.value.setting == "STUDIO9_INDEX_URL"
    assert SECRET not in _all_text(caught.value)


async def test_errors_from_a_live_server_carry_no_credentials(osmem_url: str, tmp_path: Path) -> None:
    address = osmem_url.split("://", 1)[1].rstrip("/")
    url = AdapterURL.parse(f"opensearch://admin:{SECRET}@{address}/?index=never-migrated")
    index = OpenSearchSearchIndex.from_url(url, AdapterOptions(data_dir=tmp_path))
    try:
        await index.ping()
        with pytest.raises(BackendUnavailable) as caught:
            await index.search(SearchQuery(kind="job"))
    finally:
        await index.aclose()
    assert SECRET not in _all_text(caught.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("opensearch://h/?shards=3", "unknown opensearch option"),
        ("opensearch://h/?refresh=false", "refresh must be"),
        ("opensearch://h/?index=Upper", "index name"),
        ("opensearch://h/?index=_hidden", "index name"),
        ("opensearch+https://h/?verify_certs=maybe", "verify_certs"),
        ("opensearch://:pw@h/", "user name"),
    ],
)
def test_bad_urls_are_config_errors(url: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        OpenSearchSearchIndex.from_url(AdapterURL.parse(url), AdapterOptions(data_dir=tmp_path))
    assert caught.value.setting == "STUDIO9_INDEX_URL"
