"""Jobs into the metadata index (the original ARIES) and onto the event bus: the outbox relay.

The relay drains the transactional outbox: every job change wrote outbox entries in the
same transaction (one ``job.<status>`` per status change, else a single ``job``; every
entry means "re-index the job", a ``job.<status>`` one also "announce it"), so the index
catches up with SQL within one drain and status events are published at least once,
never for a change that was rolled back. ``asset`` entries (written by the catalog and access
stores) go to the ``AssetIndexer`` (``asset_indexer``). ``rebuild`` (``studio9 reindex``)
recreates the index from SQL alone. Several processes may drain at once: documents
carry the time they were read and the newer one wins; events may repeat.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import structlog

from studio9.jobs.domain import Job
from studio9.jobs.ports import JobHistory, JobQuery, JobStore
from studio9.messaging.domain import Event
from studio9.messaging.ports import EventPublisher
from studio9.metadata.asset_indexer import AssetIndexer
from studio9.metadata.asset_search import KIND as ASSET_KIND
from studio9.metadata.job_search import KIND, job_document
from studio9.metadata.ports import ChangeFeed, SearchIndex

log = structlog.get_logger()

_HEARTBEATS_INDEXED = 20


@attrs.define
class JobIndexer:
    """Drains the outbox into the search index and onto the event bus: job entries here, asset
    entries through ``assets`` (without one, they are acknowledged unread)."""

    feed: ChangeFeed
    store: JobStore
    history: JobHistory
    index: SearchIndex
    events: EventPublisher | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    assets: AssetIndexer | None = None

    async def drain_once(self, *, limit: int = 500) -> int:
        """Index and announce what the outbox holds (up to ``limit`` entries); returns how many."""
        pending = await self.feed.pending(limit=limit)
        if not pending:
            return 0
        assets = [c.ref_id for c in pending if c.topic == ASSET_KIND]
        if assets and self.assets is not None:
            await self.assets.refresh(assets)
        changes = [c for c in pending if c.topic != ASSET_KIND]
        ids = list(dict.fromkeys(c.ref_id for c in changes))
        jobs = {j.id: j for j in await self.store.list(JobQuery(ids=ids, limit=len(ids)))} if ids else {}
        indexed = [jobs[i] for i in ids if i in jobs]  # every entry means "re-index it"
        if indexed:
            await self._upsert(indexed)
        if self.events is not None:
            announced = [
                _event(c.topic, jobs[c.ref_id]) for c in changes if c.topic != KIND and c.ref_id in jobs
            ]
            if announced:
                await self.events.publish(announced)
        await self.feed.acknowledge([c.id for c in pending])
        return len(pending)

    async def rebuild(self, *, batch: int = 500) -> int:
        """Recreate every job document, and every asset document (with ``assets``), from SQL;
        returns how many were written."""
        await self.index.clear(KIND)
        written, before = 0, None
        while jobs := await self.store.list(JobQuery(limit=batch, before=before)):
            await self._upsert(jobs)
            written += len(jobs)
            before = jobs[-1].id
        log.info("jobs_reindexed", documents=written)
        if self.assets is not None:
            written += await self.assets.rebuild(batch=batch)
        return written

    async def run_forever(self, interval: float = 1.0, *, batch: int = 2000) -> None:
        """Drain every ``interval`` seconds, at once again after a full batch: changes wait at
        most ``interval``, and under load they are indexed in large batches, not one by one.
        Every process runs this loop; one at a time drains (``ChangeFeed.draining``)."""
        while True:
            try:
                async with self.feed.draining() as mine:
                    while mine and await self.drain_once(limit=batch) >= batch:
                        pass
            except Exception:
                log.exception("indexer_drain_failed")
            await asyncio.sleep(interval)

    async def _upsert(self, jobs: Sequence[Job]) -> None:
        read_at = self.clock()
        # One read for the heartbeats of the whole batch, and only of jobs that ever beat.
        beating = [job.id for job in jobs if job.last_heartbeat_at]
        beats = await self.history.heartbeats_for(beating, limit_each=_HEARTBEATS_INDEXED) if beating else {}
        await self.index.upsert([job_document(job, beats.get(job.id, ()), read_at) for job in jobs])


def _event(topic: str, job: Job) -> Event:
    payload: dict[str, Any] = {
        "id": job.id,
        "type": job.type,
        "owner_id": job.owner_id,
        "status": job.status.value,
        "attempt": job.attempt,
        "progress": job.progress,
    }
    if job.error:
        payload["error"] = {"code": job.error.code, "message": job.error.message}
    if job.result is not None and job.status.is_terminal:
        payload["result"] = dict(job.result)
    return Event(
        topic=topic,
        subject_id=job.id,
        version=job.version,
        at=job.completed_at or job.submitted_at,
        payload=payload,
    )
