"""Periodic sweeps that keep every job moving (the original ORION supervisor and cleaner).

A sweep finds the jobs that need attention (``JobStore.due``) and re-decides each one by
compare-and-set, so several processes may sweep at once: the first writer wins and the
others see a changed job and leave it. A sweep

- re-sends queued jobs whose message may be lost (all of them at start-up), and fails
  those still unclaimed after ``start_timeout``;
- queues again, with back-off, running jobs whose lease expired (their worker died), up to
  ``max_lost_attempts`` times and unless their type is not ``safe_to_rerun``; else fails
  them as ``lost``;
- fails running jobs past their deadline (``timeout``);
- cancels running jobs that ignored a cancel for ``cancel_grace``;
- cleans the temporary resources of terminal jobs, once.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import Counter
from typing import Any

import attrs
import structlog

from studio9.jobs.domain import Job, JobError, JobStatus, error_details, transition
from studio9.jobs.ports import DueCriteria, JobBlobs
from studio9.jobs.registry import UnknownJobType
from studio9.jobs.runtime import clean_resources
from studio9.jobs.service import Decision, JobService, later, note

log = structlog.get_logger()


@attrs.define
class Supervisor:
    service: JobService
    blobs: JobBlobs
    name: str = attrs.field(factory=lambda: f"supervisor@{socket.gethostname()}")
    batch: int = 200

    async def sweep(self, *, startup: bool = False) -> Counter[str]:
        """One pass over the due jobs; returns how many of each action it took."""
        now = self.service.clock()
        policy = self.service.policy
        criteria = DueCriteria(
            now=now,
            redeliver_before=now if startup else later(now, -policy.redeliver_after),
            cancel_before=later(now, -policy.cancel_grace),
            limit=self.batch,
        )
        actions: Counter[str] = Counter()
        for job in await self.service.store.due(criteria):
            try:
                action = await self._handle(job, startup=startup)
            except Exception:
                log.exception("supervisor_job_failed", job_id=job.id)
                continue
            if action:
                actions[action] += 1
        if actions:
            log.info("supervisor_swept", **actions)
        return actions

    async def run_forever(self, interval: float) -> None:
        """Sweep at start-up, then every ``interval`` seconds (jittered so replicas spread out)."""
        await self.sweep(startup=True)
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - jitter, not crypto
            try:
                await self.sweep()
            except Exception:
                log.exception("supervisor_sweep_failed")

    async def _handle(self, job: Job, *, startup: bool) -> str | None:
        if job.is_terminal:
            return await self._clean(job)
        if job.status is JobStatus.RUNNING:
            return await self._check_running(job)
        return await self._redeliver(job, startup=startup)

    async def _redeliver(self, job: Job, *, startup: bool) -> str | None:
        action: list[str] = []
        policy = self.service.policy

        def decide(current: Job) -> Decision:
            action.clear()  # a lost race re-runs the decision: only the last one counts
            now = self.service.clock()
            if current.status not in (JobStatus.QUEUED, JobStatus.SUBMITTED):
                return None
            queued_since = current.queued_at or current.submitted_at
            if queued_since <= later(now, -policy.start_timeout):
                action[:] = ["start_timeout"]
                failed, event = transition(
                    current,
                    JobStatus.FAILED,
                    at=now,
                    reason="start_timeout",
                    actor=self.name,
                    error=JobError(
                        code="start_timeout", message=f"no worker took it within {policy.start_timeout:g}s"
                    ),
                )
                return failed, [event]
            fresh = later(now, -policy.redeliver_after)
            if not startup and current.dispatched_at is not None and current.dispatched_at > fresh:
                return None  # another replica just re-sent it
            action[:] = ["redelivered"]
            if current.status is JobStatus.SUBMITTED:
                queued, event = transition(
                    current, JobStatus.QUEUED, at=now, reason="dispatched", actor=self.name, dispatched_at=now
                )
                return queued, [event]
            return attrs.evolve(current, dispatched_at=now), []

        await self.service.update(job.id, decide)
        if action == ["redelivered"]:
            await self.service.dispatch(job.id)
        return action[0] if action else None

    async def _check_running(self, job: Job) -> str | None:
        action: list[str] = []
        retry_delay: list[float] = []
        policy = self.service.policy

        def decide(current: Job) -> Decision:
            action.clear()  # a lost race re-runs the decision: only the last one counts
            retry_delay.clear()
            now = self.service.clock()
            if current.status is not JobStatus.RUNNING or current.attempt != job.attempt:
                return None
            fields: dict[str, Any] = {}
            if (
                current.cancel_requested
                and current.cancel_requested_at is not None
                and current.cancel_requested_at <= later(now, -policy.cancel_grace)
            ):
                action[:] = ["cancelled"]
                changed, event = transition(
                    current, JobStatus.CANCELLED, at=now, reason="cancel_grace_expired", actor=self.name
                )
            elif current.deadline_at is not None and current.deadline_at <= now:
                action[:] = ["timeout"]
                changed, event = transition(
                    current,
                    JobStatus.FAILED,
                    at=now,
                    reason="timeout",
                    actor=self.name,
                    error=JobError(code="timeout", message="ran past its deadline"),
                )
            elif current.lease_expires_at is not None and current.lease_expires_at <= now:
                lost = JobError(
                    code="lost",
                    message=f"no heartbeat from {current.lease_owner} for {policy.lease_timeout:g}s",
                    details={"worker": current.lease_owner or "", "attempt": current.attempt},
                )
                # A dead worker is the platform's failure, not the job's: run it again on its own
                # budget (``max_lost_attempts``), whatever the type allows for handler errors.
                if self._may_rerun(current):
                    lost_attempts = current.lost_attempts + 1
                    delay = policy.backoff(lost_attempts)
                    retry_delay[:] = [delay]
                    action[:] = ["retried"]
                    fields = {
                        "not_before": later(now, delay),
                        "dispatched_at": now,
                        "error": lost,
                        "lost_attempts": lost_attempts,
                    }
                    changed, event = transition(
                        current, JobStatus.QUEUED, at=now, reason="lease_expired", actor=self.name, **fields
                    )
                else:
                    action[:] = ["lost"]
                    changed, event = transition(
                        current, JobStatus.FAILED, at=now, reason="lost", actor=self.name, error=lost
                    )
                event = attrs.evolve(event, details=error_details(lost))
            else:
                return None
            return changed, [event]

        await self.service.update(job.id, decide)
        if retry_delay:
            await self.service.dispatch(job.id, delay_seconds=retry_delay[0])
        return action[0] if action else None

    def _may_rerun(self, job: Job) -> bool:
        if job.lost_attempts >= self.service.policy.max_lost_attempts:
            return False
        try:
            return self.service.registry.get(job.type).safe_to_rerun
        except UnknownJobType:  # registered only where it runs; the worker decides at its claim
            return True

    async def _clean(self, job: Job) -> str | None:
        await clean_resources(self.blobs, [job])

        def decide(current: Job) -> Decision:
            if current.cleaned_at is not None:
                return None
            now = self.service.clock()
            return attrs.evolve(current, cleaned_at=now), [note(current, "resources_cleaned", self.name, now)]

        stored = await self.service.update(job.id, decide)
        return "cleaned" if stored.cleaned_at is not None else None
