"""How runs end: a cancel wins over a late outcome, a dead worker's job runs again, errors
show a code and a message (never a traceback), on in-memory adapters."""

from __future__ import annotations

import asyncio
from pathlib import Path

from structlog.testing import capture_logs

from studio9.jobs.domain import JobStatus
from studio9.jobs.outcomes import without_paths
from tests.unit.jobs_harness import OWNER, Harness, harness


async def _reasons(h: Harness, job_id: str) -> list[str]:
    return [e.reason for e in await h.store.events(job_id)]


async def test_a_cancel_reaches_a_reporting_handler_long_before_the_next_heartbeat(tmp_path: Path) -> None:
    async with harness(tmp_path, heartbeat_interval=60) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 4, "steps": 400})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.1)
        assert (await h.service.cancel(OWNER, job.id)).cancel_requested
        await asyncio.wait_for(run, timeout=3)  # the heartbeat alone would take a minute
        final = await h.store.get(job.id)
        assert (final.status, final.result, final.outputs) == (JobStatus.CANCELLED, None, ())


async def test_an_outcome_arriving_after_an_accepted_cancel_is_not_the_jobs(tmp_path: Path) -> None:
    # A plain function that never reports cannot be stopped: it completes after the cancel.
    async with harness(tmp_path, heartbeat_interval=60) as h:
        job = await h.service.submit(OWNER, "test.stubborn", {"seconds": 0.8})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.1)
        assert (await h.service.cancel(OWNER, job.id)).status is JobStatus.RUNNING  # 202: stopping
        await asyncio.wait_for(run, timeout=5)
        final = await h.store.get(job.id)
        assert (final.status, final.result, final.error) == (JobStatus.CANCELLED, None, None)
        assert "completed_after_cancel_ignored" in await _reasons(h, job.id)


async def test_outputs_of_a_cancelled_run_are_dropped_and_their_blobs_cleaned(tmp_path: Path) -> None:
    async with harness(tmp_path, heartbeat_interval=60) as h:
        job = await h.service.submit(OWNER, "test.sleep", {"seconds": 0.6, "steps": 1})
        h.queue.sent.clear()
        run = asyncio.create_task(h.runtime.run(job.id))
        await asyncio.sleep(0.1)
        await h.service.cancel(OWNER, job.id)
        await asyncio.wait_for(run, timeout=5)  # one step: it never reports again, and writes out.txt
        final = await h.store.get(job.id)
        assert (final.status, final.outputs) == (JobStatus.CANCELLED, ())
        assert (await h.supervisor.sweep())["cleaned"] == 1
        assert await h.blobs.delete_prefix(f"jobs/{job.id}/") == 0  # nothing was left to delete


async def test_a_dead_workers_job_runs_again_whatever_its_retry_budget(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.sleep", {}, max_attempts=1)
        h.queue.sent.clear()
        await h.lose_worker(job.id)
        assert (await h.supervisor.sweep())["retried"] == 1
        queued = await h.store.get(job.id)
        assert (queued.status, queued.lost_attempts) == (JobStatus.QUEUED, 1)
        assert queued.error is not None and queued.error.code == "lost"
        h.clock.advance(60)
        await h.drain()
        done = await h.store.get(job.id)
        assert (done.status, done.attempt, done.error) == (JobStatus.COMPLETED, 2, None)
        lost = [e for e in await h.store.events(job.id) if e.reason == "lease_expired"]
        assert lost[0].details["code"] == "lost"  # the earlier attempt's error stays in the history


async def test_lost_attempts_do_not_spend_the_handler_error_budget(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.fail", {"retryable": True}, max_attempts=2)
        h.queue.sent.clear()
        await h.lose_worker(job.id)
        await h.supervisor.sweep()
        for _ in range(2):  # two handler attempts, each delivered once it is due
            h.clock.advance(60)
            await h.runtime.run(job.id)
        final = await h.store.get(job.id)
        assert (final.status, final.attempt, final.lost_attempts) == (JobStatus.FAILED, 3, 1)
        assert (await _reasons(h, job.id)).count("retrying") == 1


async def test_a_type_unsafe_to_rerun_fails_lost_at_once(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.unsafe", {}, max_attempts=3)
        await h.lose_worker(job.id)
        assert (await h.supervisor.sweep())["lost"] == 1
        final = await h.store.get(job.id)
        assert final.status is JobStatus.FAILED and final.error is not None and final.error.code == "lost"


async def test_an_expected_error_shows_its_code_message_and_details_without_a_traceback(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.refuse", {"message": "expected an integer"})
        await h.drain()
        error = (await h.store.get(job.id)).error
        assert error is not None
        assert (error.code, error.message) == ("invalid_input", "row 3: expected an integer")
        assert error.details == {"exception": "InvalidInput", "row": 3, "column": "age"}


async def test_an_unexpected_error_keeps_its_traceback_in_the_log_and_server_paths_out(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path) as h:
        job = await h.service.submit(OWNER, "test.refuse", {"retryable": True})
        with capture_logs() as logs:
            await h.drain()
        error = (await h.store.get(job.id)).error
        assert error is not None and error.code == "handler_error"
        assert error.message == "FileNotFoundError: [Errno 2] No such file or directory: '…/in.csv'"
        assert "traceback" not in error.details and "/srv" not in str(error.details)
        failed = [line for line in logs if line["event"] == "job_handler_failed"]
        assert failed and isinstance(failed[0]["exc_info"], FileNotFoundError)


def test_paths_are_cut_but_urls_and_relative_paths_kept() -> None:
    text = "read /var/lib/s9/blobs/a.csv via http://host:8080/api/v1/x and ./local/b.csv or /tmp"
    assert without_paths(text) == "read …/a.csv via http://host:8080/api/v1/x and ./local/b.csv or /tmp"
    assert without_paths("cannot reach amqp://u:pw@mq:5672/") == "cannot reach amqp://u:***@mq:5672/"
