"""Asset changes reach the change feed (topic ``asset``) in the transaction of the change, on every
system-of-record adapter (memory, SQLite, PostgreSQL): catalog writes, and the access writes
that change an asset's reader keys. A write that fails leaves no entry. Then the indexer, from
the feed to the index (``JobIndexer`` handing asset entries to ``AssetIndexer``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.search_index.memory import MemorySearchIndex
from studio9.access.domain import (
    Folder,
    FolderNotFound,
    GranteeKind,
    Group,
    GroupNotFound,
    Permission,
    Project,
    ProjectAsset,
    ProjectNotFound,
    Share,
    ShareNotFound,
)
from studio9.catalog.domain import (
    Asset,
    AssetChanges,
    AssetKind,
    AssetNameTaken,
    AssetNotFound,
    AssetVersion,
    VersionConflict,
)
from studio9.ids import new_id
from studio9.metadata.asset_indexer import AssetIndexer
from studio9.metadata.domain import SearchQuery
from studio9.metadata.indexer import JobIndexer

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
_ID_MILLIS = itertools.count(int(NOW.timestamp() * 1000))
ADA, BOB = "01ADA000000000000000000000", "01BOB000000000000000000000"


def _id() -> str:
    return new_id(next(_ID_MILLIS))


def _asset(owner_id: str = ADA, name: str = "sales", **changes: Any) -> Asset:
    values: dict[str, Any] = {
        "id": _id(),
        "kind": AssetKind.TABLE,
        "owner_id": owner_id,
        "name": name,
        "in_library": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Asset(**(values | changes))


def _first(asset: Asset) -> AssetVersion:
    return AssetVersion(asset_id=asset.id, version=1, created_at=NOW)


async def _added(database: Any, owner_id: str = ADA, name: str = "sales") -> Asset:
    asset = _asset(owner_id, name)
    await database.catalog.add(asset, _first(asset))
    return asset


async def _entries(database: Any) -> list[tuple[str, str]]:
    """The pending entries as (topic, ref_id), then acknowledged: each test step sees its own."""
    pending = await database.jobs.pending(limit=1000)
    await database.jobs.acknowledge([c.id for c in pending])
    return [(c.topic, c.ref_id) for c in pending]


def _asset_entries(*ids: str) -> list[tuple[str, str]]:
    return [("asset", i) for i in ids]


def _share(asset: Asset, grantee: str = BOB, kind: GranteeKind = GranteeKind.USER) -> Share:
    return Share(
        id=_id(),
        asset_id=asset.id,
        grantee_kind=kind,
        grantee=grantee,
        permission=Permission.READ,
        granted_by=ADA,
        created_at=NOW,
    )


async def _project(database: Any, name: str = "churn") -> Project:
    project = Project(id=_id(), name=name, owner_id=ADA, description="", created_at=NOW, updated_at=NOW)
    await database.access.add_project(project)
    return project


async def _folder(database: Any, project: Project, name: str = "raw") -> Folder:
    folder = Folder(id=_id(), project_id=project.id, name=name, created_at=NOW)
    await database.access.add_folder(folder)
    return folder


def _link(project: Project, asset: Asset, folder: Folder | None = None) -> ProjectAsset:
    return ProjectAsset(
        project_id=project.id,
        asset_id=asset.id,
        folder_id=folder.id if folder else None,
        added_by=ADA,
        added_at=NOW,
    )


def _sorted(entries: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(entries)


# -- the catalog ------------------------------------------------------------------------------


async def test_every_catalog_write_leaves_an_asset_entry(database: Any) -> None:
    asset = await _added(database)
    assert await _entries(database) == _asset_entries(asset.id)

    await database.catalog.add_version(
        AssetVersion(asset_id=asset.id, version=2, created_at=LATER), expected_latest=1
    )
    assert await _entries(database) == _asset_entries(asset.id)

    await database.catalog.update(asset.id, AssetChanges(description="monthly"), at=LATER)
    assert await _entries(database) == _asset_entries(asset.id)

    other = await _added(database, ADA, "costs")
    await _entries(database)
    assert await database.catalog.transfer(ADA, BOB, at=LATER) == 2
    assert _sorted(await _entries(database)) == _sorted(_asset_entries(asset.id, other.id))

    await database.catalog.delete(asset.id)
    assert await _entries(database) == _asset_entries(asset.id)


async def test_a_failed_catalog_write_leaves_no_entry(database: Any) -> None:
    asset = await _added(database)
    await _added(database, BOB, "sales")
    other = await _added(database, ADA, "costs")
    await _entries(database)

    clash = _asset(ADA, "sales")
    with pytest.raises(AssetNameTaken):
        await database.catalog.add(clash, _first(clash))
    with pytest.raises(AssetNameTaken):
        await database.catalog.update(other.id, AssetChanges(name="sales"), at=LATER)
    with pytest.raises(AssetNotFound):
        await database.catalog.update(_id(), AssetChanges(description="x"), at=LATER)
    with pytest.raises(VersionConflict):
        await database.catalog.add_version(
            AssetVersion(asset_id=asset.id, version=3, created_at=LATER), expected_latest=2
        )
    with pytest.raises(AssetNotFound):
        await database.catalog.delete(_id())
    with pytest.raises(AssetNameTaken):  # BOB already has a library table "sales": none moves
        await database.catalog.transfer(ADA, BOB, at=LATER)
    assert await _entries(database) == []


# -- access -----------------------------------------------------------------------------------


async def test_shares_put_and_deleted_leave_an_asset_entry(database: Any) -> None:
    asset = await _added(database)
    await _entries(database)

    stored = await database.access.put_share(_share(asset))
    assert await _entries(database) == _asset_entries(asset.id)
    await database.access.put_share(_share(asset))  # again: the permission may have changed
    assert await _entries(database) == _asset_entries(asset.id)

    await database.access.delete_share(stored.id)
    assert await _entries(database) == _asset_entries(asset.id)

    with pytest.raises(ShareNotFound):
        await database.access.delete_share(stored.id)
    with pytest.raises(AssetNotFound):
        await database.access.put_share(_share(_asset()))  # never added
    assert await _entries(database) == []


async def test_links_made_moved_and_removed_leave_an_asset_entry(database: Any) -> None:
    asset, other = await _added(database), await _added(database, ADA, "costs")
    project = await _project(database)
    folder = await _folder(database, project)
    await _entries(database)

    await database.access.link_asset(_link(project, asset, folder))
    await database.access.link_asset(_link(project, other, folder))
    assert await _entries(database) == _asset_entries(asset.id, other.id)

    await database.access.delete_folder(folder.id)  # the links move to the root
    assert _sorted(await _entries(database)) == _sorted(_asset_entries(asset.id, other.id))

    assert await database.access.unlink_asset(project.id, asset.id)
    assert await _entries(database) == _asset_entries(asset.id)
    assert not await database.access.unlink_asset(project.id, asset.id)
    assert await _entries(database) == []

    await database.access.delete_project(project.id)  # ``other`` loses its ``p:`` key
    assert await _entries(database) == _asset_entries(other.id)


async def test_deleting_a_group_names_the_assets_shared_with_it(database: Any) -> None:
    shared, private = await _added(database), await _added(database, ADA, "costs")
    group = Group(id=_id(), name="analysts", owner_id=ADA, description="", created_at=NOW)
    await database.access.add_group(group)
    await database.access.put_share(_share(shared, group.id, GranteeKind.GROUP))
    await database.access.put_share(_share(private, BOB))
    await _entries(database)

    await database.access.delete_group(group.id)
    assert await _entries(database) == _asset_entries(shared.id)


async def test_failed_access_writes_leave_no_entry(database: Any) -> None:
    asset = await _added(database)
    project = await _project(database)
    other_project = await _project(database, "other")
    elsewhere = await _folder(database, other_project)
    await _entries(database)

    with pytest.raises(FolderNotFound):  # a folder of another project
        await database.access.link_asset(_link(project, asset, elsewhere))
    with pytest.raises(ProjectNotFound):
        await database.access.link_asset(_link(_unsaved_project(), asset))
    with pytest.raises(FolderNotFound):
        await database.access.delete_folder(_id())
    with pytest.raises(GroupNotFound):
        await database.access.delete_group(_id())
    with pytest.raises(ProjectNotFound):
        await database.access.delete_project(_id())
    assert await _entries(database) == []


def _unsaved_project() -> Project:
    return Project(id=_id(), name="ghost", owner_id=ADA, description="", created_at=NOW, updated_at=NOW)


# -- every asset, for a full reindex (``CatalogStore.all``) ---------------------------------


async def test_all_pages_every_owners_assets_newest_first(database: Any) -> None:
    store = database.catalog
    assert await store.all(limit=10) == []
    made = [await _added(database, owner, f"a{i}") for i, owner in enumerate([ADA, BOB, ADA, "01CY", BOB])]
    first = await store.all(limit=2)
    rest = await store.all(limit=10, after=first[-1].id)
    assert [*first, *rest] == sorted(made, key=lambda a: a.id, reverse=True)
    assert await store.all(limit=10, after=min(a.id for a in made)) == []


# -- the indexer ------------------------------------------------------------------------------


def _indexer(database: Any, index: MemorySearchIndex) -> JobIndexer:
    assets = AssetIndexer(database.catalog, database.access, index)
    return JobIndexer(database.jobs, database.jobs, database.jobs, index, assets=assets)


async def _readable(index: MemorySearchIndex, *keys: str) -> list[str]:
    page = await index.search(SearchQuery(kind="asset", readers=frozenset(keys), limit=100))
    return [hit.id for hit in page.items]


async def test_a_share_reaches_the_index_and_its_revoke_takes_it_away(database: Any) -> None:
    index = MemorySearchIndex()
    indexer = _indexer(database, index)
    asset = await _added(database)
    await indexer.drain_once()
    assert await _readable(index, f"u:{ADA}") == [asset.id]
    assert await _readable(index, f"u:{BOB}") == []

    share = await database.access.put_share(_share(asset, BOB))
    assert await indexer.drain_once() == 1
    assert await _readable(index, f"u:{BOB}") == [asset.id]

    await database.access.delete_share(share.id)
    await indexer.drain_once()
    assert await _readable(index, f"u:{BOB}") == []
    assert await _readable(index, f"u:{ADA}") == [asset.id]
    assert await database.jobs.pending(limit=10) == []


async def test_a_project_link_adds_the_project_key_and_term(database: Any) -> None:
    index = MemorySearchIndex()
    indexer = _indexer(database, index)
    asset = await _added(database)
    project = await _project(database)
    await database.access.link_asset(_link(project, asset))
    await indexer.drain_once()
    assert await _readable(index, f"p:{project.id}") == [asset.id]
    page = await index.search(
        SearchQuery(kind="asset", any_terms={"projects": project.id}, facets=["terms.projects"])
    )
    assert [hit.id for hit in page.items] == [asset.id]

    await database.access.delete_project(project.id)
    await indexer.drain_once()
    assert await _readable(index, f"p:{project.id}") == []


async def test_a_deleted_asset_leaves_the_index(database: Any) -> None:
    index = MemorySearchIndex()
    indexer = _indexer(database, index)
    kept, gone = await _added(database), await _added(database, ADA, "costs")
    await indexer.drain_once()
    await database.catalog.delete(gone.id)
    await indexer.drain_once()
    assert await _readable(index, f"u:{ADA}") == [kept.id]


async def test_a_transfer_moves_the_documents_to_the_new_owner(database: Any) -> None:
    index = MemorySearchIndex()
    indexer = _indexer(database, index)
    asset = await _added(database)
    await indexer.drain_once()
    await database.catalog.transfer(ADA, BOB, at=LATER)
    await indexer.drain_once()
    assert await _readable(index, f"u:{ADA}") == []
    assert await _readable(index, f"u:{BOB}") == [asset.id]


async def test_rebuild_writes_every_asset_with_its_readers(database: Any) -> None:
    index = MemorySearchIndex()
    indexer = _indexer(database, index)
    assets = [await _added(database, owner, f"a{i}") for i, owner in enumerate([ADA, BOB, ADA])]
    await database.access.put_share(_share(assets[0], BOB))
    assert await indexer.rebuild(batch=2) == 3
    assert await _readable(index, f"u:{BOB}") == sorted((a.id for a in assets[:2]), reverse=True)
