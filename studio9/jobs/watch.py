"""A worker's look at the jobs it holds, twice a second: a cancel reaches a handler at once.

The heartbeat (every ``STUDIO9_HEARTBEAT_INTERVAL``, 5 s by default) renews leases and stores
progress; waiting for it to notice a cancel made a cancelled job run on for up to that long,
and a job that ended meanwhile was recorded ``completed``. So, between heartbeats, one read
of every job this worker has held for longer than ``interval`` (a single query, whatever their
number) looks for a cancel request or a lost attempt and interrupts the handler, which stops at
its next ``report`` (built-in handlers report at least every half second of work). Jobs that
end within ``interval`` (most of them) are never read. The watch runs only while something is
held, so an idle worker makes no query.
"""

from __future__ import annotations

import asyncio

import attrs
import structlog

from studio9.jobs.context import RunContext
from studio9.jobs.domain import Job, JobStatus
from studio9.jobs.ports import JobQuery, JobStore

log = structlog.get_logger()

#: Seconds between looks at the held jobs.
WATCH_INTERVAL = 0.5


@attrs.define
class HeldJobWatch:
    store: JobStore
    worker_id: str
    interval: float = WATCH_INTERVAL
    #: Job id → the attempt held, and its handler's context.
    _held: dict[str, tuple[int, RunContext]] = attrs.field(factory=dict, init=False)
    _task: asyncio.Task[None] | None = attrs.field(default=None, init=False)

    def add(self, job: Job, ctx: RunContext) -> None:
        """Watch ``job`` (just claimed by this worker) until ``discard``."""
        self._held[job.id] = (job.attempt, ctx)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="held-job-watch")

    def discard(self, job_id: str) -> None:
        self._held.pop(job_id, None)

    def interrupt(self, job_id: str, reason: str) -> None:
        """Stop the handler of a held job at its next ``report`` (a stopping worker released it)."""
        if (held := self._held.get(job_id)) is not None:
            held[1].interrupt(reason)

    async def look(self, job_ids: list[str] | None = None) -> int:
        """Read the held jobs once and interrupt those cancelled or no longer this worker's.
        Returns how many were interrupted."""
        ids = [i for i in (job_ids if job_ids is not None else list(self._held)) if self._live(i)]
        if not ids:
            return 0
        stopped = 0
        for job in await self.store.list(JobQuery(ids=ids, limit=len(ids))):
            held = self._held.get(job.id)
            if held is None:
                continue
            attempt, ctx = held
            reason = self._reason_to_stop(job, attempt)
            if reason is not None:
                ctx.interrupt(reason)
                stopped += 1
        return stopped

    def _live(self, job_id: str) -> bool:
        held = self._held.get(job_id)
        return held is not None and not held[1].interrupted

    def _reason_to_stop(self, job: Job, attempt: int) -> str | None:
        if job.attempt != attempt or job.lease_owner != self.worker_id:
            return "lease_lost"
        if job.status is not JobStatus.RUNNING:
            return job.status.value
        return "cancelled" if job.cancel_requested else None

    async def _run(self) -> None:
        # Only jobs held for a whole interval are read: those claimed since the last look wait
        # for the next one (most jobs are over by then).
        seen: set[str] = set()
        while self._held:
            await asyncio.sleep(self.interval)
            due = [job_id for job_id in self._held if job_id in seen]
            seen = set(self._held)
            try:
                await self.look(due)
            except Exception:  # the next look tries again; the heartbeat is the safety net
                log.warning("held_job_watch_failed", exc_info=True)
