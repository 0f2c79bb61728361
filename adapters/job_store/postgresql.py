"""JobStore, JobHistory and ChangeFeed on PostgreSQL, through psycopg directly (``pg_raw``).

URL:      postgresql+psycopg://… (``adapters.database.sql`` picks this store for PostgreSQL)
Features: every change one statement (``postgresql_statements``) · changes that coincide committed
          together (``pg_batch``) · claims in one ``UPDATE … RETURNING`` · outbox drained
          by one process at a time (advisory lock)
Extra:    cloud (psycopg, psycopg_pool)

The statements are ``adapters.job_store.sql``' and ``postgresql_statements``'s SQLAlchemy ones, compiled once;
values are encoded here as SQLAlchemy's column types would (JSON documents as JSONB, ``None``
as JSON ``null`` like SQLAlchemy's ``JSON``; datetimes UTC-aware), so that rows written by
this store and by the SQLAlchemy one read back alike.

Why it exists beside the portable ``sql`` store: in the cloud the job store is the hot path,
and SQLAlchemy's per-call work was about 200 µs of CPU per statement, most of a job's cost
(docs/decisions.md, "The PostgreSQL job store bypasses SQLAlchemy").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import psycopg
from psycopg.types.json import Jsonb

from adapters.job_store import postgresql_statements as statements
from adapters.job_store.sql import (
    ACKNOWLEDGE,
    COUNTS,
    DUE,
    GET,
    PENDING,
    SELECT_EVENTS,
    SELECT_HEARTBEATS,
    TRY_DRAIN_LOCK,
    claim_params,
    claim_update,
    due_params,
    list_params,
    list_statement,
)
from adapters.job_store.sql_rows import (
    JOB_COLUMNS,
    change_time,
    event_from_row,
    event_rows,
    heartbeat_from_row,
    heartbeat_row,
    job_from_row,
    job_row,
    outbox_rows,
)
from adapters.sql.pg_batch import GroupCommit
from adapters.sql.pg_raw import PgRunner, unavailable
from studio9.jobs.domain import Claim, Heartbeat, Job, JobEvent, JobExists, JobNotFound, JobStatus
from studio9.jobs.ports import DueCriteria, JobQuery
from studio9.metadata.ports import Change


def _time(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("naive datetime given; Studio9 stores UTC-aware datetimes only")
    return value


def _read_time(value: datetime | None) -> datetime | None:
    # psycopg answers in the session's time zone; the domain wants UTC.
    return None if value is None else value.astimezone(UTC)


def _doc(value: Any) -> Jsonb:
    return Jsonb(value)


def _read_doc(value: Any) -> Any:
    return value  # psycopg decodes JSONB itself


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, time=_read_time, doc=_read_doc)


class PostgresJobStore:
    """The job store on a psycopg pool (``runner``)."""

    def __init__(self, runner: PgRunner) -> None:
        self._db = runner
        self._writes = GroupCommit(runner)  # job changes: committed together when they coincide

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        topics = outbox_rows(job.id, events, job.submitted_at)
        params = statements.job_params(JOB_COLUMNS, job_row(job, time=_time, doc=_doc))
        params |= statements.side_params(event_rows(events, time=_time, doc=_doc), None, topics)
        try:
            await self._writes.write(statements.add_statement(len(events), len(topics)), params, key=job.id)
        except psycopg.errors.UniqueViolation as exc:  # the primary key: nothing else is unique
            raise JobExists(job.id) from exc

    async def aclose(self) -> None:
        """Let the batches in flight finish (their callers wait for them) before the pool closes."""
        await self._writes.aclose()

    async def get(self, job_id: str) -> Job:
        row = await self._db.one(GET, {"b_id": job_id})
        if row is None:
            raise JobNotFound(job_id)
        return _job(row)

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        stored = attrs.evolve(job, version=expected_version + 1)
        beat = heartbeat_row(heartbeat, time=_time) if heartbeat is not None else None
        topics = outbox_rows(job.id, events, change_time(job, events, heartbeat))
        params = statements.job_params(JOB_COLUMNS[1:], job_row(stored, time=_time, doc=_doc)[1:])
        params |= {"b_id": job.id, "b_expected": expected_version}
        params |= statements.side_params(event_rows(events, time=_time, doc=_doc), beat, topics)
        statement = statements.save_statement(len(events), len(topics), beat is not None)
        row = await self._writes.write(statement, params, key=job.id)
        return stored if row is not None and row[0] == 1 else None

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        if not claim.deadlines:
            return None
        params = claim_params(job_id, claim)
        events = [claim.event(job_id)]
        rows = event_rows(events, time=_time, doc=_doc)
        params |= statements.side_params(rows, None, outbox_rows(job_id, events, claim.at))
        update = claim_update(len(claim.deadlines), returning=True, postgres=True)
        statement = statements.claim_statement(update)
        row = await self._writes.write(statement, params, key=job_id)
        return _job(row) if row is not None else None

    async def list(self, query: JobQuery) -> Sequence[Job]:
        params = list_params(query)
        statement = list_statement(frozenset(params), postgres=True)
        return [_job(row) for row in await self._db.all(statement, params)]

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        return [_job(row) for row in await self._db.all(DUE, due_params(criteria))]

    async def counts(self) -> Mapping[JobStatus, int]:
        found = {JobStatus(status): int(count) for status, count in await self._db.all(COUNTS, {})}
        return {status: found.get(status, 0) for status in JobStatus}

    # -- JobHistory ----------------------------------------------------------------------------

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        rows = await self._db.all(SELECT_EVENTS, {"b_id": job_id})
        return [event_from_row(row, time=_read_time, doc=_read_doc) for row in rows]

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        rows = await self._db.all(SELECT_HEARTBEATS, {"b_id": job_id, "b_limit": limit})
        return [heartbeat_from_row(row, time=_read_time) for row in rows]

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, list[Heartbeat]] = {}
        if not ids:
            return found
        for row in await self._db.all(statements.LATEST_HEARTBEATS, {"b_ids": ids, "b_limit": limit_each}):
            beat = heartbeat_from_row(row, time=_read_time)
            found.setdefault(beat.job_id, []).append(beat)
        return found

    # -- ChangeFeed ----------------------------------------------------------------------------

    async def pending(self, *, limit: int) -> Sequence[Change]:
        rows = await self._db.all(PENDING, {"b_limit": limit})
        return [Change(id=i, topic=topic, ref_id=ref) for i, topic, ref in rows]

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        if change_ids:
            await self._db.run(ACKNOWLEDGE[True], {"b_ids": list(change_ids)})

    @contextlib.asynccontextmanager
    async def draining(self) -> AsyncIterator[bool]:
        """A transaction-scoped advisory lock, held on a connection of its own for the drain:
        PostgreSQL releases it when the transaction or the connection ends, so a process that
        dies mid-drain never blocks the others."""
        compiled = self._db.compiled(TRY_DRAIN_LOCK)
        async with self._db.connection() as conn:
            with unavailable():
                await conn.execute("BEGIN")
                cursor = await conn.execute(compiled.sql, compiled.params({}))
                row = await cursor.fetchone()
            try:
                yield bool(row and row[0])
            finally:
                with contextlib.suppress(Exception):  # a broken connection takes the lock with it
                    await conn.execute("ROLLBACK")
