"""The searchable projection of an asset (``studio9.metadata.asset_search.asset_document``), and the
indexer's dispatch of outbox entries by topic, on the in-memory stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.database.memory import MemoryDatabase
from adapters.search_index.memory import MemorySearchIndex
from studio9.catalog.domain import Asset, AssetKind, AssetStatus, AssetVersion
from studio9.jobs.domain import Job, JobEvent, JobStatus
from studio9.metadata.asset_indexer import AssetIndexer
from studio9.metadata.asset_search import asset_document
from studio9.metadata.domain import SearchQuery, words
from studio9.metadata.indexer import JobIndexer

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
READ = NOW + timedelta(days=1)


def _asset(**changes: object) -> Asset:
    values: dict[str, object] = {
        "id": "01ASSET0000000000000000000",
        "kind": AssetKind.TABLE,
        "owner_id": "01ADA000000000000000000000",
        "name": "Ventes été",
        "description": "monthly sales by région",
        "tags": ("q1", "sales"),
        "status": AssetStatus.ACTIVE,
        "in_library": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Asset(**(values | changes))  # type: ignore[arg-type]


def test_the_document_holds_text_fields_terms_readers_and_a_summary() -> None:
    asset = _asset()
    keys = {"u:01ADA000000000000000000000", "g:01GRP000000000000000000000", "p:01PRJ000000000000000000000"}
    doc = asset_document(asset, keys, ["01PRJ000000000000000000000"], READ)
    assert (doc.id, doc.kind, doc.owner_id) == (asset.id, "asset", asset.owner_id)
    assert {"ventes", "été", "monthly", "région", "q1", "sales"} <= set(words(doc.text))
    assert doc.fields == {
        "asset_kind": "table",
        "status": "active",
        "name": "Ventes été",
        "in_library": "true",
    }
    assert doc.terms == {"tags": ("q1", "sales"), "projects": ("01PRJ000000000000000000000",), "folders": ()}
    assert doc.readers == frozenset(keys)
    assert doc.updated_at == READ  # when it was read: a later read of new reader keys wins
    assert doc.body == {
        "id": asset.id,
        "kind": "table",
        "name": "Ventes été",
        "owner_id": asset.owner_id,
        "description": "monthly sales by région",
        "tags": ["q1", "sales"],
        "status": "active",
        "latest_version": 1,
        "created_at": NOW.isoformat(),
        "updated_at": NOW.isoformat(),
        "in_library": True,
    }


def test_a_file_outside_the_library_is_indexed_with_in_library_false() -> None:
    doc = asset_document(_asset(kind=AssetKind.FILE, in_library=False, tags=()), {"u:x"}, [], READ)
    assert doc.fields["in_library"] == "false" and doc.fields["asset_kind"] == "file"
    assert doc.terms == {"tags": (), "projects": (), "folders": ()}


async def test_the_drain_sends_job_entries_to_jobs_and_asset_entries_to_assets() -> None:
    database, index = MemoryDatabase(), MemorySearchIndex()
    assets = AssetIndexer(database.catalog, database.access, index, clock=lambda: READ)
    indexer = JobIndexer(database.jobs, database.jobs, database.jobs, index, assets=assets)
    asset = _asset()
    await database.catalog.add(asset, AssetVersion(asset_id=asset.id, version=1, created_at=NOW))
    job = Job(id="01JOB000000000000000000000", owner_id=asset.owner_id, type="system.noop", params={},
              status=JobStatus.QUEUED, submitted_at=NOW)  # fmt: skip
    submitted = JobEvent(
        job_id=job.id, at=NOW, from_status=None, to_status=JobStatus.QUEUED, reason="submitted", actor="test"
    )
    await database.jobs.add(job, [submitted])
    assert await indexer.drain_once() == 2
    for kind, expected in (("asset", asset.id), ("job", job.id)):
        page = await index.search(SearchQuery(kind=kind))
        assert [hit.id for hit in page.items] == [expected]
    assert await database.jobs.pending(limit=10) == []


async def test_without_an_asset_indexer_asset_entries_are_acknowledged_unread() -> None:
    database, index = MemoryDatabase(), MemorySearchIndex()
    indexer = JobIndexer(database.jobs, database.jobs, database.jobs, index)
    asset = _asset()
    await database.catalog.add(asset, AssetVersion(asset_id=asset.id, version=1, created_at=NOW))
    assert await indexer.drain_once() == 1
    assert (await index.search(SearchQuery(kind="asset"))).items == []
    assert await database.jobs.pending(limit=10) == []
