"""Use cases of the job core seen from users: submit, read, list, cancel.

Every change goes through ``JobService.update``: read (or start from the caller's last
known copy), decide with the domain's ``transition``, write by compare-and-set, and on a
lost race read again and re-decide. That is what makes API replicas, workers and
supervisors safe to run side by side. The one exception is a worker's claim, a single
conditional write (``JobStore.claim``) that is just as safe.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.errors import BackendUnavailable, InvalidInput
from studio9.ids import new_id
from studio9.jobs.domain import (
    Heartbeat,
    Job,
    JobAlreadyFinished,
    JobEvent,
    JobNotFound,
    JobStatus,
    transition,
)
from studio9.jobs.ports import JobHistory, JobQuery, JobQueue, JobStore
from studio9.jobs.registry import JobTypeRegistry

log = structlog.get_logger()

MAX_ATTEMPTS_LIMIT = 20
_CAS_RETRIES = 20

#: A decision about a job: the changed job and its events, or None for "leave it".
Decision = tuple[Job, Sequence[JobEvent]] | None


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class JobPolicy:
    heartbeat_interval: float = 5.0
    lease_timeout: float = 30.0
    start_timeout: float = 3600.0
    cancel_grace: float = 30.0
    redeliver_after: float = 30.0
    retry_backoff: float = 2.0
    retry_backoff_cap: float = 300.0
    #: Re-runs after a lost worker, counted apart from ``max_attempts`` (see ``Job.lost_attempts``).
    max_lost_attempts: int = 3

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``: doubling from ``retry_backoff``, capped."""
        return float(min(self.retry_backoff * 2 ** max(0, attempt - 1), self.retry_backoff_cap))


