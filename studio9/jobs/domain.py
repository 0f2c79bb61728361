"""Jobs, their state machine, and the events that record every change.

A job moves ``submitted → queued → running → completed | failed | cancelled``; a running
job whose attempt is lost or fails with a retryable error goes back to ``queued``.
``transition`` is the only way to change a job's status: it refuses every other move,
stamps the times, and returns the event row that records the change. ``Claim`` is the rule
by which a worker takes a queued job, and ``outbox_topics`` the outbox entries a change writes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from studio9.errors import Conflict, NotFound


class JobStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})

#: Every legal move. Anything else raises IllegalTransition.
TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.SUBMITTED: frozenset({JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset(
        {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED}
    ),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}


@attrs.frozen(kw_only=True)
class JobError:
    """Why a job failed: a stable code (``timeout``, ``lost``, ``start_timeout``, ``handler_error``…)."""

    code: str
    message: str
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Job:
    id: str
    owner_id: str
    type: str
    params: Mapping[str, Any]
    priority: int = 0
    status: JobStatus = JobStatus.SUBMITTED
    cancel_requested: bool = False
    #: Claims so far (each attempt's number is unique, so a late worker cannot pass for a new one).
    attempt: int = 0
    #: Attempts for handler errors (attempts lost with their worker do not count against it).
    max_attempts: int = 1
    #: Attempts whose worker died (lease expired): the platform's failures, not the job's.
    lost_attempts: int = 0
    timeout_seconds: float = 3600.0
    submitted_at: datetime
    queued_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    cancel_requested_at: datetime | None = None
    #: Not to be delivered before this time (retry back-off).
    not_before: datetime | None = None
    #: When a message for the job was last sent to the broker (the supervisor re-sends stale ones).
    dispatched_at: datetime | None = None
    #: When the running attempt exceeds the type's timeout.
    deadline_at: datetime | None = None
    progress: float = 0.0
    eta_seconds: float | None = None
    message: str | None = None
    last_heartbeat_at: datetime | None = None
    #: Which worker holds the job, and until when; None when nobody does.
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    result: Mapping[str, Any] | None = None
    outputs: tuple[str, ...] = ()
    error: JobError | None = None
    cleaned_at: datetime | None = None
    #: Bumped by every stored change; stores write only if it still matches (compare-and-set).
    version: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def handler_attempts(self) -> int:
        """Attempts that count against ``max_attempts``: those not lost with their worker."""
        return self.attempt - self.lost_attempts


@attrs.frozen(kw_only=True)
class JobEvent:
    """One row of a job's history: a status change, or a notable fact (``reason``) without one."""

    job_id: str
    at: datetime
    from_status: JobStatus | None
    to_status: JobStatus
    reason: str
    actor: str
    details: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Heartbeat:
    job_id: str
    at: datetime
    attempt: int
    progress: float
    eta_seconds: float | None = None
    message: str | None = None


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} not found")


class JobExists(Conflict):
    """A job with this id is stored already (ids pre-allocated by a caller, e.g. a stream)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id!r} exists already")


class IllegalTransition(Conflict):
    def __init__(self, job: Job, to: JobStatus) -> None:
        super().__init__(
            f"job {job.id!r} cannot go from {job.status.value} to {to.value}", status=job.status.value
        )
        self.from_status, self.to_status = job.status, to


class JobAlreadyFinished(Conflict):
    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.id!r} is already {job.status.value}", status=job.status.value)


def error_details(error: JobError) -> dict[str, Any]:
    """``error`` as the ``details`` of the event that records it (the job keeps only the last one)."""
    return {"code": error.code, "message": error.message, **dict(error.details)}


def transition(
    job: Job, to: JobStatus, *, at: datetime, reason: str, actor: str, **changes: Any
) -> tuple[Job, JobEvent]:
    """``job`` moved to ``to`` (plus ``changes``), and the event recording it.

    Raises:
        IllegalTransition: ``to`` is not reachable from the job's status.
    """
    if to not in TRANSITIONS[job.status]:
        raise IllegalTransition(job, to)
    stamps: dict[str, Any] = {}
    if to is JobStatus.QUEUED:
        stamps = {"queued_at": at, "lease_owner": None, "lease_expires_at": None}
    elif to is JobStatus.RUNNING:
        stamps = {"started_at": at}
    elif to in TERMINAL:
        stamps = {"completed_at": at, "lease_owner": None, "lease_expires_at": None}
        if to is not JobStatus.FAILED:
            # An earlier attempt's error is not why this one ended; its event keeps it.
            stamps["error"] = None
        if to is JobStatus.COMPLETED:
            stamps["progress"] = 1.0
    moved = attrs.evolve(job, status=to, **{**stamps, **changes})
    event = JobEvent(job_id=job.id, at=at, from_status=job.status, to_status=to, reason=reason, actor=actor)
    return moved, event


class JobInterrupted(Exception):
    """Raised inside a handler (by ``report``) when its job is cancelled or timed out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RetryableError(Exception):
    """Raise from a handler for a failure worth another attempt (a flaky backend, say)."""


@attrs.frozen(kw_only=True)
class Claim:
    """A worker taking a queued job: exactly what ``JobStore.claim`` writes (see ``apply``)."""

    worker: str
    at: datetime
    lease_expires_at: datetime
    #: The job types the worker can run, each with the ``deadline_at`` a job of that type gets.
    deadlines: Mapping[str, datetime]

    def event(self, job_id: str) -> JobEvent:
        """The event a claim records (the one ``apply`` returns)."""
        return JobEvent(
            job_id=job_id,
            at=self.at,
            from_status=JobStatus.QUEUED,
            to_status=JobStatus.RUNNING,
            reason="claimed",
            actor=self.worker,
        )

    def apply(self, job: Job) -> tuple[Job, JobEvent] | None:
        """``job`` claimed, with its ``claimed`` event; None unless it is queued, due at ``at``
        (``not_before``) and of a type in ``deadlines``."""
        if (
            job.status is not JobStatus.QUEUED
            or (job.not_before is not None and job.not_before > self.at)
            or job.type not in self.deadlines
        ):
            return None
        return transition(
            job,
            JobStatus.RUNNING,
            at=self.at,
            reason="claimed",
            actor=self.worker,
            attempt=job.attempt + 1,
            lease_owner=self.worker,
            lease_expires_at=self.lease_expires_at,
            deadline_at=self.deadlines[job.type],
            last_heartbeat_at=self.at,
            cancel_requested=False,
            progress=0.0,
            eta_seconds=None,
            message=None,
        )


def outbox_topics(events: Sequence[JobEvent]) -> list[str]:
    """The outbox entries a job change writes: one ``job.<status>`` per status change (re-index
    the job and announce the status to outside listeners), or a single ``job`` when the status
    did not change (re-index it only)."""
    return [f"job.{e.to_status.value}" for e in events if e.from_status is not e.to_status] or ["job"]
