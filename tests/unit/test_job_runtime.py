"""Submit, run, retry, cancel, time out, re-deliver and clean up, on in-memory adapters."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import anyio
import attrs
import pytest

from studio9.errors import InvalidInput
from studio9.jobs.domain import Job, JobAlreadyFinished, JobNotFound, JobStatus
from studio9.jobs.service import Decision
from tests.unit.jobs_harness import ADMIN, OTHER, OWNER, harness


async def _reasons(h, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.reason for e in await h.store.events(job_id)]


async def test_submitted_job_is_queued_dispatched_and_completes(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 0.01})
        assert job.status is JobStatus.QUEUED
        assert h.queue.sent == [(job.id, 0.0)]
        await h.drain()
        done = await h.store.get(job.id)
        assert done.status is JobStatus.COMPLETED
        assert done.result == {"slept": 0.01}
        assert done.outputs == ("out.txt",)
        assert done.attempt == 1 and done.progress == 1.0 and done.lease_owner is None
        assert await _reasons(h, job.id) == ["submitted", "dispatched", "claimed", "completed"]


async def test_unknown_type_and_bad_params_are_refused_at_submit(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        with pytest.raises(InvalidInput) as unknown:
            await h.service.submit(OWNER, "no.such.type", {})
        assert unknown.value.details["field"] == "type"
        with pytest.raises(InvalidInput) as bad:
            await h.service.submit(OWNER, "test.sleep", {"seconds": "long"})
        assert bad.value.details["field"] == "params.seconds"
        with pytest.raises(InvalidInput):
            await h.service.submit(OWNER, "test.sleep", {"blob": "x" * 300_000})
        assert h.queue.sent == []


async def test_duplicate_delivery_is_dropped(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        h.queue.sent.append(h.queue.sent[0])
        await h.drain()
        await h.runtime.run(job.id)
        assert (await h.store.get(job.id)).attempt == 1
        assert (await _reasons(h, job.id)).count("completed") == 1


async def test_concurrent_duplicate_deliveries_run_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 0.05})
        await asyncio.gather(*(h.runtime.run(job.id) for _ in range(5)))
        assert (await _reasons(h, job.id)).count("claimed") == 1
        assert (await h.store.get(job.id)).status is JobStatus.COMPLETED


async def test_failure_records_the_error(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.fail", {"message": "bad data"})
        await h.drain()
        failed = await h.store.get(job.id)
        assert failed.status is JobStatus.FAILED
        assert failed.error is not None
        assert (failed.error.code, failed.error.message) == ("handler_error", "ValueError: bad data")
        assert failed.error.details["exception"] == "ValueError"


async def test_retryable_failure_retries_with_backoff_until_attempts_run_out(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.fail", {"retryable": True})
        for attempt in (1, 2):
            job_id, _ = h.queue.sent.pop(0)
            await h.runtime.run(job_id)
            queued = await h.store.get(job.id)
            assert (queued.status, queued.attempt) == (JobStatus.QUEUED, attempt)
            assert h.queue.sent == [(job.id, 1.0 * 2 ** (attempt - 1))]
            await h.runtime.run(job.id)  # delivered before not_before: dropped
            assert (await h.store.get(job.id)).attempt == attempt
            h.clock.advance(10)
        await h.drain()
        final = await h.store.get(job.id)
        assert (final.status, final.attempt) == (JobStatus.FAILED, 3)


async def test_cancel_queued_job_is_immediate_and_terminal_cancel_is_409(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        cancelled = await h.service.cancel(OWNER, job.id)
        assert cancelled.status is JobStatus.CANCELLED
        await h.drain()  # the message still arrives: dropped
        assert (await h.store.get(job.id)).status is JobStatus.CANCELLED
        with pytest.raises(JobAlreadyFinished):
            await h.service.cancel(OWNER, job.id)


async def test_cancel_running_job_stops_it_at_the_next_heartbeat(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 3, "steps": 300})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.1)
        requested = await h.service.cancel(OWNER, job.id)
        assert (requested.status, requested.cancel_requested) == (JobStatus.RUNNING, True)
        await asyncio.wait_for(run, timeout=2)
        final = await h.store.get(job.id)
        assert final.status is JobStatus.CANCELLED
        assert "cancel_requested" in await _reasons(h, job.id)
        assert len(await h.store.heartbeats(job.id)) >= 1


async def test_a_result_after_a_forced_cancel_never_overwrites_it(tmp_path: Path) -> None:
    async with harness(tmp_path, cancel_grace=0.1) as h:
        job = await h.service.submit(OWNER, "test.stubborn", {"seconds": 0.6})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.1)
        await h.service.cancel(OWNER, job.id)
        h.clock.advance(1)
        actions = await h.supervisor.sweep()
        assert actions["cancelled"] == 1
        await asyncio.wait_for(run, timeout=3)
        final = await h.store.get(job.id)
        assert final.status is JobStatus.CANCELLED
        assert final.result is None
        assert "late_completed_ignored" in await _reasons(h, job.id)


async def test_handler_over_its_timeout_fails_with_timeout(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.short", {"seconds": 2, "steps": 200})
        await h.drain()
        final = await h.store.get(job.id)
        assert final.status is JobStatus.FAILED
        assert final.error is not None and final.error.code == "timeout"


async def test_owners_see_their_jobs_and_admins_see_all(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        assert (await h.service.get(ADMIN, job.id)).id == job.id
        with pytest.raises(JobNotFound):
            await h.service.get(OTHER, job.id)
        with pytest.raises(JobNotFound):
            await h.service.cancel(OTHER, job.id)
        from studio9.jobs.ports import JobQuery

        assert await h.service.list(OTHER, JobQuery(owner_id=OWNER.user_id)) == []
        assert len(await h.service.list(ADMIN, JobQuery())) == 1


async def test_supervisor_resends_lost_messages_and_times_out_unclaimed_jobs(tmp_path: Path) -> None:
    async with harness(tmp_path, redeliver_after=30, start_timeout=100) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        h.queue.sent.clear()  # the broker lost it
        assert await h.supervisor.sweep() == {}
        h.clock.advance(31)
        assert (await h.supervisor.sweep())["redelivered"] == 1
        assert h.queue.sent == [(job.id, 0.0)]
        assert await h.supervisor.sweep() == {}  # just re-sent: not again
        h.queue.sent.clear()
        h.clock.advance(100)
        assert (await h.supervisor.sweep())["start_timeout"] == 1
        final = await h.store.get(job.id)
        assert (
            final.status is JobStatus.FAILED
            and final.error is not None
            and final.error.code == "start_timeout"
        )


async def test_startup_sweep_resends_every_queued_job(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        ids = {(await h.service.submit(OWNER, "test.sleep", {})).id for _ in range(3)}
        h.queue.sent.clear()
        assert (await h.supervisor.sweep(startup=True))["redelivered"] == 3
        assert {job_id for job_id, _ in h.queue.sent} == ids


async def test_expired_lease_is_retried_then_lost(tmp_path: Path) -> None:
    # A lost worker's attempts have their own budget: the type's max_attempts (1) is not it.
    async with harness(tmp_path, max_lost_attempts=2) as h:
        job = await h.service.submit(OWNER, "test.sleep", {}, max_attempts=1)
        for expected in ("retried", "retried", "lost"):
            await h.lose_worker(job.id)
            assert (await h.supervisor.sweep())[expected] == 1
        final = await h.store.get(job.id)
        assert final.status is JobStatus.FAILED and final.error is not None and final.error.code == "lost"


async def test_concurrent_supervisors_handle_each_job_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        jobs = [await h.service.submit(OWNER, "test.sleep", {}, max_attempts=3) for _ in range(30)]
        for job in jobs:
            current = await h.store.get(job.id)
            dead = attrs.evolve(
                current, status=JobStatus.RUNNING, attempt=1, lease_owner="dead", lease_expires_at=h.clock.now
            )
            await h.store.save(dead, expected_version=current.version)
        h.clock.advance(5)
        other = attrs.evolve(h.supervisor, name="supervisor@b")
        results = await asyncio.gather(h.supervisor.sweep(), other.sweep(), h.supervisor.sweep())
        assert sum(r["retried"] for r in results) == 30
        for job in jobs:
            assert (await _reasons(h, job.id)).count("lease_expired") == 1


async def test_terminal_jobs_temp_resources_are_cleaned_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        await h.drain()
        assert await h.blobs.size(f"jobs/{job.id}/temp/scratch.bin") == 10
        assert (await h.store.get(job.id)).cleaned_at is None
        assert (await h.supervisor.sweep())["cleaned"] == 1
        assert await h.blobs.delete_prefix(f"jobs/{job.id}/temp/") == 0
        assert await h.blobs.size(f"jobs/{job.id}/outputs/out.txt") == 5  # outputs are kept
        assert await h.supervisor.sweep() == {}
        assert (await _reasons(h, job.id)).count("resources_cleaned") == 1


async def test_the_lease_is_taken_at_claim_and_renewed_by_heartbeats(tmp_path: Path) -> None:
    async with harness(tmp_path, lease_timeout=7.0) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 0.4, "steps": 40})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.02)
        claimed = await h.store.get(job.id)
        assert claimed.lease_owner == h.runtime.worker_id
        assert claimed.lease_expires_at == claimed.started_at + timedelta(seconds=7)
        assert claimed.deadline_at == claimed.started_at + timedelta(seconds=5)  # the type's timeout
        h.clock.advance(3)
        await asyncio.sleep(0.15)  # a few heartbeats at 0.05 s
        renewed = await h.store.get(job.id)
        assert renewed.lease_expires_at == renewed.last_heartbeat_at + timedelta(seconds=7)
        assert renewed.lease_expires_at > claimed.lease_expires_at
        assert renewed.progress > 0 and renewed.message is not None
        await run


async def test_a_submitted_job_can_be_cancelled(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        stored = await h.store.get(job.id)
        submitted = attrs.evolve(stored, status=JobStatus.SUBMITTED)
        assert await h.store.save(submitted, expected_version=stored.version) is not None
        assert (await h.service.cancel(OWNER, job.id)).status is JobStatus.CANCELLED


async def test_a_stopping_worker_releases_its_jobs_without_spending_an_attempt(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 1, "steps": 100})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.05)
        assert h.runtime.held == [job.id]
        assert await h.runtime.release_held() == 1
        released = await h.store.get(job.id)
        assert (released.status, released.attempt, released.lease_owner) == (JobStatus.QUEUED, 0, None)
        assert h.queue.sent == [(job.id, 0.0)]
        await asyncio.wait_for(run, timeout=3)  # the abandoned attempt's result is dropped
        assert (await h.store.get(job.id)).status is JobStatus.QUEUED
        await h.drain()
        done = await h.store.get(job.id)
        assert (done.status, done.attempt) == (JobStatus.COMPLETED, 1)


async def test_claim_heartbeats_and_outcome_are_written_without_reading_the_job(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 0.3, "steps": 30})
        h.store.gets = 0
        await h.drain()
        assert h.store.gets == 0  # claim in one write; beats and the outcome start from the held copy
        assert len(await h.store.heartbeats(job.id)) >= 2
        done = await h.store.get(job.id)
        assert (done.status, done.attempt) == (JobStatus.COMPLETED, 1)
        assert await _reasons(h, job.id) == ["submitted", "dispatched", "claimed", "completed"]


async def test_a_job_of_a_type_the_worker_lacks_fails_as_unknown_type(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        stored = await h.store.get(job.id)
        assert await h.store.save(attrs.evolve(stored, type="gone.type"), expected_version=stored.version)
        await h.drain()
        failed = await h.store.get(job.id)
        assert (failed.status, failed.attempt) == (JobStatus.FAILED, 0)
        assert failed.error is not None and failed.error.code == "unknown_type"
        assert (await _reasons(h, job.id))[-1] == "unknown_type"


async def test_update_from_a_stale_copy_decides_again_on_the_stored_job(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {})
        stale = await h.store.get(job.id)
        await h.service.cancel(OWNER, job.id)  # the stored job moves on
        seen: list[JobStatus] = []

        def touch_if_queued(current: Job) -> Decision:
            seen.append(current.status)
            return (attrs.evolve(current, message="x"), []) if current.status is JobStatus.QUEUED else None

        stored = await h.service.update(job.id, touch_if_queued, current=stale)
        assert seen == [JobStatus.QUEUED, JobStatus.CANCELLED]
        assert (stored.status, stored.message) == (JobStatus.CANCELLED, None)

        def leave_stale_copies(current: Job) -> Decision:  # "leave it" is never taken on a stale copy
            return None if current.version == stale.version else (attrs.evolve(current, message="y"), [])

        assert (await h.service.update(job.id, leave_stale_copies, current=stale)).message == "y"


async def test_a_handlers_scratch_directory_is_removed_after_the_run(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.scratch", {})
        await h.drain()
        done = await h.store.get(job.id)
        assert done.status is JobStatus.COMPLETED and done.result is not None
        assert not await anyio.Path(done.result["made"]).exists()
