"""JobStore, JobHistory and ChangeFeed in memory, with the same compare-and-set semantics as SQL.

URL:      memory:// (as STUDIO9_DATABASE_URL)
Features: nothing kept · thread-safe · single process
Extra:    none
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import AsyncIterator, Mapping, Sequence

import attrs

from studio9.jobs.domain import (
    Claim,
    Heartbeat,
    Job,
    JobEvent,
    JobExists,
    JobNotFound,
    JobStatus,
    outbox_topics,
)
from studio9.jobs.ports import DueCriteria, JobQuery
from studio9.metadata.ports import Change


class MemoryJobStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._events: dict[str, list[JobEvent]] = {}
        self._heartbeats: dict[str, list[Heartbeat]] = {}
        self._outbox: dict[int, Change] = {}
        self._ids = itertools.count(1)

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        with self._lock:
            if job.id in self._jobs:
                raise JobExists(job.id)
            self._jobs[job.id] = job
            self._events[job.id] = list(events)
            self._heartbeats[job.id] = []
            self._note(job.id, events)

    async def get(self, job_id: str) -> Job:
        with self._lock:
            if job_id not in self._jobs:
                raise JobNotFound(job_id)
            return self._jobs[job_id]

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        with self._lock:
            current = self._jobs.get(job.id)
            if current is None or current.version != expected_version:
                return None
            stored = attrs.evolve(job, version=expected_version + 1)
            self._jobs[job.id] = stored
            self._events[job.id].extend(events)
            if heartbeat is not None:
                self._heartbeats[job.id].append(heartbeat)
            self._note(job.id, events)
            return stored

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        with self._lock:
            current = self._jobs.get(job_id)
            claimed = claim.apply(current) if current is not None else None
            if current is None or claimed is None:
                return None
            job, event = claimed
            stored = attrs.evolve(job, version=current.version + 1)
            self._jobs[job_id] = stored
            self._events[job_id].append(event)
            self._note(job_id, [event])
            return stored

    async def list(self, query: JobQuery) -> Sequence[Job]:
        with self._lock:
            jobs = [
                j
                for j in self._jobs.values()
                if (query.owner_id is None or j.owner_id == query.owner_id)
                and (query.type is None or j.type == query.type)
                and (query.status is None or j.status is query.status)
                and (query.ids is None or j.id in query.ids)
                and (query.before is None or j.id < query.before)
            ]
        return sorted(jobs, key=lambda j: j.id, reverse=True)[: query.limit]

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if _is_due(j, criteria)]
        return sorted(jobs, key=lambda j: j.id)[: criteria.limit]

    async def counts(self) -> Mapping[JobStatus, int]:
        with self._lock:
            statuses = [j.status for j in self._jobs.values()]
        return {status: statuses.count(status) for status in JobStatus}

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        with self._lock:
            return list(self._events.get(job_id, ()))

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        with self._lock:
            return list(reversed(self._heartbeats.get(job_id, ())))[:limit]

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        with self._lock:
            found = {i: list(reversed(self._heartbeats.get(i, ())))[:limit_each] for i in job_ids}
        return {i: beats for i, beats in found.items() if beats}

    async def pending(self, *, limit: int) -> Sequence[Change]:
        with self._lock:
            return [self._outbox[i] for i in sorted(self._outbox)[:limit]]

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        with self._lock:
            for change_id in change_ids:
                self._outbox.pop(change_id, None)

    def enqueue(self, topic: str, ref_ids: Sequence[str]) -> None:
        """Append an outbox entry of ``topic`` per id: how the other in-memory stores (catalog,
        access) write to the one change feed, as the SQL stores insert into ``outbox``."""
        with self._lock:
            for ref_id in dict.fromkeys(ref_ids):
                change_id = next(self._ids)
                self._outbox[change_id] = Change(id=change_id, topic=topic, ref_id=ref_id)

    @contextlib.asynccontextmanager
    async def draining(self) -> AsyncIterator[bool]:
        yield True  # one process: its loops take turns on the event loop

    def _note(self, job_id: str, events: Sequence[JobEvent]) -> None:
        for topic in outbox_topics(events):
            change_id = next(self._ids)
            self._outbox[change_id] = Change(id=change_id, topic=topic, ref_id=job_id)


def _is_due(job: Job, c: DueCriteria) -> bool:
    if job.status in (JobStatus.QUEUED, JobStatus.SUBMITTED):
        return (job.dispatched_at is None or job.dispatched_at <= c.redeliver_before) and (
            job.not_before is None or job.not_before <= c.now
        )
    if job.status is JobStatus.RUNNING:
        return (
            (job.lease_expires_at is not None and job.lease_expires_at <= c.now)
            or (job.deadline_at is not None and job.deadline_at <= c.now)
            or (
                job.cancel_requested
                and job.cancel_requested_at is not None
                and job.cancel_requested_at <= c.cancel_before
            )
        )
    return job.cleaned_at is None
