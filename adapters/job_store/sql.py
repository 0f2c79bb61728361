"""JobStore, JobHistory and ChangeFeed on SQLAlchemy Core (any SQL database), and the statements
the PostgreSQL store (``postgresql``) runs on psycopg.

URL:      URI-named SQLite (``sqlite+aiosqlite:///file:…?uri=true``), and SQLite older than 3.35
          (no RETURNING); SQLite files get the faster ``sqlite`` store, PostgreSQL ``postgresql``
Features: compare-and-set writes · claim in one ``UPDATE … RETURNING`` (or UPDATE then SELECT)
          · one connection per call

Why it stays beside the two fast stores: it is the portable one, on any SQLAlchemy engine —
the SQLite of an older system Python (Ubuntu 20.04's 3.31, RHEL 8's 3.26) has no RETURNING,
which the ``sqlite`` store needs, and a URI-named database may not be one another connection
can open (``mode=memory``). And it holds the statements: ``postgresql`` runs these very ones,
compiled for psycopg, so there is one definition of every job-store query.

Every change is a compare-and-set: ``UPDATE jobs … WHERE id = :id AND version = :expected``;
the events, heartbeat and outbox rows of a change are written in the same transaction.
Statements are built once (module level, or cached by shape) so that SQLAlchemy finds their
compiled form in its cache without rebuilding cache keys; rows are plain tuples mapped by
``sql_rows``, no ORM objects.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.job_store.sql_rows import (
    EVENT_COLUMNS,
    EVENTS,
    HEARTBEAT_COLUMNS,
    HEARTBEATS,
    JOB_COLUMNS,
    JOBS,
    OUTBOX,
    OUTBOX_COLUMNS,
    TERMINAL,
    as_dicts,
    change_time,
    event_from_row,
    event_rows,
    heartbeat_from_row,
    heartbeat_row,
    job_from_row,
    job_row,
    outbox_rows,
)
from studio9.errors import BackendUnavailable
from studio9.jobs.domain import Claim, Heartbeat, Job, JobEvent, JobExists, JobNotFound, JobStatus
from studio9.jobs.ports import DueCriteria, JobQuery
from studio9.metadata.ports import Change

_SELECT_JOBS = sa.select(*(JOBS.c[name] for name in JOB_COLUMNS))
GET = _SELECT_JOBS.where(JOBS.c.id == sa.bindparam("b_id"))
_INSERT_JOB = sa.insert(JOBS)
_INSERT_EVENTS = sa.insert(EVENTS)
_INSERT_HEARTBEAT = sa.insert(HEARTBEATS)
_INSERT_OUTBOX = sa.insert(OUTBOX)
# SET takes every column named in the parameters (all but ``id``).
_SAVE = sa.update(JOBS).where(JOBS.c.id == sa.bindparam("b_id"), JOBS.c.version == sa.bindparam("b_expected"))
_NOW = sa.bindparam("b_now", type_=JOBS.c.submitted_at.type)


def _status_in(*statuses: str) -> sa.ColumnElement[bool]:
    # ORs of equalities, not IN: a literal IN list is expanded per call (not cacheable as text).
    return sa.or_(*(JOBS.c.status == status for status in statuses))


DUE = (
    _SELECT_JOBS.where(
        sa.or_(
            sa.and_(
                _status_in(JobStatus.QUEUED.value, JobStatus.SUBMITTED.value),
                sa.or_(JOBS.c.dispatched_at.is_(None), JOBS.c.dispatched_at <= sa.bindparam("b_redeliver")),
                sa.or_(JOBS.c.not_before.is_(None), JOBS.c.not_before <= _NOW),
            ),
            sa.and_(
                JOBS.c.status == JobStatus.RUNNING.value,
                sa.or_(
                    JOBS.c.lease_expires_at <= _NOW,
                    JOBS.c.deadline_at <= _NOW,
                    sa.and_(
                        JOBS.c.cancel_requested.is_(True),
                        JOBS.c.cancel_requested_at <= sa.bindparam("b_cancel"),
                    ),
                ),
            ),
            sa.and_(_status_in(*TERMINAL), JOBS.c.cleaned_at.is_(None)),
        )
    )
    .order_by(JOBS.c.id)
    .limit(sa.bindparam("b_limit"))
)
COUNTS = sa.select(JOBS.c.status, sa.func.count()).group_by(JOBS.c.status)
SELECT_EVENTS = (
    sa.select(*(EVENTS.c[n] for n in EVENT_COLUMNS))
    .where(EVENTS.c.job_id == sa.bindparam("b_id"))
    .order_by(EVENTS.c.id)
)
SELECT_HEARTBEATS = (
    sa.select(*(HEARTBEATS.c[n] for n in HEARTBEAT_COLUMNS))
    .where(HEARTBEATS.c.job_id == sa.bindparam("b_id"))
    .order_by(HEARTBEATS.c.id.desc())
    .limit(sa.bindparam("b_limit"))
)
PENDING = sa.select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.ref_id).order_by(OUTBOX.c.id)
PENDING = PENDING.limit(sa.bindparam("b_limit"))
#: One advisory lock per database for "draining the outbox" (any fixed 64-bit number).
_DRAIN_LOCK_KEY = 0x5354_3944_5241_494E
TRY_DRAIN_LOCK = sa.select(sa.func.pg_try_advisory_xact_lock(_DRAIN_LOCK_KEY))


def _among(column: sa.Column[Any], *, postgres: bool, name: str = "b_ids") -> sa.ColumnElement[bool]:
    """``column`` among the list bound as ``name``: one array parameter on PostgreSQL (a cached
    statement, whatever the list's length), else ``IN`` expanded per call."""
    if postgres:
        return column == sa.any_(sa.bindparam(name, type_=postgresql.ARRAY(column.type)))
    return column.in_(sa.bindparam(name, expanding=True))


ACKNOWLEDGE = {pg: sa.delete(OUTBOX).where(_among(OUTBOX.c.id, postgres=pg)) for pg in (False, True)}


class SqlJobStore:
    """The job store on an async SQLAlchemy engine; each call checks out one connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Single statements (every read) run in autocommit: no BEGIN and COMMIT/ROLLBACK.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._returning = engine.dialect.update_returning

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        with _unavailable():
            async with self._engine.begin() as conn:
                try:
                    await conn.execute(_INSERT_JOB, dict(zip(JOB_COLUMNS, job_row(job), strict=True)))
                except IntegrityError as exc:  # the primary key: nothing else of a job is unique
                    raise JobExists(job.id) from exc
                await _side_rows(conn, job.id, events, None, job.submitted_at)

    async def get(self, job_id: str) -> Job:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                row = (await conn.execute(GET, {"b_id": job_id})).first()
        if row is None:
            raise JobNotFound(job_id)
        return job_from_row(row)

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        stored = attrs.evolve(job, version=expected_version + 1)
        values = dict(zip(JOB_COLUMNS[1:], job_row(stored)[1:], strict=True))
        with _unavailable():
            async with self._engine.begin() as conn:
                result = await conn.execute(_SAVE, {**values, "b_id": job.id, "b_expected": expected_version})
                if result.rowcount != 1:
                    return None
                await _side_rows(conn, job.id, events, heartbeat, change_time(job, events, heartbeat))
        return stored

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        if not claim.deadlines:
            return None
        params, types = claim_params(job_id, claim), len(claim.deadlines)
        with _unavailable():
            async with self._engine.begin() as conn:
                if self._returning:
                    row = (await conn.execute(claim_update(types, returning=True), params)).first()
                elif (await conn.execute(claim_update(types, returning=False), params)).rowcount:
                    row = (await conn.execute(GET, {"b_id": job_id})).first()
                else:
                    row = None
                if row is None:
                    return None
                await _side_rows(conn, job_id, [claim.event(job_id)], None, claim.at)
        return job_from_row(row)

    async def list(self, query: JobQuery) -> Sequence[Job]:
        params = list_params(query)
        statement = list_statement(frozenset(params), postgres=False)
        with _unavailable():
            async with self._autocommit.connect() as conn:
                return [job_from_row(row) for row in await conn.execute(statement, params)]

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                return [job_from_row(row) for row in await conn.execute(DUE, due_params(criteria))]

    async def counts(self) -> Mapping[JobStatus, int]:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                rows = (await conn.execute(COUNTS)).all()
        found = {JobStatus(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in JobStatus}

    # -- JobHistory ----------------------------------------------------------------------------

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                return [event_from_row(row) for row in await conn.execute(SELECT_EVENTS, {"b_id": job_id})]

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                rows = await conn.execute(SELECT_HEARTBEATS, {"b_id": job_id, "b_limit": limit})
                return [heartbeat_from_row(row) for row in rows]

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        ids = list(dict.fromkeys(job_ids))
        found: dict[str, list[Heartbeat]] = {}
        if not ids:
            return found
        with _unavailable():
            async with self._autocommit.connect() as conn:
                rows: list[sa.Row[Any]] = []
                for job_id in ids:
                    rows += await conn.execute(SELECT_HEARTBEATS, {"b_id": job_id, "b_limit": limit_each})
        for row in rows:
            beat = heartbeat_from_row(row)
            found.setdefault(beat.job_id, []).append(beat)
        return found

    # -- ChangeFeed ----------------------------------------------------------------------------

    async def pending(self, *, limit: int) -> Sequence[Change]:
        with _unavailable():
            async with self._autocommit.connect() as conn:
                rows = await conn.execute(PENDING, {"b_limit": limit})
                return [Change(id=i, topic=topic, ref_id=ref) for i, topic, ref in rows]

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        if not change_ids:
            return
        with _unavailable():
            async with self._engine.begin() as conn:
                await conn.execute(ACKNOWLEDGE[False], {"b_ids": list(change_ids)})

    @contextlib.asynccontextmanager
    async def draining(self) -> AsyncIterator[bool]:
        # In-memory or URI-named SQLite: one process.
        yield True


async def _side_rows(
    conn: AsyncConnection,
    job_id: str,
    events: Sequence[JobEvent],
    heartbeat: Heartbeat | None,
    at: datetime,
) -> None:
    if events:
        await conn.execute(_INSERT_EVENTS, as_dicts(EVENT_COLUMNS, event_rows(events)))
    if heartbeat is not None:
        await conn.execute(
            _INSERT_HEARTBEAT, dict(zip(HEARTBEAT_COLUMNS, heartbeat_row(heartbeat), strict=True))
        )
    await conn.execute(_INSERT_OUTBOX, as_dicts(OUTBOX_COLUMNS, outbox_rows(job_id, events, at)))


def claim_params(job_id: str, claim: Claim) -> dict[str, Any]:
    """The bound values of ``claim_update`` for ``claim`` (which names at least one job type)."""
    params: dict[str, Any] = {
        "b_id": job_id,
        "b_at": claim.at,
        "b_worker": claim.worker,
        "b_lease": claim.lease_expires_at,
        "b_types": list(claim.deadlines),
    }
    for i, (name, deadline) in enumerate(claim.deadlines.items()):
        params[f"b_t{i}"], params[f"b_d{i}"] = name, deadline
    return params


def list_params(query: JobQuery) -> dict[str, Any]:
    """The bound values of ``list_statement`` for ``query``: only the filters it sets."""
    params: dict[str, Any] = {"b_limit": query.limit}
    if query.owner_id is not None:
        params["b_owner"] = query.owner_id
    if query.type is not None:
        params["b_type"] = query.type
    if query.status is not None:
        params["b_status"] = query.status.value
    if query.ids is not None:
        params["b_ids"] = list(query.ids)
    if query.before is not None:
        params["b_before"] = query.before
    return params


def due_params(criteria: DueCriteria) -> dict[str, Any]:
    return {
        "b_now": criteria.now,
        "b_redeliver": criteria.redeliver_before,
        "b_cancel": criteria.cancel_before,
        "b_limit": criteria.limit,
    }


@functools.cache
def claim_update(types: int, *, returning: bool, postgres: bool = False) -> sa.Update:
    """The claim, as ``Claim.apply`` describes it, for a worker running ``types`` job types."""
    at = sa.bindparam("b_at", type_=JOBS.c.started_at.type)
    deadline = sa.case(
        *(
            (sa.bindparam(f"b_t{i}"), sa.bindparam(f"b_d{i}", type_=JOBS.c.deadline_at.type))
            for i in range(types)
        ),
        value=JOBS.c.type,
    )
    statement = (
        sa.update(JOBS)
        .where(
            JOBS.c.id == sa.bindparam("b_id"),
            JOBS.c.status == JobStatus.QUEUED.value,
            sa.or_(JOBS.c.not_before.is_(None), JOBS.c.not_before <= at),
            _among(JOBS.c.type, postgres=postgres, name="b_types"),
        )
        .values(
            status=JobStatus.RUNNING.value,
            started_at=at,
            attempt=JOBS.c.attempt + 1,
            lease_owner=sa.bindparam("b_worker"),
            lease_expires_at=sa.bindparam("b_lease", type_=JOBS.c.lease_expires_at.type),
            deadline_at=deadline,
            last_heartbeat_at=at,
            cancel_requested=False,
            progress=0.0,
            eta_seconds=None,
            message=None,
            version=JOBS.c.version + 1,
        )
    )
    return statement.returning(*(JOBS.c[name] for name in JOB_COLUMNS)) if returning else statement


@functools.cache
def list_statement(params: frozenset[str], *, postgres: bool) -> sa.Select[Any]:
    """The ``list`` query for the filters present in ``params``."""
    statement = _SELECT_JOBS.order_by(JOBS.c.id.desc()).limit(sa.bindparam("b_limit"))
    if "b_owner" in params:
        statement = statement.where(JOBS.c.owner_id == sa.bindparam("b_owner"))
    if "b_type" in params:
        statement = statement.where(JOBS.c.type == sa.bindparam("b_type"))
    if "b_status" in params:
        statement = statement.where(JOBS.c.status == sa.bindparam("b_status"))
    if "b_ids" in params:
        statement = statement.where(_among(JOBS.c.id, postgres=postgres))
    if "b_before" in params:
        statement = statement.where(JOBS.c.id < sa.bindparam("b_before"))
    return statement


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Connection failures as BackendUnavailable (503), like every other adapter's."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise BackendUnavailable(f"job database unavailable: {type(exc.orig or exc).__name__}") from exc
