"""CatalogService rules on the in-memory store: the access rule, checks, lineage bounds and hiding,
and the link between uploaded files and their assets (``studio9.file_assets``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.blob_store.memory import MemoryBlobStore
from adapters.catalog_store.memory import MemoryCatalogStore
from adapters.file_records.memory import MemoryFileRecords
from studio9.auth.domain import Principal, Role
from studio9.catalog.domain import (
    AssetHasDependents,
    AssetKind,
    AssetNotFound,
    AssetStatus,
    Direction,
    VersionConflict,
)
from studio9.catalog.service import CatalogService
from studio9.errors import Conflict, InvalidInput
from studio9.file_assets import FileAssets
from studio9.files.domain import FileNotFound, StoredFile
from studio9.files.service import FileService

ADA, BOB, ROOT = (
    Principal(
        user_id=f"user-{name}",
        username=name,
        role=Role.ADMIN if name == "root" else Role.USER,
        token_id=f"token-{name}",
        token_expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    for name in ("ada", "bob", "root")
)


@pytest.fixture
def catalog() -> CatalogService:
    return CatalogService(MemoryCatalogStore())


async def _table(catalog: CatalogService, name: str, *inputs: str, owner: Principal = ADA) -> str:
    asset = await catalog.create(owner_id=owner.user_id, kind=AssetKind.TABLE, name=name, content={})
    await catalog.record_lineage(job_id="job", inputs=[(i, 1) for i in inputs], outputs=[(asset.id, 1)])
    return asset.id


async def test_owners_and_admins_read_others_are_told_it_does_not_exist(catalog: CatalogService) -> None:
    asset_id = await _table(catalog, "t")
    assert (await catalog.get(ADA, asset_id)).id == asset_id
    assert (await catalog.get(ROOT, asset_id)).id == asset_id
    with pytest.raises(AssetNotFound):
        await catalog.get(BOB, asset_id)
    with pytest.raises(AssetNotFound):
        await catalog.update(BOB, asset_id, name="x")
    with pytest.raises(AssetNotFound):
        await catalog.delete(BOB, asset_id)
    assert (await catalog.update(ROOT, asset_id, description="checked")).description == "checked"


async def test_create_checks_names_and_tags_and_may_wait_for_its_first_version(
    catalog: CatalogService,
) -> None:
    for name in ("", "   ", "a/b", "x" * 256, "tab\there"):
        with pytest.raises(InvalidInput):
            await catalog.create(owner_id="u", kind=AssetKind.TABLE, name=name, content={})
    with pytest.raises(InvalidInput):
        await catalog.create(owner_id="u", kind=AssetKind.TABLE, name="t", content={}, tags=["a b"])
    saving = await catalog.create(owner_id=ADA.user_id, kind=AssetKind.TABLE, name="  import  ", content=None)
    assert (saving.name, saving.status, saving.latest_version) == ("import", AssetStatus.SAVING, 0)
    assert await catalog.read(ADA, saving.id) == (saving, None)
    failed = await catalog.set_status(saving.id, AssetStatus.ERROR, "row 3: not an integer")
    assert failed.error == "row 3: not an integer"
    done, version = await catalog.add_version(
        saving.id, {"rows": 3}, expected_latest=0, status=AssetStatus.ACTIVE
    )
    assert (done.status, done.error, done.latest_version, version.version) == (AssetStatus.ACTIVE, None, 1, 1)
    with pytest.raises(VersionConflict):
        await catalog.add_version(saving.id, {"rows": 4}, expected_latest=0)


async def test_lineage_shows_what_the_actor_may_not_read_as_stubs_without_names(
    catalog: CatalogService,
) -> None:
    source = await _table(catalog, "source")
    theirs = await _table(catalog, "theirs", source, owner=BOB)
    beyond = await _table(catalog, "beyond", theirs)
    graph = await catalog.lineage(ADA, source, direction=Direction.DOWN, depth=5)
    nodes = {n.id: n for n in graph.nodes}
    assert set(nodes) == {source, theirs, beyond}  # the shape, whole
    assert len(graph.edges) == 2
    assert (nodes[source].name, nodes[source].redacted) == ("source", False)
    assert (nodes[beyond].name, nodes[beyond].redacted) == ("beyond", False)  # ada's own, past bob's
    stub = nodes[theirs]
    assert (stub.redacted, stub.kind, stub.name, stub.version, stub.status) == (
        True,
        AssetKind.TABLE,
        None,
        None,
        None,
    )
    seen_by_admin = await catalog.lineage(ROOT, source, direction=Direction.DOWN, depth=5)
    assert {n.id for n in seen_by_admin.nodes} == {source, theirs, beyond}
    # The refused delete still says why, without naming what the owner may not read.
    with pytest.raises(AssetHasDependents) as refused:
        await catalog.delete(ADA, source)
    assert refused.value.details["dependents"] == [{"id": theirs}]


async def test_lineage_is_bounded_and_says_when_it_was_cut(catalog: CatalogService) -> None:
    catalog.max_lineage_edges = 3
    source = await _table(catalog, "source")
    for i in range(5):
        await _table(catalog, f"child {i}", source)
    graph = await catalog.lineage(ADA, source, direction=Direction.DOWN, depth=1)
    assert (len(graph.edges), len(graph.nodes), graph.truncated) == (3, 4, True)
    whole = await catalog.lineage(ADA, source, direction=Direction.UP, depth=1)
    assert (whole.edges, whole.truncated) == ((), False)
    with pytest.raises(InvalidInput):
        await catalog.lineage(ADA, source, depth=21)


class RefusingListener:
    """A FileListener whose catalog is down: every stored file is refused."""

    async def file_stored(self, file: StoredFile) -> None:
        raise Conflict("the catalog refused the file")

    async def file_deleting(self, file: StoredFile) -> None:
        return None


async def _chunks() -> AsyncIterator[bytes]:
    yield b"a,b\n1,2\n"


async def test_an_upload_the_listener_refuses_leaves_nothing() -> None:
    blobs, records = MemoryBlobStore(), MemoryFileRecords()
    files = FileService(blobs, records, listener=RefusingListener())
    with pytest.raises(Conflict):
        await files.upload(ADA, "a.csv", "text/csv", _chunks())
    assert await records.list(None, limit=10) == []
    assert await blobs.delete_prefix("files/") == 0


async def test_files_and_their_assets_come_and_go_together(catalog: CatalogService) -> None:
    blobs, records = MemoryBlobStore(), MemoryFileRecords()
    bridge = FileAssets(catalog, records, blobs)
    catalog.register(AssetKind.FILE, bridge)
    files = FileService(blobs, records, listener=bridge)
    stored = await files.upload(ADA, "a.csv", "text/csv", _chunks())
    asset, version = await catalog.read(ADA, stored.id)
    assert (asset.kind, asset.name, asset.created_at) == (AssetKind.FILE, "a.csv", stored.created_at)
    assert version is not None and version.content["sha256"] == stored.sha256
    derived = await _table(catalog, "derived", stored.id)
    with pytest.raises(AssetHasDependents):
        await files.delete(ADA, stored.id)
    assert (await files.get(ADA, stored.id)).id == stored.id
    await catalog.delete(ADA, derived)
    await files.delete(ADA, stored.id)
    with pytest.raises(AssetNotFound):
        await catalog.get(ADA, stored.id)
    # And the other way: deleting the asset deletes the file, bytes included.
    other = await files.upload(ADA, "b.csv", None, _chunks())
    await catalog.delete(ADA, other.id)
    with pytest.raises(FileNotFound):
        await records.get(other.id)
    assert await blobs.delete_prefix("files/") == 0
