"""CatalogStore contract, run against every system-of-record adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest

from studio9.catalog.domain import (
    Asset,
    AssetChanges,
    AssetExists,
    AssetKind,
    AssetNameTaken,
    AssetNotFound,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    VersionConflict,
)
from studio9.catalog.ports import CatalogStore
from studio9.errors import InvalidInput
from studio9.ids import new_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Ids one millisecond apart: two ids made in the same millisecond sort at random, and these tests
# name assets in the order they were made.
_ID_MILLIS = itertools.count(int(NOW.timestamp() * 1000))
LATER = NOW + timedelta(minutes=5)


@pytest.fixture
def store(database: Any) -> CatalogStore:
    catalog: CatalogStore = database.catalog
    return catalog


def _asset(owner_id: str = "owner-a", **changes: Any) -> Asset:
    values: dict[str, Any] = {
        "id": new_id(next(_ID_MILLIS)),
        "kind": AssetKind.TABLE,
        "owner_id": owner_id,
        "name": "ventes été 2026",
        "description": "monthly sales",
        "tags": ("sales", "q1"),
        "status": AssetStatus.ACTIVE,
        "in_library": True,
        "latest_version": 1,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(changes)
    return Asset(**values)


def _first(asset: Asset, **content: Any) -> AssetVersion:
    return AssetVersion(
        asset_id=asset.id,
        version=1,
        created_at=asset.created_at,
        job_id="job-1",
        content=content or {"schema": [{"name": "a", "type": "integer"}], "row_count": 5 * 1024**3},
    )


async def _added(store: CatalogStore, **changes: Any) -> Asset:
    asset = _asset(**changes)
    await store.add(asset, _first(asset) if asset.latest_version else None)
    return asset


def _edge(source: Asset, target: Asset, job_id: str | None = "job-1", **changes: Any) -> LineageEdge:
    values: dict[str, Any] = {
        "input_id": source.id,
        "input_version": 1,
        "output_id": target.id,
        "output_version": 1,
        "job_id": job_id,
        "at": NOW,
    }
    values.update(changes)
    return LineageEdge(**values)


# -- assets and versions -------------------------------------------------------------------------


async def test_added_asset_and_version_read_back_equal(store: CatalogStore) -> None:
    asset = _asset()
    first = _first(asset, nested={"a": [1, 2.5, None, "x"]}, big=5 * 1024**3)
    await store.add(asset, first)
    assert await store.get(asset.id) == asset
    assert (await store.get(asset.id)).created_at.tzinfo is not None
    assert await store.get_version(asset.id) == first
    assert await store.get_version(asset.id, 1) == first


async def test_an_asset_may_start_without_a_version(store: CatalogStore) -> None:
    asset = await _added(store, latest_version=0, status=AssetStatus.SAVING)
    assert (await store.get(asset.id)).latest_version == 0
    assert await store.versions(asset.id, limit=10) == []
    with pytest.raises(AssetNotFound):
        await store.get_version(asset.id)


async def test_a_new_asset_must_be_at_version_one_with_its_version(store: CatalogStore) -> None:
    asset = _asset()
    with pytest.raises(InvalidInput):
        await store.add(asset, None)
    with pytest.raises(InvalidInput):
        await store.add(attrs.evolve(asset, latest_version=0), _first(asset))
    with pytest.raises(AssetNotFound):
        await store.get(asset.id)


async def test_duplicate_id_raises_asset_exists(store: CatalogStore) -> None:
    asset = await _added(store)
    other = _asset(id=asset.id, name="other")
    with pytest.raises(AssetExists):
        await store.add(other, _first(other))
    assert (await store.get(asset.id)).name == asset.name


async def test_unknown_asset_raises_not_found(store: CatalogStore) -> None:
    with pytest.raises(AssetNotFound):
        await store.get("missing")
    with pytest.raises(AssetNotFound):
        await store.get_version("missing")
    with pytest.raises(AssetNotFound):
        await store.delete("missing")
    with pytest.raises(AssetNotFound):
        await store.update("missing", AssetChanges(name="x"), at=NOW)
    assert await store.versions("missing", limit=5) == []
    assert await store.find(["missing"]) == []


async def test_find_returns_the_assets_that_exist(store: CatalogStore) -> None:
    one, two = await _added(store, name="one"), await _added(store, name="two")
    found = await store.find([one.id, two.id, "missing"])
    assert sorted(found, key=lambda a: a.id) == sorted([one, two], key=lambda a: a.id)
    assert await store.find([]) == []


async def test_library_names_are_unique_per_owner_and_kind(store: CatalogStore) -> None:
    asset = await _added(store, name="sales")
    with pytest.raises(AssetNameTaken):
        await _added(store, name="sales")
    # Another owner, another kind, or outside the library: no clash.
    await _added(store, owner_id="owner-b", name="sales")
    await _added(store, name="sales", kind=AssetKind.MODEL)
    await _added(store, name="sales", in_library=False)
    await _added(store, name="sales", in_library=False)
    assert [a.id for a in await store.list("owner-a", kind=AssetKind.TABLE, limit=10)][-1] == asset.id


async def test_concurrent_adds_of_one_name_let_exactly_one_win(store: CatalogStore) -> None:
    rivals = [_asset(name="contested") for _ in range(5)]
    results = await asyncio.gather(*(store.add(a, _first(a)) for a in rivals), return_exceptions=True)
    assert sum(r is None for r in results) == 1, results
    assert all(isinstance(r, AssetNameTaken) for r in results if r is not None)
    listed = await store.list("owner-a", kind=AssetKind.TABLE, limit=10)
    assert len(listed) == 1
    assert await store.versions(listed[0].id, limit=10) != []
    losers = [a.id for a, r in zip(rivals, results, strict=True) if r is not None]
    assert await store.find(losers) == []


async def test_versions_are_added_by_compare_and_set(store: CatalogStore) -> None:
    asset = await _added(store)
    second = AssetVersion(asset_id=asset.id, version=2, created_at=LATER, job_id=None, content={"n": 2})
    changed = await store.add_version(second, expected_latest=1, status=AssetStatus.ACTIVE)
    assert changed.latest_version == 2
    assert changed.updated_at == LATER
    assert await store.get_version(asset.id) == second
    assert (await store.get_version(asset.id, 1)).content == _first(asset).content
    stale = AssetVersion(asset_id=asset.id, version=2, created_at=LATER, content={"n": "stale"})
    with pytest.raises(VersionConflict):
        await store.add_version(stale, expected_latest=1)
    with pytest.raises(InvalidInput):
        await store.add_version(attrs.evolve(second, version=4), expected_latest=2)
    with pytest.raises(AssetNotFound):
        await store.add_version(attrs.evolve(second, asset_id="missing"), expected_latest=1)
    with pytest.raises(AssetNotFound):
        await store.get_version(asset.id, 3)
    assert (await store.get_version(asset.id, 2)).content == {"n": 2}


async def test_concurrent_versions_let_exactly_one_win(store: CatalogStore) -> None:
    asset = await _added(store)
    rivals = [
        AssetVersion(asset_id=asset.id, version=2, created_at=LATER, content={"writer": i}) for i in range(5)
    ]
    results = await asyncio.gather(
        *(store.add_version(v, expected_latest=1) for v in rivals), return_exceptions=True
    )
    winners = [v for v, r in zip(rivals, results, strict=True) if isinstance(r, Asset)]
    assert len(winners) == 1, results
    assert all(isinstance(r, VersionConflict) for r in results if not isinstance(r, Asset))
    assert await store.get_version(asset.id) == winners[0]
    assert len(await store.versions(asset.id, limit=10)) == 2


async def test_adding_a_version_sets_the_status_and_clears_the_error(store: CatalogStore) -> None:
    asset = await _added(store, latest_version=0, status=AssetStatus.SAVING)
    await store.update(asset.id, AssetChanges(status=AssetStatus.ERROR, error="bad row 3"), at=NOW)
    first = _first(asset)
    changed = await store.add_version(first, expected_latest=0, status=AssetStatus.ACTIVE)
    assert (changed.status, changed.error, changed.latest_version) == (AssetStatus.ACTIVE, None, 1)
    assert await store.get(asset.id) == changed


async def test_versions_page_newest_first(store: CatalogStore) -> None:
    asset = await _added(store)
    for number in range(2, 6):
        version = AssetVersion(asset_id=asset.id, version=number, created_at=LATER, content={"n": number})
        await store.add_version(version, expected_latest=number - 1)
    first = await store.versions(asset.id, limit=2)
    rest = await store.versions(asset.id, limit=10, before=first[-1].version)
    assert [v.version for v in [*first, *rest]] == [5, 4, 3, 2, 1]


async def test_update_changes_only_what_it_names(store: CatalogStore) -> None:
    asset = await _added(store)
    changed = await store.update(asset.id, AssetChanges(description="new", tags=("x",)), at=LATER)
    assert changed == attrs.evolve(asset, description="new", tags=("x",), updated_at=LATER)
    assert await store.get(asset.id) == changed
    failed = await store.update(asset.id, AssetChanges(status=AssetStatus.ERROR, error="boom"), at=LATER)
    assert (failed.status, failed.error, failed.name) == (AssetStatus.ERROR, "boom", asset.name)
    renamed = await store.update(asset.id, AssetChanges(name="renamed", in_library=False), at=LATER)
    assert (renamed.name, renamed.in_library, renamed.error) == ("renamed", False, "boom")


async def test_update_enforces_library_names(store: CatalogStore) -> None:
    taken = await _added(store, name="taken")
    other = await _added(store, name="free")
    with pytest.raises(AssetNameTaken):
        await store.update(other.id, AssetChanges(name="taken"), at=LATER)
    assert (await store.get(other.id)).name == "free"
    outside = await _added(store, name="taken", in_library=False)
    with pytest.raises(AssetNameTaken):
        await store.update(outside.id, AssetChanges(in_library=True), at=LATER)
    await store.update(taken.id, AssetChanges(in_library=False), at=LATER)
    joined = await store.update(outside.id, AssetChanges(in_library=True), at=LATER)
    assert joined.in_library


async def test_list_pages_newest_first_per_owner_and_kind(store: CatalogStore) -> None:
    tables = [await _added(store, id=new_id(1_000 * i), name=f"t{i}") for i in range(1, 6)]
    models = [
        await _added(store, id=new_id(1_000 * i + 1), name=f"m{i}", kind=AssetKind.MODEL) for i in (1, 2)
    ]
    await _added(store, owner_id="owner-b", id=new_id(2_500), name="theirs")
    first = await store.list("owner-a", kind=AssetKind.TABLE, limit=2)
    rest = await store.list("owner-a", kind=AssetKind.TABLE, limit=10, after=first[-1].id)
    assert [a.id for a in [*first, *rest]] == [a.id for a in reversed(tables)]
    everything = await store.list("owner-a", kind=None, limit=100)
    assert [a.id for a in everything] == sorted((a.id for a in [*tables, *models]), reverse=True)
    assert await store.list("owner-a", kind=AssetKind.TABLE, limit=10, after=tables[0].id) == []
    assert await store.list("nobody", kind=None, limit=10) == []


async def test_delete_removes_the_asset_and_its_versions(store: CatalogStore) -> None:
    kept, gone = await _added(store, name="kept"), await _added(store, name="gone")
    await store.delete(gone.id)
    with pytest.raises(AssetNotFound):
        await store.get(gone.id)
    assert await store.versions(gone.id, limit=10) == []
    assert [a.id for a in await store.list("owner-a", kind=None, limit=10)] == [kept.id]
    # Its id and name are free again.
    await store.add(gone, _first(gone))
    assert await store.get(gone.id) == gone


# -- lineage -------------------------------------------------------------------------------------


async def test_edges_are_recorded_once_per_input_output_and_job(store: CatalogStore) -> None:
    source, target = await _added(store, name="source"), await _added(store, name="target")
    edge, manual = _edge(source, target), _edge(source, target, job_id=None)
    await store.add_edges([edge, edge, manual])
    await store.add_edges([attrs.evolve(edge, at=LATER), attrs.evolve(manual, at=LATER)])
    await store.add_edges([])
    found = await store.edges([target.id], Direction.UP, limit=10)
    assert sorted(found, key=lambda e: e.job_id or "") == [manual, edge]
    again = _edge(source, target, job_id="job-2")
    await store.add_edges([again])
    assert len(await store.edges([source.id], Direction.DOWN, limit=10)) == 3


async def test_edges_go_up_down_or_both(store: CatalogStore) -> None:
    a, b, c = [await _added(store, name=n) for n in "abc"]
    ab, bc = _edge(a, b), _edge(b, c, at=LATER)
    await store.add_edges([ab, bc])
    assert await store.edges([b.id], Direction.UP, limit=10) == [ab]
    assert await store.edges([b.id], Direction.DOWN, limit=10) == [bc]
    assert await store.edges([b.id], Direction.BOTH, limit=10) == [ab, bc]
    assert await store.edges([a.id, c.id], Direction.BOTH, limit=10) == [ab, bc]
    assert await store.edges([b.id], Direction.BOTH, limit=1) == [ab]  # oldest first
    assert await store.edges([], Direction.BOTH, limit=10) == []


async def test_edges_outlive_the_assets_they_name(store: CatalogStore) -> None:
    a, b = await _added(store, name="a"), await _added(store, name="b")
    edge = _edge(a, b)
    await store.add_edges([edge])
    await store.delete(a.id)
    assert await store.edges([b.id], Direction.UP, limit=10) == [edge]


async def test_dependents_are_existing_assets_derived_from_any_version(store: CatalogStore) -> None:
    source = await _added(store, name="source")
    second = AssetVersion(asset_id=source.id, version=2, created_at=LATER, content={})
    await store.add_version(second, expected_latest=1)
    first_child, second_child, gone = [await _added(store, name=n) for n in ("one", "two", "gone")]
    await store.add_edges(
        [
            _edge(source, first_child),
            _edge(source, second_child, input_version=2),
            _edge(source, second_child, job_id="job-2"),  # two edges, one dependent
            _edge(source, gone),
            _edge(source, source, output_version=2),  # itself: not its own dependent
        ]
    )
    await store.delete(gone.id)
    dependents = await store.dependents(source.id, limit=10)
    assert [d.id for d in dependents] == [first_child.id, second_child.id]
    assert [d.id for d in await store.dependents(source.id, limit=1)] == [first_child.id]
    assert await store.dependents(first_child.id, limit=10) == []


async def test_a_bounded_traversal_walks_the_graph_level_by_level(store: CatalogStore) -> None:
    chain = [await _added(store, name=f"n{i}") for i in range(4)]
    await store.add_edges([_edge(x, y) for x, y in itertools.pairwise(chain)])
    frontier, seen = {chain[0].id}, {chain[0].id}
    for _ in range(2):  # depth 2 downstream of the first
        found = await store.edges(frontier, Direction.DOWN, limit=100)
        frontier = {e.output_id for e in found} - seen
        seen |= frontier
    assert seen == {a.id for a in chain[:3]}


async def test_a_transfer_gives_every_asset_of_an_owner_to_another(store: CatalogStore) -> None:
    mine = [await _added(store, name=f"t{i}") for i in range(3)]
    outside = await _added(store, name="t0", in_library=False)
    other = await _added(store, owner_id="owner-c", name="kept")

    assert await store.transfer("owner-a", "owner-b", at=LATER) == 4

    for asset in [*mine, outside]:
        moved = await store.get(asset.id)
        assert (moved.owner_id, moved.updated_at, moved.name) == ("owner-b", LATER, asset.name)
    assert (await store.get(other.id)).owner_id == "owner-c"
    assert await store.list("owner-a", kind=None, limit=10) == []
    assert await store.transfer("owner-a", "owner-b", at=LATER) == 0  # idempotent


async def test_a_transfer_onto_a_taken_library_name_moves_nothing(store: CatalogStore) -> None:
    clash = await _added(store, name="sales")
    free = await _added(store, name="costs")
    await _added(store, owner_id="owner-b", name="sales")

    with pytest.raises(AssetNameTaken) as raised:
        await store.transfer("owner-a", "owner-b", at=LATER)

    assert (raised.value.kind, raised.value.name) == (AssetKind.TABLE, "sales")
    assert {(await store.get(a.id)).owner_id for a in (clash, free)} == {"owner-a"}


async def test_named_finds_the_library_asset_of_an_owner_kind_and_name(store: CatalogStore) -> None:
    sales = await _added(store, name="sales")
    await _added(store, name="sales", kind=AssetKind.MODEL)
    await _added(store, owner_id="owner-b", name="sales")
    await _added(store, name="costs", in_library=False)

    assert await store.named("owner-a", AssetKind.TABLE, "sales") == sales
    for owner, kind, name in [
        ("owner-a", AssetKind.TABLE, "Sales"),  # exact names
        ("owner-a", AssetKind.TABLE, "costs"),  # not in the library
        ("owner-a", AssetKind.REPORT, "sales"),
        ("owner-c", AssetKind.TABLE, "sales"),
    ]:
        with pytest.raises(AssetNotFound):
            await store.named(owner, kind, name)


async def test_named_follows_renames_and_deletes(store: CatalogStore) -> None:
    sales = await _added(store, name="sales")
    renamed = await store.update(sales.id, AssetChanges(name="revenue"), at=LATER)
    assert await store.named("owner-a", AssetKind.TABLE, "revenue") == renamed
    with pytest.raises(AssetNotFound):
        await store.named("owner-a", AssetKind.TABLE, "sales")
    await store.delete(sales.id)
    with pytest.raises(AssetNotFound):
        await store.named("owner-a", AssetKind.TABLE, "revenue")