@attrs.define
class JobService:
    store: JobStore
    history: JobHistory
    queue: JobQueue
    registry: JobTypeRegistry
    policy: JobPolicy = JobPolicy()
    clock: Callable[[], datetime] = utcnow
    #: Per-type default params (the config setting ``jobs/<type>``), merged under what is submitted.
    defaults: Callable[[str], Awaitable[Any]] | None = None

    async def submit(
        self,
        actor: Principal,
        type_name: str,
        params: Mapping[str, Any],
        *,
        priority: int = 0,
        max_attempts: int | None = None,
        job_id: str | None = None,
    ) -> Job:
        """Validate, store (queued) and dispatch a job. Raises InvalidInput (422) for a bad type or params.

        ``job_id`` pre-allocates the id, for callers that must never submit twice (streams record
        it first and look for the job before submitting again; the store refuses a second one).
        """
        if self.defaults is not None and isinstance(base := await self.defaults(type_name), Mapping):
            # The merged params are what the job records, so a rerun reproduces it exactly.
            params = {**base, **params}
        job_type, stored_params = self.registry.validate(type_name, params)
        attempts = job_type.max_attempts if max_attempts is None else max_attempts
        if not 1 <= attempts <= MAX_ATTEMPTS_LIMIT:
            raise InvalidInput(f"max_attempts must be 1 to {MAX_ATTEMPTS_LIMIT}", field="max_attempts")
        if not -100 <= priority <= 100:
            raise InvalidInput("priority must be -100 to 100", field="priority")
        now = self.clock()
        submitted = Job(
            id=job_id or new_id(),
            owner_id=actor.user_id,
            type=job_type.name,
            params=stored_params,
            priority=priority,
            max_attempts=attempts,
            timeout_seconds=job_type.timeout,
            submitted_at=now,
        )
        first = JobEvent(
            job_id=submitted.id,
            at=now,
            from_status=None,
            to_status=JobStatus.SUBMITTED,
            reason="submitted",
            actor=actor.user_id,
        )
        job, queued = transition(
            submitted, JobStatus.QUEUED, at=now, reason="dispatched", actor="api", dispatched_at=now
        )
        await self.store.add(job, [first, queued])
        log.info("job_submitted", job_id=job.id, type=job.type, owner_id=job.owner_id)
        await self.dispatch(job.id)
        return job

    async def dispatch(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        """Send the job's id to the workers. A broker failure is logged, not raised: the
        supervisor re-sends jobs that are still queued after ``redeliver_after``."""
        try:
            await self.queue.enqueue(job_id, delay_seconds=delay_seconds)
        except BackendUnavailable as exc:
            log.warning("job_dispatch_failed", job_id=job_id, error=exc.message)

    async def get(self, actor: Principal, job_id: str) -> Job:
        """The job, if the actor may see it (its owner, or an admin); otherwise JobNotFound."""
        job = await self.store.get(job_id)
        if not actor.owns(job.owner_id):
            raise JobNotFound(job_id)
        return job

    async def list(self, actor: Principal, query: JobQuery) -> Sequence[Job]:
        if not actor.is_admin:
            query = attrs.evolve(query, owner_id=actor.user_id)
        return await self.store.list(query)

    async def events(self, actor: Principal, job_id: str) -> Sequence[JobEvent]:
        await self.get(actor, job_id)
        return await self.history.events(job_id)

    async def heartbeats(self, actor: Principal, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        await self.get(actor, job_id)
        return await self.history.heartbeats(job_id, limit=limit)

    async def cancel(self, actor: Principal, job_id: str) -> Job:
        """Cancel: a queued job at once; a running one is asked to stop (``cancel_requested``)
        and is cancelled at its next heartbeat, or after ``cancel_grace`` regardless.

        Raises:
            JobNotFound: no such job, or not the actor's.
            JobAlreadyFinished: the job is terminal (409).
        """
        await self.get(actor, job_id)

        def decide(job: Job) -> Decision:
            now = self.clock()
            if job.is_terminal:
                raise JobAlreadyFinished(job)
            if job.status is JobStatus.RUNNING:
                if job.cancel_requested:
                    return None
                requested = attrs.evolve(job, cancel_requested=True, cancel_requested_at=now)
                return requested, [note(job, "cancel_requested", actor.user_id, now)]
            cancelled, event = transition(
                job, JobStatus.CANCELLED, at=now, reason="cancelled", actor=actor.user_id
            )
            return cancelled, [event]

        job = await self.update(job_id, decide)
        log.info("job_cancel_requested", job_id=job_id, status=job.status.value, by=actor.user_id)
        return job

    async def update(
        self,
        job_id: str,
        decide: Callable[[Job], Decision],
        *,
        heartbeat: Callable[[Job], Heartbeat | None] | None = None,
        current: Job | None = None,
    ) -> Job:
        """Apply ``decide`` to the current job by compare-and-set, re-reading on a lost race.

        ``current`` is the caller's last known copy of the job: the first decision is made on
        it without a read (the compare-and-set refuses it if it is stale), so ``decide`` may
        see an outdated job first and be called again on the stored one. Only a decision to
        change is taken on the caller's copy; "leave it" is always checked on a fresh read.

        Returns the stored job (unchanged when ``decide`` returns None).
        """
        known = current
        for _ in range(_CAS_RETRIES):
            job = known if known is not None else await self.store.get(job_id)
            decision = decide(job)
            if decision is None:
                if known is None:
                    return job
                known = None
                continue
            known = None
            changed, events = decision
            beat = heartbeat(changed) if heartbeat else None
            stored = await self.store.save(
                changed, expected_version=job.version, events=events, heartbeat=beat
            )
            if stored is not None:
                return stored
        raise BackendUnavailable(f"job {job_id} kept changing under us; try again")

    # -- when a user is deleted (``studio9.offboarding`` calls these) ------------------------

    async def cancel_all_of(self, owner_id: str, *, by: str) -> int:
        """Cancel every unfinished job of ``owner_id`` as ``cancel`` does (queued: at once;
        running: asked to stop), recording ``owner_deleted`` and the admin ``by``.

        Idempotent: finished jobs, and running ones asked already, are left as they are.
        Returns how many unfinished jobs it found. Raises BackendUnavailable.
        """

        def decide(job: Job) -> Decision:
            now = self.clock()
            if job.is_terminal or job.owner_id != owner_id:
                return None
            if job.status is JobStatus.RUNNING:
                if job.cancel_requested:
                    return None
                requested = attrs.evolve(job, cancel_requested=True, cancel_requested_at=now)
                return requested, [note(job, "cancel_requested", by, now, why="owner_deleted")]
            cancelled, event = transition(job, JobStatus.CANCELLED, at=now, reason="owner_deleted", actor=by)
            return cancelled, [event]

        unfinished = (JobStatus.SUBMITTED, JobStatus.QUEUED, JobStatus.RUNNING)
        found = await self._change_all_of(owner_id, decide, unfinished)
        log.info("jobs_cancelled_with_owner", owner_id=owner_id, jobs=found, by=by)
        return found

    async def transfer_all_of(self, owner_id: str, to: str, *, by: str) -> int:
        """Give every job of ``owner_id``, finished ones included (results, outputs, history go
        with the job), to the user ``to``; each records an ``owner_changed`` event. Running jobs
        run on. Idempotent. Returns how many jobs it moved. Raises BackendUnavailable."""

        def decide(job: Job) -> Decision:
            if job.owner_id != owner_id:
                return None
            event = note(job, "owner_changed", by, self.clock(), from_owner=owner_id, to_owner=to)
            return attrs.evolve(job, owner_id=to), [event]

        moved = await self._change_all_of(owner_id, decide, (None,))
        log.info("jobs_transferred", owner_id=owner_id, to=to, jobs=moved, by=by)
        return moved

    async def _change_all_of(
        self,
        owner_id: str,
        decide: Callable[[Job], Decision],
        statuses: Sequence[JobStatus | None],
        page_size: int = 200,
    ) -> int:
        """Apply ``decide`` to each job of ``owner_id`` in ``statuses`` (None: any), page by page.

        Paging by id stays right while the changes move jobs out of the query; jobs submitted
        meanwhile have newer ids and are not seen (the caller runs again for those)."""
        found = 0
        for status in statuses:
            before: str | None = None
            query = JobQuery(owner_id=owner_id, status=status, limit=page_size)
            while page := await self.store.list(attrs.evolve(query, before=before)):
                for job in page:
                    await self.update(job.id, decide, current=job)
                found += len(page)
                before = page[-1].id
        return found


def note(job: Job, reason: str, actor: str, at: datetime, **details: Any) -> JobEvent:
    """An event that records a fact about the job without changing its status."""
    return JobEvent(
        job_id=job.id,
        at=at,
        from_status=job.status,
        to_status=job.status,
        reason=reason,
        actor=actor,
        details=details,
    )


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
