"""The ``jobs.run`` actor hands each delivery to the event loop and returns when the run ends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from dramatiq.brokers.stub import StubBroker
from structlog.testing import capture_logs

from studio9.jobs.tasks import declare_job_actor


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop running in a thread of its own, as in a worker process."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_the_actor_returns_when_the_run_has_ended(loop: asyncio.AbstractEventLoop) -> None:
    ran: list[tuple[str, float]] = []

    async def run(job_id: str) -> None:
        await asyncio.sleep(0.05)
        ran.append((job_id, time.monotonic()))

    actor = declare_job_actor(StubBroker(), run, loop, queue_name="jobs-test")
    actor.fn("j1")
    returned = time.monotonic()
    assert [job_id for job_id, _ in ran] == ["j1"]
    assert ran[0][1] <= returned


def test_a_failed_run_is_logged_and_the_delivery_acknowledged(loop: asyncio.AbstractEventLoop) -> None:
    async def run(job_id: str) -> None:
        raise RuntimeError(f"broken store while running {job_id}")

    actor = declare_job_actor(StubBroker(), run, loop, queue_name="jobs-test")
    with capture_logs() as logs:
        actor.fn("j2")  # does not raise: the job table, not the broker, decides what happens next
    assert [(e["event"], e["job_id"]) for e in logs] == [("job_delivery_failed", "j2")]


def test_deliveries_from_many_threads_each_wait_for_their_own_run(loop: asyncio.AbstractEventLoop) -> None:
    ended: set[str] = set()

    async def run(job_id: str) -> None:
        await asyncio.sleep(0.01)
        ended.add(job_id)

    actor = declare_job_actor(StubBroker(), run, loop, queue_name="jobs-test")
    seen: dict[str, bool] = {}

    def deliver(job_id: str) -> None:
        actor.fn(job_id)
        seen[job_id] = job_id in ended

    threads = [threading.Thread(target=deliver, args=(f"j{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert seen == {f"j{i}": True for i in range(8)}
