"""JobStore, JobHistory and ChangeFeed on an SQLite file, off the event loop in one hop per call.

URL:      sqlite+aiosqlite:///path/studio9.db (chosen by ``SqlDatabase`` for SQLite files)
Features: compare-and-set writes · claim in one ``UPDATE … RETURNING`` · group commit · WAL
Extra:    none (the stdlib ``sqlite3`` module; SQLite 3.35 or newer, for RETURNING)

Each call is one unit of work (``sqlite_units``) run whole on a dedicated thread that
holds one stdlib ``sqlite3`` connection (``adapters.sql.sqlite_thread``): one thread hop per call
instead of one per statement, no SQLAlchemy on the hot path, concurrent writes committed
together, and the write lock held only while they run. Writes go to one thread and reads
to another, so that a long scan (the supervisor's ``due`` over a large history) never holds
up a claim or an outcome. Other connections (the rest of the SQL adapters, other
processes) wait for the writer through SQLite's busy timeout as they always did. Rows are
encoded exactly as SQLAlchemy encodes them, so either side reads the other's.

Why it exists beside the portable ``sql`` store: the edge runs on SQLite, where aiosqlite
makes every statement a thread hop and holds the write lock across event-loop turns. The
first job store, on aiosqlite, ran about 75 jobs/s in ``benchmarks/jobs_edge.py``; with this
one the same benchmark runs about 980 (``benchmarks/README.md``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence

from adapters.job_store import sqlite_units as units
from adapters.sql.sqlite_thread import SqliteThread
from studio9.jobs.domain import Claim, Heartbeat, Job, JobEvent, JobNotFound, JobStatus
from studio9.jobs.ports import DueCriteria, JobQuery
from studio9.metadata.ports import Change


class SqliteJobStore:
    """The job store of an SQLite file: every method is one unit of work, a write on
    ``writer``, a read on ``reader`` (WAL: a long scan never holds up a write)."""

    def __init__(self, writer: SqliteThread, reader: SqliteThread | None = None) -> None:
        self._writer, self._reader = writer, reader or writer

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        await self._writer.write(units.add, job, events)

    async def get(self, job_id: str) -> Job:
        job = await self._reader.read(units.get, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        return await self._writer.write(units.save, job, expected_version, events, heartbeat)

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        return await self._writer.write(units.claim, job_id, claim)

    async def list(self, query: JobQuery) -> Sequence[Job]:
        return await self._reader.read(units.list_jobs, query)

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        return await self._reader.read(units.due, criteria)

    async def counts(self) -> Mapping[JobStatus, int]:
        return await self._reader.read(units.counts)

    # -- JobHistory ----------------------------------------------------------------------------

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        return await self._reader.read(units.events, job_id)

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        return await self._reader.read(units.heartbeats, job_id, limit)

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        return await self._reader.read(units.heartbeats_for, job_ids, limit_each)

    # -- ChangeFeed ----------------------------------------------------------------------------

    async def pending(self, *, limit: int) -> Sequence[Change]:
        return await self._reader.read(units.pending, limit)

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        if change_ids:
            await self._writer.write(units.acknowledge, change_ids)

    @contextlib.asynccontextmanager
    async def draining(self) -> AsyncIterator[bool]:
        # An SQLite file has one serving process (the in-memory broker cannot be shared).
        yield True
