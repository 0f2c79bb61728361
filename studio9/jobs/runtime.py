"""The worker side of a job: claim it, run its handler, heartbeat, record the outcome once.

The runtime, not the handler, heartbeats: every ``heartbeat_interval`` it renews the lease,
stores the latest progress, and looks for a cancel request or a lost lease, which it
passes to the handler through ``RunContext.interrupt``. The outcome is written by
compare-and-set only while this worker still holds the running attempt, so a duplicate
delivery, a late result after a cancel, or a result after the lease was lost is dropped.

Every decision is a value: one that says more than the job's change (whether a delivery was
claimed, how long before a retry) returns a verdict (``ClaimVerdict``, ``Settlement``), and
``LastVerdict`` keeps the one ``JobService.update`` stored.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
import attrs
import structlog

from studio9.errors import Studio9Error
from studio9.ids import new_id
from studio9.jobs.context import RunContext, bound_logger, job_prefix
from studio9.jobs.domain import (
    Claim,
    Heartbeat,
    Job,
    JobError,
    JobInterrupted,
    JobNotFound,
    JobStatus,
    transition,
)
from studio9.jobs.outcomes import (
    ClaimVerdict,
    LastVerdict,
    Outcome,
    OutcomeKind,
    failure,
    holds,
    interrupted,
    settle,
    timed_out,
)
from studio9.jobs.ports import JobBlobs, JobInputs, JobType
from studio9.jobs.registry import JobTypeRegistry, UnknownJobType
from studio9.jobs.service import Decision, JobService, later
from studio9.jobs.watch import HeldJobWatch

log = structlog.get_logger()


def worker_name() -> str:
    return f"{socket.gethostname()}:{new_id()[-8:]}"


@attrs.define
class Heartbeats:
    """A run's heartbeats: a timer until the first is due (most jobs end before it), then a task."""

    _timer: asyncio.TimerHandle | None = None
    _task: asyncio.Task[None] | None = None

    @classmethod
    def after(cls, delay: float, beating: Callable[[], Coroutine[Any, Any, None]]) -> Heartbeats:
        """Heartbeats that start, with ``beating()``, ``delay`` seconds from now."""
        heartbeats = cls()
        heartbeats._timer = asyncio.get_running_loop().call_later(delay, heartbeats._start, beating)
        return heartbeats

    def _start(self, beating: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._task = asyncio.create_task(beating())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


@attrs.define
class JobRuntime:
    service: JobService
    registry: JobTypeRegistry
    blobs: JobBlobs
    inputs: JobInputs
    scratch_root: Path
    worker_id: str = attrs.field(factory=worker_name)
    #: Jobs this worker holds right now, by id.
    _held: dict[str, Job] = attrs.field(factory=dict, init=False)
    #: Looks for cancels between heartbeats.
    _watch: HeldJobWatch = attrs.field(init=False)
    #: Every ``run`` in progress, released ones included (``wait_stopped``).
    _runs: set[asyncio.Task[Any]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        self._watch = HeldJobWatch(self.service.store, self.worker_id)

    async def run(self, job_id: str) -> None:
        """Handle one delivery of ``job_id``: at-least-once in, exactly-once outcome out."""
        task = asyncio.current_task()
        if task is not None:
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)
        job = await self._claim(job_id)
        if job is None:
            return
        job_type = self.registry.get(job.type)
        scratch = self.scratch_root / job.id
        ctx = RunContext(
            job_id=job.id,
            owner_id=job.owner_id,
            attempt=job.attempt,
            params=None,
            log=bound_logger(job.id, job.type, job.attempt),
            blobs=self.blobs,
            inputs=self.inputs,
            scratch=scratch,
        )
        heartbeats = Heartbeats.after(
            self.service.policy.heartbeat_interval, lambda: self._heartbeats(job, ctx)
        )
        self._held[job.id] = job
        self._watch.add(job, ctx)
        try:
            outcome = await self._execute(job, job_type, ctx)
        finally:
            self._watch.discard(job.id)
            heartbeats.stop()
            if scratch.exists():  # most handlers never make it: spare them a thread hop
                await anyio.to_thread.run_sync(shutil.rmtree, scratch, True)
        try:
            await self._record(job, job_type, ctx, outcome)
        finally:
            self._held.pop(job.id, None)

    @property
    def held(self) -> list[str]:
        """Ids of the jobs this worker is running now."""
        return list(self._held)

    async def release_held(self) -> int:
        """Give back every job still held (a stopping worker): each goes back to ``queued``,
        without counting the interrupted attempt, and is dispatched again. Returns how many."""
        released = 0
        for job in list(self._held.values()):

            def decide(current: Job, job: Job = job) -> Decision:
                if not self._holds(current, job):
                    return None
                now = self.service.clock()
                moved, event = transition(
                    current,
                    JobStatus.QUEUED,
                    at=now,
                    reason="released",
                    actor=self.worker_id,
                    attempt=current.attempt - 1,
                    dispatched_at=now,
                    not_before=None,
                )
                return moved, [event]

            stored = await self.service.update(job.id, decide)
            # Its handler stops at its next report: the job is no longer this worker's.
            self._watch.interrupt(job.id, "released")
            if stored.status is JobStatus.QUEUED:
                released += 1
                self._held.pop(job.id, None)
                await self.service.dispatch(job.id)
        if released:
            log.info("jobs_released", count=released, worker=self.worker_id)
        return released

    async def wait_stopped(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for every run in progress to end, then cancel the rest
        (a stopping process: the backends close next, and a run must not outlive them)."""
        runs = [task for task in self._runs if task is not asyncio.current_task()]
        if not runs:
            return
        _, pending = await asyncio.wait(runs, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
            log.info("job_runs_cancelled", count=len(pending), worker=self.worker_id)

    async def _claim(self, job_id: str) -> Job | None:
        # One write, no read: the common case (a queued, due job of a known type). Anything
        # else (a duplicate, a cancelled job, a retry not due yet, an unknown type, a job of
        # another deployment) is sorted out below by reading the job and deciding.
        claimed = await self.service.store.claim(job_id, self._claim_at(self.service.clock()))
        if claimed is not None:
            return claimed
        delivery = LastVerdict(self._claim_on_read)
        try:
            job = await self.service.update(job_id, delivery)
        except JobNotFound:
            # A message from another deployment sharing the broker, or for a deleted job.
            log.warning("job_delivery_unknown", job_id=job_id)
            return None
        if delivery.last is None or not delivery.last.claimed:
            log.debug("job_delivery_dropped", job_id=job_id, status=job.status.value)
            return None
        return job

    def _claim_on_read(self, job: Job) -> ClaimVerdict:
        now = self.service.clock()
        if job.status is not JobStatus.QUEUED or (job.not_before is not None and job.not_before > now):
            return ClaimVerdict()  # a duplicate, a cancelled job, or a retry that is not due yet
        try:
            self.registry.get(job.type)
        except UnknownJobType:
            failed, event = transition(
                job,
                JobStatus.FAILED,
                at=now,
                reason="unknown_type",
                actor=self.worker_id,
                error=JobError(code="unknown_type", message=f"no handler for {job.type}"),
            )
            return ClaimVerdict((failed, [event]))
        claim = self._claim_at(now).apply(job)
        if claim is None:
            return ClaimVerdict()
        return ClaimVerdict((claim[0], [claim[1]]), claimed=True)

    def _claim_at(self, now: datetime) -> Claim:
        return Claim(
            worker=self.worker_id,
            at=now,
            lease_expires_at=later(now, self.service.policy.lease_timeout),
            deadlines={t.name: later(now, t.timeout) for t in self.registry},
        )

    async def _execute(self, job: Job, job_type: JobType, ctx: RunContext) -> Outcome:
        try:
            ctx.params = job_type.decode(job.params)
            remaining = (
                max(0.0, (job.deadline_at - self.service.clock()).total_seconds())
                if job.deadline_at
                else None
            )
            if inspect.iscoroutinefunction(job_type.handler):
                # asyncio.timeout, not wait_for: no extra task per run.
                async with asyncio.timeout(remaining):
                    result = await job_type.handler(ctx, ctx.params)
            else:
                result = await asyncio.wait_for(
                    anyio.to_thread.run_sync(job_type.handler, ctx, ctx.params, abandon_on_cancel=True),
                    timeout=remaining,
                )
        except TimeoutError:
            ctx.interrupt("timeout")
            return timed_out(job_type.timeout)
        except JobInterrupted as exc:
            return interrupted(exc.reason, job_type.timeout)
        except asyncio.CancelledError:
            if ctx.interrupted:
                return interrupted(ctx._reason, job_type.timeout)
            raise
        except Studio9Error as exc:  # expected (bad input, a missing file): the message says it all
            ctx.log.info("job_handler_failed", error=type(exc).__name__, message=exc.message)
            return failure(exc, retryable=job_type.is_retryable(exc))
        except Exception as exc:
            # The traceback stays in the server log; the job shows a code and a message.
            ctx.log.warning("job_handler_failed", error=type(exc).__name__, exc_info=exc)
            return failure(exc, retryable=job_type.is_retryable(exc))
        if result is not None and not isinstance(result, dict):
            return Outcome(
                kind=OutcomeKind.FAILED,
                error=JobError(code="bad_result", message="a handler must return a dict or None"),
            )
        return Outcome(kind=OutcomeKind.COMPLETED, result=result)

    async def _heartbeats(self, job: Job, ctx: RunContext) -> None:
        """Beat now, then every ``heartbeat_interval`` (started when the first beat is due)."""
        interval = self.service.policy.heartbeat_interval
        while True:
            try:
                current = await self._beat(job, ctx)
            except Exception:  # the next beat tries again; the lease covers a few misses
                log.warning("job_heartbeat_failed", job_id=job.id, exc_info=True)
            else:
                running = current.status is JobStatus.RUNNING
                if not running or current.lease_owner != self.worker_id:
                    ctx.interrupt("lease_lost" if running else current.status.value)
                elif current.cancel_requested:
                    ctx.interrupt("cancelled")
            await asyncio.sleep(interval)

    async def _beat(self, job: Job, ctx: RunContext) -> Job:
        progress = ctx.progress

        def decide(current: Job) -> Decision:
            if not self._holds(current, job):
                return None
            now = self.service.clock()
            renewed = attrs.evolve(
                current,
                lease_expires_at=later(now, self.service.policy.lease_timeout),
                last_heartbeat_at=now,
                progress=progress.fraction,
                eta_seconds=progress.eta_seconds,
                message=progress.message,
            )
            return renewed, []

        current = await self.service.update(
            job.id, decide, heartbeat=heartbeat_row, current=self._held.get(job.id)
        )
        if job.id in self._held:
            self._held[job.id] = current  # the next write starts from it, without a read
        return current

    def _holds(self, current: Job, job: Job) -> bool:
        return holds(current, self.worker_id, job.attempt)

    async def _record(self, job: Job, job_type: JobType, ctx: RunContext, outcome: Outcome) -> None:
        recording = LastVerdict(
            lambda current: settle(
                current,
                outcome,
                holder=self.worker_id,
                attempt=job.attempt,
                now=self.service.clock(),
                outputs=ctx.outputs,
                used_temp=ctx.used_temp,
                backoff=self.service.policy.backoff,
            )
        )
        stored = await self.service.update(job.id, recording, current=self._held.get(job.id, job))
        log.info(
            "job_finished",
            job_id=job.id,
            type=job.type,
            attempt=job.attempt,
            outcome=outcome.kind.value,
            status=stored.status.value,
        )
        if recording.last is not None and recording.last.retry_delay is not None:
            await self.service.dispatch(job.id, delay_seconds=recording.last.retry_delay)


def heartbeat_row(renewed: Job) -> Heartbeat | None:
    """The heartbeat row a lease renewal stores: the progress it wrote, at its beat time."""
    if renewed.last_heartbeat_at is None:
        return None
    return Heartbeat(
        job_id=renewed.id,
        at=renewed.last_heartbeat_at,
        attempt=renewed.attempt,
        progress=renewed.progress,
        eta_seconds=renewed.eta_seconds,
        message=renewed.message,
    )


async def clean_resources(blobs: JobBlobs, jobs: Sequence[Job]) -> None:
    """Delete the temporary blobs of terminal jobs, and the outputs of cancelled ones (a run that
    was asked to stop may have written some; they are not the job's)."""
    for job in jobs:
        await blobs.delete_prefix(job_prefix(job.id) + "temp/")
        if job.status is JobStatus.CANCELLED:
            await blobs.delete_prefix(job_prefix(job.id) + "outputs/")
