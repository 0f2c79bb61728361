"""What the job core needs from storage and from the broker.

Adapters: ``adapters/job_store/sql.py`` (SQLite, PostgreSQL), ``adapters/job_store/memory.py`` (memory://);
the queue is ``studio9/messaging/dispatch.py`` over any Dramatiq broker.
Contract: ``tests/contract/test_job_store.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Protocol

import attrs

from studio9.jobs.domain import Heartbeat, Job, JobEvent, JobStatus, transition


@attrs.frozen(kw_only=True)
class JobQuery:
    """A page of jobs, newest first. ``owner_id`` None means every owner (admins)."""

    owner_id: str | None = None
    type: str | None = None
    status: JobStatus | None = None
    ids: Sequence[str] | None = None
    limit: int = 50
    #: Only jobs older than this id (the previous page's last id).
    before: str | None = None


@attrs.frozen(kw_only=True)
class DueCriteria:
    """Which jobs a supervisor sweep looks at; cut-offs are computed by the service's policy."""

    now: datetime
    #: Queued jobs last dispatched before this (or never) are re-sent or timed out.
    redeliver_before: datetime
    #: Running jobs whose cancel was requested before this are cancelled regardless.
    cancel_before: datetime
    limit: int = 200


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


class JobStore(Protocol):
    """Jobs, changed by compare-and-set on their ``version``; each change's events go with it."""

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        """Store a new job, its first events and an outbox entry in one transaction.
        Raises JobExists, writing nothing, when a job of that id is stored already."""

    async def get(self, job_id: str) -> Job:
        """Raises JobNotFound."""

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        """Write ``job`` if the stored version is still ``expected_version``.

        The stored job gets ``version = expected_version + 1``; ``events``, ``heartbeat`` and an
        outbox entry are written in the same transaction. Returns the stored job, or None when
        another writer got there first (nothing is written then).
        """

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        """Apply ``claim`` to the job in one write, without reading it first.

        The stored job is ``claim.apply(job)`` with ``version + 1``; the event and an outbox
        entry go in the same transaction. Returns it, or None when the claim does not apply or
        there is no such job (nothing is written then; the caller reads the job to see why).
        """

    async def list(self, query: JobQuery) -> Sequence[Job]:
        """Jobs matching ``query``, ordered by id, newest first."""

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        """Jobs a supervisor sweep must look at: queued and not dispatched since the cut-off
        (and not held back by ``not_before``); running with an expired lease, a passed deadline or
        an overdue cancel; terminal and not cleaned yet. Oldest first."""

    async def counts(self) -> Mapping[JobStatus, int]:
        """How many jobs are in each status."""


class JobHistory(Protocol):
    """Read side of a job's event and heartbeat rows."""

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        """Oldest first."""

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        """Newest first."""

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        """The newest ``limit_each`` heartbeats of each job, newest first; jobs without any are left out."""


class JobQueue(Protocol):
    """Delivers job ids to workers. Delivery is at-least-once and may be lossy (memory://):
    the supervisor re-sends what SQL says is still queued."""

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        """Send one job id; raises BackendUnavailable when the broker refuses."""


@attrs.frozen(kw_only=True)
class WorkerInfo:
    """A process that runs jobs, as it last announced itself."""

    id: str
    host: str
    pid: int
    threads: int
    started_at: datetime
    seen_at: datetime


class WorkerRegistry(Protocol):
    """Which worker processes are alive (they announce themselves every heartbeat)."""

    async def announce(self, worker: WorkerInfo) -> None:
        """Insert or refresh the worker's row."""

    async def live(self, *, seen_after: datetime) -> Sequence[WorkerInfo]:
        """Workers seen after ``seen_after``, by host then id."""

    async def forget(self, worker_id: str) -> None:
        """Remove the worker (graceful stop). Idempotent."""


def outbox_topics(events: Sequence[JobEvent]) -> list[str]:
    """The outbox entries a job change writes: one ``job.<status>`` per status change (re-index
    the job and announce the status to outside listeners), or a single ``job`` when the status
    did not change (re-index it only)."""
    return [f"job.{e.to_status.value}" for e in events if e.from_status is not e.to_status] or ["job"]


@attrs.frozen(kw_only=True)
class Change:
    """An outbox entry: ``topic`` (``job`` or ``job.<status>``) and the id of what changed.

    Every entry means "re-index ``ref_id``"; a ``job.<status>`` one also means "announce it"."""

    id: int
    topic: str
    ref_id: str


class ChangeFeed(Protocol):
    """The transactional outbox, read by the indexer."""

    async def pending(self, *, limit: int) -> Sequence[Change]:
        """The oldest entries not yet acknowledged."""

    async def acknowledge(self, change_ids: Sequence[int]) -> None:
        """Forget these entries. Idempotent."""

    def draining(self) -> AbstractAsyncContextManager[bool]:
        """Enter to drain: yields True when this caller may drain now, False while another
        process drains the same feed (every indexer would otherwise read, index and announce
        the same entries). Held for one drain; released on exit, or when its process dies."""


class JobBlobs(Protocol):
    """The slice of the blob store the job runtime uses (satisfied by ``studio9.files.ports.BlobStore``)."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store a blob atomically; returns its size."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; returns how many. Idempotent."""


class JobInputs(Protocol):
    """Uploaded files as local paths, for handlers (satisfied by the files context)."""

    def local_path(self, owner_id: str | None, file_id: str) -> AbstractAsyncContextManager[Path]:
        """A readable local path of the owner's file. Raises NotFound for another owner's file."""

    async def file_name(self, owner_id: str | None, file_id: str) -> str:
        """The name the file was uploaded with (its extension tells its format). Raises NotFound."""
