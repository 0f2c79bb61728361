"""JobStore, JobHistory and ChangeFeed on SQLAlchemy (SQLite and PostgreSQL alike).

Every change is a compare-and-set: ``UPDATE jobs … WHERE id = :id AND version = :expected``;
the events, heartbeat and outbox rows of a change are written in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.job_models import JobEventRow, JobHeartbeatRow, JobRow, OutboxRow
from studio9.jobs.domain import Heartbeat, Job, JobError, JobEvent, JobNotFound, JobStatus
from studio9.jobs.ports import Change, DueCriteria, JobQuery, outbox_topics

_TERMINAL = [s.value for s in JobStatus if s.is_terminal]


class SqlJobStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(sa.insert(JobRow).values(**_row_values(job)))
            await _write_side_rows(session, job.id, events, None, job.submitted_at)

    async def get(self, job_id: str) -> Job:
        async with self._sessions() as session:
            row = await session.get(JobRow, job_id)
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
        values = _row_values(stored)
        del values["id"]
        async with self._sessions.begin() as session:
            result = await session.execute(
                sa.update(JobRow)
                .where(JobRow.id == job.id, JobRow.version == expected_version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return None
            at = heartbeat.at if heartbeat else (events[0].at if events else job.submitted_at)
            await _write_side_rows(session, job.id, events, heartbeat, at)
        return stored

    async def list(self, query: JobQuery) -> Sequence[Job]:
        statement = sa.select(JobRow).order_by(JobRow.id.desc()).limit(query.limit)
        if query.owner_id is not None:
            statement = statement.where(JobRow.owner_id == query.owner_id)
        if query.type is not None:
            statement = statement.where(JobRow.type == query.type)
        if query.status is not None:
            statement = statement.where(JobRow.status == query.status.value)
        if query.ids is not None:
            statement = statement.where(JobRow.id.in_(list(query.ids)))
        if query.before is not None:
            statement = statement.where(JobRow.id < query.before)
        async with self._sessions() as session:
            return [_job(row) for row in await session.scalars(statement)]

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        now = criteria.now
        queued = sa.and_(
            JobRow.status.in_([JobStatus.QUEUED.value, JobStatus.SUBMITTED.value]),
            sa.or_(JobRow.dispatched_at.is_(None), JobRow.dispatched_at <= criteria.redeliver_before),
            sa.or_(JobRow.not_before.is_(None), JobRow.not_before <= now),
        )
        running = sa.and_(
            JobRow.status == JobStatus.RUNNING.value,
            sa.or_(
                JobRow.lease_expires_at <= now,
                JobRow.deadline_at <= now,
                sa.and_(
                    JobRow.cancel_requested.is_(True), JobRow.cancel_requested_at <= criteria.cancel_before
                ),
            ),
        )
        unclean = sa.and_(JobRow.status.in_(_TERMINAL), JobRow.cleaned_at.is_(None))
        statement = (
            sa.select(JobRow)
            .where(sa.or_(queued, running, unclean))
            .order_by(JobRow.id)
            .limit(criteria.limit)
        )
        async with self._sessions() as session:
            return [_job(row) for row in await session.scalars(statement)]

    async def counts(self) -> Mapping[JobStatus, int]:
        statement = sa.select(JobRow.status, sa.func.count()).group_by(JobRow.status)
        async with self._sessions() as session:
            rows = (await session.execute(statement)).all()
        found = {JobStatus(status): int(count) for status, count in rows}
        return {status: found.get(status, 0) for status in JobStatus}

    # -- JobHistory ----------------------------------------------------------------------------

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        statement = sa.select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        async with self._sessions() as session:
            return [_event(row) for row in await session.scalars(statement)]

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        statement = (
            sa.select(JobHeartbeatRow)
            .where(JobHeartbeatRow.job_id == job_id)
            .order_by(JobHeartbeatRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_heartbeat(row) for row in await session.scalars(statement)]

    # -- ChangeFeed ----------------------------------------------------------------------------

    async def pending(self, *, limit: int) -> Sequence[Change]:
        statement = sa.select(OutboxRow).order_by(OutboxRow.id).limit(limit)
        async with self._sessions() as session:
            return [Change(id=r.id, topic=r.topic, ref_id=r.ref_id) for r in await session.scalars(statement)]

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        if not change_ids:
            return
        async with self._sessions.begin() as session:
            await session.execute(sa.delete(OutboxRow).where(OutboxRow.id.in_(list(change_ids))))


async def _write_side_rows(
    session: AsyncSession, job_id: str, events: Sequence[JobEvent], heartbeat: Heartbeat | None, at: datetime
) -> None:
    if events:
        await session.execute(
            sa.insert(JobEventRow),
            [
                {
                    "job_id": e.job_id,
                    "at": e.at,
                    "from_status": e.from_status.value if e.from_status else None,
                    "to_status": e.to_status.value,
                    "reason": e.reason,
                    "actor": e.actor,
                    "details": dict(e.details),
                }
                for e in events
            ],
        )
    if heartbeat is not None:
        await session.execute(
            sa.insert(JobHeartbeatRow).values(
                job_id=heartbeat.job_id,
                at=heartbeat.at,
                attempt=heartbeat.attempt,
                progress=heartbeat.progress,
                eta_seconds=heartbeat.eta_seconds,
                message=heartbeat.message,
            )
        )
    await session.execute(
        sa.insert(OutboxRow),
        [{"topic": t, "ref_id": job_id, "created_at": at} for t in outbox_topics(events)],
    )


def _row_values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "owner_id": job.owner_id,
        "type": job.type,
        "params": dict(job.params),
        "priority": job.priority,
        "status": job.status.value,
        "cancel_requested": job.cancel_requested,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "timeout_seconds": job.timeout_seconds,
        "submitted_at": job.submitted_at,
        "queued_at": job.queued_at,
        "started_at": job.started_at,
        "completed_at": job.completed_at,
        "cancel_requested_at": job.cancel_requested_at,
        "not_before": job.not_before,
        "dispatched_at": job.dispatched_at,
        "deadline_at": job.deadline_at,
        "progress": job.progress,
        "eta_seconds": job.eta_seconds,
        "message": job.message,
        "last_heartbeat_at": job.last_heartbeat_at,
        "lease_owner": job.lease_owner,
        "lease_expires_at": job.lease_expires_at,
        "result": dict(job.result) if job.result is not None else None,
        "outputs": list(job.outputs),
        "error_code": job.error.code if job.error else None,
        "error_message": job.error.message if job.error else None,
        "error_details": dict(job.error.details) if job.error else None,
        "cleaned_at": job.cleaned_at,
        "version": job.version,
    }


def _job(row: JobRow) -> Job:
    error = None
    if row.error_code is not None:
        error = JobError(
            code=row.error_code, message=row.error_message or "", details=row.error_details or {}
        )
    return Job(
        id=row.id,
        owner_id=row.owner_id,
        type=row.type,
        params=row.params,
        priority=row.priority,
        status=JobStatus(row.status),
        cancel_requested=row.cancel_requested,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_seconds,
        submitted_at=row.submitted_at,
        queued_at=row.queued_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        cancel_requested_at=row.cancel_requested_at,
        not_before=row.not_before,
        dispatched_at=row.dispatched_at,
        deadline_at=row.deadline_at,
        progress=row.progress,
        eta_seconds=row.eta_seconds,
        message=row.message,
        last_heartbeat_at=row.last_heartbeat_at,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        result=row.result,
        outputs=tuple(row.outputs or ()),
        error=error,
        cleaned_at=row.cleaned_at,
        version=row.version,
    )


def _event(row: JobEventRow) -> JobEvent:
    return JobEvent(
        job_id=row.job_id,
        at=row.at,
        from_status=JobStatus(row.from_status) if row.from_status else None,
        to_status=JobStatus(row.to_status),
        reason=row.reason,
        actor=row.actor,
        details=row.details or {},
    )


def _heartbeat(row: JobHeartbeatRow) -> Heartbeat:
    return Heartbeat(
        job_id=row.job_id,
        at=row.at,
        attempt=row.attempt,
        progress=row.progress,
        eta_seconds=row.eta_seconds,
        message=row.message,
    )
