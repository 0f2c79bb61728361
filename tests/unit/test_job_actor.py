"""The ``jobs.run`` actor hands each delivery to the event loop and returns when the run ends;
the job queue sends the very messages the actor's own ``send_with_options`` would."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from structlog.testing import capture_logs

from adapters.job_broker.dramatiq_jobs import DramatiqJobQueue, declare_job_actor


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


async def _never(job_id: str) -> None:
    raise AssertionError("not delivered in this test")


@pytest.mark.parametrize("delay_seconds", [0.0, 1.5])
async def test_the_queue_sends_what_the_actor_would(
    loop: asyncio.AbstractEventLoop, delay_seconds: float
) -> None:
    # Given the queue, and the actor declared on another broker
    sent, expected = StubBroker(), StubBroker()
    actor = declare_job_actor(expected, _never, loop, queue_name="jobs-test")
    queue = DramatiqJobQueue(sent, "jobs-test", blocking=False)
    # When both send the same job id with the same delay
    await queue.enqueue("j1", delay_seconds=delay_seconds)
    actor.send_with_options(args=("j1",), delay=int(delay_seconds * 1000) or None)
    # Then the messages are alike but for their ids and times, on the same (delay) queue
    name = dq_name("jobs-test") if delay_seconds else "jobs-test"
    ours, theirs = (dramatiq.Message.decode(b.queues[name].get_nowait()) for b in (sent, expected))
    mine, other = ours.asdict(), theirs.asdict()
    for varying in ("message_id", "message_timestamp"):
        mine.pop(varying), other.pop(varying)
    eta_ours, eta_theirs = mine["options"].pop("eta", 0), other["options"].pop("eta", 0)
    assert mine == other
    assert abs(eta_ours - eta_theirs) < 1000
