"""Job rows as plain tuples, for both job stores (SQLAlchemy Core and the stdlib ``sqlite3`` fast path).

Rows are tuples in ``JOB_COLUMNS`` order (likewise events and heartbeats), so that one
mapper serves both stores: the Core store lets SQLAlchemy's column types encode values
(``time``/``doc`` left as they are), the SQLite store passes the encoders below, which
write exactly what SQLAlchemy writes on SQLite (``UTCDateTime`` as naive UTC
``YYYY-MM-DD HH:MM:SS.ffffff`` text, JSON as ``json.dumps`` text, ``None`` as ``'null'``),
so rows written by either are read back alike by the other and by the ORM.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from adapters.job_store.sql_models import JobEventRow, JobHeartbeatRow, JobRow, OutboxRow
from studio9.jobs.domain import Heartbeat, Job, JobError, JobEvent, JobStatus, outbox_topics

JOBS: sa.Table = JobRow.__table__  # type: ignore[assignment]
EVENTS: sa.Table = JobEventRow.__table__  # type: ignore[assignment]
HEARTBEATS: sa.Table = JobHeartbeatRow.__table__  # type: ignore[assignment]
OUTBOX: sa.Table = OutboxRow.__table__  # type: ignore[assignment]

#: The ``jobs`` columns every statement reads and writes, in the order of ``job_row``.
JOB_COLUMNS = (
    "id", "owner_id", "type", "params", "priority", "status", "cancel_requested", "attempt",
    "max_attempts", "timeout_seconds", "submitted_at", "queued_at", "started_at", "completed_at",
    "cancel_requested_at", "not_before", "dispatched_at", "deadline_at", "progress", "eta_seconds",
    "message", "last_heartbeat_at", "lease_owner", "lease_expires_at", "result", "outputs",
    "error_code", "error_message", "error_details", "cleaned_at", "version", "lost_attempts",
)  # fmt: skip
EVENT_COLUMNS = ("job_id", "at", "from_status", "to_status", "reason", "actor", "details")
HEARTBEAT_COLUMNS = ("job_id", "at", "attempt", "progress", "eta_seconds", "message")
OUTBOX_COLUMNS = ("topic", "ref_id", "created_at")
TERMINAL = tuple(s.value for s in JobStatus if s.is_terminal)

Codec = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def sqlite_time(value: datetime | None) -> str | None:
    """A UTC-aware datetime as SQLAlchemy stores ``UTCDateTime`` on SQLite."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given; Studio9 stores UTC-aware datetimes only")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def sqlite_read_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def sqlite_doc(value: Any) -> str:
    return json.dumps(value)


def sqlite_read_doc(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def job_row(job: Job, time: Codec = _same, doc: Codec = _same) -> tuple[Any, ...]:
    """``job`` as a ``jobs`` row in ``JOB_COLUMNS`` order."""
    error = job.error
    return (
        job.id, job.owner_id, job.type, doc(dict(job.params)), job.priority, job.status.value,
        job.cancel_requested, job.attempt, job.max_attempts, job.timeout_seconds,
        time(job.submitted_at), time(job.queued_at), time(job.started_at), time(job.completed_at),
        time(job.cancel_requested_at), time(job.not_before), time(job.dispatched_at),
        time(job.deadline_at), job.progress, job.eta_seconds, job.message, time(job.last_heartbeat_at),
        job.lease_owner, time(job.lease_expires_at),
        doc(dict(job.result) if job.result is not None else None), doc(list(job.outputs)),
        error.code if error else None, error.message if error else None,
        doc(dict(error.details) if error else None), time(job.cleaned_at), job.version,
        job.lost_attempts,
    )  # fmt: skip


def job_from_row(row: Sequence[Any], time: Codec = _same, doc: Codec = _same) -> Job:
    """The job of a ``jobs`` row read in ``JOB_COLUMNS`` order."""
    (
        id_, owner_id, type_, params, priority, status, cancel_requested, attempt, max_attempts,
        timeout_seconds, submitted_at, queued_at, started_at, completed_at, cancel_requested_at,
        not_before, dispatched_at, deadline_at, progress, eta_seconds, message, last_heartbeat_at,
        lease_owner, lease_expires_at, result, outputs, error_code, error_message, error_details,
        cleaned_at, version, lost_attempts,
    ) = row  # fmt: skip
    error = None
    if error_code is not None:
        error = JobError(code=error_code, message=error_message or "", details=doc(error_details) or {})
    return Job(
        id=id_,
        owner_id=owner_id,
        type=type_,
        params=doc(params),
        priority=priority,
        status=JobStatus(status),
        cancel_requested=bool(cancel_requested),
        attempt=attempt,
        max_attempts=max_attempts,
        timeout_seconds=timeout_seconds,
        submitted_at=time(submitted_at),
        queued_at=time(queued_at),
        started_at=time(started_at),
        completed_at=time(completed_at),
        cancel_requested_at=time(cancel_requested_at),
        not_before=time(not_before),
        dispatched_at=time(dispatched_at),
        deadline_at=time(deadline_at),
        progress=progress,
        eta_seconds=eta_seconds,
        message=message,
        last_heartbeat_at=time(last_heartbeat_at),
        lease_owner=lease_owner,
        lease_expires_at=time(lease_expires_at),
        result=doc(result),
        outputs=tuple(doc(outputs) or ()),
        error=error,
        cleaned_at=time(cleaned_at),
        version=version,
        lost_attempts=lost_attempts or 0,
    )


def event_rows(events: Sequence[JobEvent], time: Codec = _same, doc: Codec = _same) -> list[tuple[Any, ...]]:
    return [
        (
            e.job_id,
            time(e.at),
            e.from_status.value if e.from_status else None,
            e.to_status.value,
            e.reason,
            e.actor,
            doc(dict(e.details)),
        )
        for e in events
    ]


def event_from_row(row: Sequence[Any], time: Codec = _same, doc: Codec = _same) -> JobEvent:
    job_id, at, from_status, to_status, reason, actor, details = row
    return JobEvent(
        job_id=job_id,
        at=time(at),
        from_status=JobStatus(from_status) if from_status else None,
        to_status=JobStatus(to_status),
        reason=reason,
        actor=actor,
        details=doc(details) or {},
    )


def heartbeat_row(beat: Heartbeat, time: Codec = _same) -> tuple[Any, ...]:
    return (beat.job_id, time(beat.at), beat.attempt, beat.progress, beat.eta_seconds, beat.message)


def heartbeat_from_row(row: Sequence[Any], time: Codec = _same) -> Heartbeat:
    job_id, at, attempt, progress, eta_seconds, message = row
    return Heartbeat(
        job_id=job_id,
        at=time(at),
        attempt=attempt,
        progress=progress,
        eta_seconds=eta_seconds,
        message=message,
    )


def outbox_rows(
    job_id: str, events: Sequence[JobEvent], at: datetime, time: Codec = _same
) -> list[tuple[Any, ...]]:
    """The outbox entries of a change (``outbox_topics``), stamped ``at``."""
    stamp = time(at)
    return [(topic, job_id, stamp) for topic in outbox_topics(events)]


def change_time(job: Job, events: Sequence[JobEvent], heartbeat: Heartbeat | None) -> datetime:
    """When a saved change happened, for its outbox entries."""
    return heartbeat.at if heartbeat else (events[0].at if events else job.submitted_at)


def as_dicts(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows as parameter dictionaries, for SQLAlchemy's ``execute``."""
    return [dict(zip(columns, row, strict=True)) for row in rows]
