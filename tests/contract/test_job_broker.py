"""JobBroker contract, run against every broker adapter: memory, RabbitMQ and SQS (moto),
through the port: ``job_queue()`` sends, ``consume_jobs(...)`` delivers.

Each test gets its own job queue (a namespace of its own on RabbitMQ and SQS) and deletes
it afterwards, so nothing is left on the shared servers.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import attrs
import boto3
import dramatiq
import pika
import pytest
from dramatiq.common import dq_name, xq_name

from adapters.job_broker.dramatiq_jobs import job_message
from adapters.job_broker.sqs import clamp_delay
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import ConfigError
from studio9.messaging.ports import JobBroker, JobConsumer

BROKERS = {**bootstrap.BROKERS, "sqs": "adapters.job_broker.sqs:SqsJobBroker"}
SETTING = "STUDIO9_BROKER_URL"
OPTIONS = AdapterOptions(timeout=5)


@attrs.define
class Collector:
    """The job runtime's stand-in: every id delivered to ``run``, in arrival order, with the arrival time."""

    arrivals: list[tuple[str, float]] = attrs.field(factory=list)
    _changed: threading.Condition = attrs.field(factory=threading.Condition)

    async def run(self, job_id: str) -> None:
        with self._changed:
            self.arrivals.append((job_id, time.monotonic()))
            self._changed.notify_all()

    @property
    def ids(self) -> list[str]:
        with self._changed:
            return [job_id for job_id, _ in self.arrivals]

    async def wait_for(self, count: int, *, within: float = 20.0) -> list[str]:
        """The ids received once ``count`` have arrived, or when ``within`` seconds are up."""

        def wait() -> None:
            with self._changed:
                self._changed.wait_for(lambda: len(self.arrivals) >= count, timeout=within)

        await anyio.to_thread.run_sync(wait)
        return self.ids


@asynccontextmanager
async def consuming(broker: JobBroker, collector: Collector, *, threads: int) -> AsyncIterator[JobConsumer]:
    """``broker``'s deliveries to ``collector`` on this event loop, as ``processes.running`` starts them."""
    consumer = broker.consume_jobs(collector.run, asyncio.get_running_loop(), threads=threads)
    await anyio.to_thread.run_sync(consumer.start)
    try:
        yield consumer
    finally:
        await anyio.to_thread.run_sync(consumer.stop, 5)


def with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query


def delete_queues(amqp_url: str, queue_name: str) -> None:
    """Delete ``queue_name`` and the delay and dead-letter queues Dramatiq declares beside it."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for name in (queue_name, dq_name(queue_name), xq_name(queue_name)):
            channel.queue_delete(queue=name)
    finally:
        connection.close()


@contextmanager
def own_job_queue(amqp_url: str) -> Iterator[str]:
    """``amqp_url`` with a job queue of its own, ``<namespace>.jobs``, deleted on exit."""
    namespace = f"t{uuid.uuid4().hex[:12]}"
    try:
        yield with_query(amqp_url, f"namespace={namespace}")
    finally:
        delete_queues(amqp_url, f"{namespace}.jobs")


@pytest.fixture
def amqp_job_url(amqp_url: str) -> Iterator[str]:
    with own_job_queue(amqp_url) as url:
        yield url


@pytest.fixture
def sqs_url(moto_endpoint: str) -> Iterator[str]:
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield (
        f"sqs://?region=us-east-1&namespace={namespace}&endpoint_url={moto_endpoint}"
        "&wait_time_seconds=1&visibility_timeout=30"
    )
    client = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    try:
        for queue_url in client.list_queues(QueueNamePrefix=namespace).get("QueueUrls", []):
            client.delete_queue(QueueUrl=queue_url)
    finally:
        client.close()


@pytest.fixture(
    params=["memory", pytest.param("amqp_job", marks=pytest.mark.service("rabbitmq")), "sqs"],
)
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
async def broker(broker_url: str) -> AsyncIterator[JobBroker]:
    async with bootstrap.open_adapter(BROKERS, broker_url, setting=SETTING, options=OPTIONS) as adapter:
        yield adapter


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
async def consumer(broker: JobBroker, collector: Collector) -> AsyncIterator[JobConsumer]:
    async with consuming(broker, collector, threads=4) as started:
        yield started


async def test_ping_answers(broker: JobBroker) -> None:
    await broker.ping()


async def test_every_sent_id_is_received_exactly_once(
    broker: JobBroker, collector: Collector, consumer: JobConsumer
) -> None:
    # Given 50 ids sent to a running consumer
    sent = [f"job-{i:02d}" for i in range(50)]
    queue = broker.job_queue()
    for job_id in sent:
        await queue.enqueue(job_id)
    # When they have all arrived, and a little longer for any duplicate
    await collector.wait_for(len(sent), within=30)
    await anyio.sleep(0.5)
    # Then each arrived exactly once
    assert sorted(collector.ids) == sent


async def test_delayed_message_arrives_after_its_delay_not_before(
    broker: JobBroker, collector: Collector, consumer: JobConsumer
) -> None:
    queue = broker.job_queue()
    sent_at = time.monotonic()
    await queue.enqueue("late", delay_seconds=1)
    await anyio.sleep(0.5)
    assert collector.ids == []
    assert await collector.wait_for(1, within=15) == ["late"]
    (_, arrived_at), *_ = collector.arrivals
    assert arrived_at - sent_at >= 0.99


async def test_job_queue_enqueues_now_and_later(
    broker: JobBroker, collector: Collector, consumer: JobConsumer
) -> None:
    queue = broker.job_queue()
    await queue.enqueue("job-now")
    await queue.enqueue("job-soon", delay_seconds=0.2)
    assert sorted(await collector.wait_for(2)) == ["job-now", "job-soon"]


async def test_ids_sent_before_consuming_starts_are_delivered(
    broker: JobBroker, collector: Collector
) -> None:
    # A process that only submits (``studio9 api``) sends to a queue nobody in it consumes
    await broker.job_queue().enqueue("early")
    async with consuming(broker, collector, threads=1):
        assert await collector.wait_for(1) == ["early"]


async def test_delay_longer_than_any_broker_limit_is_accepted(broker: JobBroker) -> None:
    # SQS delays by 15 minutes at most: longer back-offs must still be enqueued (clamped)
    await broker.job_queue().enqueue("job-later", delay_seconds=3600)


async def test_queue_depths_count_waiting_messages(broker: JobBroker) -> None:
    # Given three ids sent while nothing consumes
    queue = broker.job_queue()
    for i in range(3):
        await queue.enqueue(f"waiting-{i}")
    # Then the broker reports them waiting in the job queue (SQS counts are approximate: poll briefly)
    for _ in range(50):
        depths = await broker.queue_depths()
        if depths.get(broker.job_queue_name) == 3:
            break
        await anyio.sleep(0.1)
    assert depths.get(broker.job_queue_name) == 3, depths


async def test_aclose_is_idempotent(broker: JobBroker) -> None:
    await broker.aclose()
    await broker.aclose()


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("amqp://guest:s3cret@127.0.0.1:{port}/%2F", id="amqp"),
        pytest.param("sqs://?region=us-east-1&endpoint_url=http://127.0.0.1:{port}", id="sqs"),
    ],
)
async def test_unreachable_broker_fails_start_up_naming_the_setting(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "s3cret")  # so that boto3 does not look for a role
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        async with bootstrap.open_adapter(
            BROKERS, template.format(port=_dead_port()), setting=SETTING, options=OPTIONS
        ):
            pytest.fail("the adapter opened")
    assert time.monotonic() - started < 4
    assert caught.value.setting == SETTING
    assert str(caught.value).startswith(f"{SETTING}: ")
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqs://queue-prefix@us-east-1",  # one form only: everything is in the query
        "sqs://?region=us-east-1&wait_time=5",  # a typo is not silently ignored
        "sqs://?region=us-east-1&wait_time_seconds=21",
        "sqs://?region=us-east-1&namespace=no.dots",
        "amqp://guest:s3cret@127.0.0.1:5672/%2F?heartbeats=5",
    ],
)
async def test_malformed_broker_url_fails_start_up_naming_the_setting(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS):
            pytest.fail("the adapter opened")
    assert caught.value.setting == SETTING
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize(
    ("requested_ms", "sent_ms"),
    [(None, None), (0, 0), (1, 1000), (1500, 2000), (900_000, 900_000), (3_600_000, 900_000)],
)
def test_sqs_delays_round_up_to_seconds_and_clamp_to_15_minutes(
    requested_ms: int | None, sent_ms: int | None
) -> None:
    assert clamp_delay(requested_ms) == sent_ms


@pytest.mark.service("rabbitmq")
async def test_rabbitmq_worker_prefetches_one_message_per_thread(amqp_url: str) -> None:
    async with bootstrap.open_adapter(BROKERS, amqp_url, setting=SETTING, options=OPTIONS) as broker:
        worker = dramatiq.Worker(broker.dramatiq_broker, worker_threads=3, worker_timeout=100)
        worker.start()
        try:
            assert worker.queue_prefetch == 3
        finally:
            worker.stop(timeout=1000)


@pytest.mark.service("rabbitmq")
async def test_rabbitmq_enqueue_survives_a_dropped_connection(amqp_job_url: str, queue_name: str) -> None:
    # Dramatiq's own send (a worker re-enqueueing a delayed message) over this thread's connection.
    # A connection name of our own, so that only this test's connections are dropped.
    name = f"studio9-test-{queue_name}"
    url = with_query(amqp_job_url, "client_properties=" + quote(repr({"connection_name": name})))
    async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS) as broker:
        collector = Collector()
        rabbit: Any = broker.dramatiq_broker
        async with consuming(broker, collector, threads=2):
            # Given a message sent over this thread's connection, and received
            rabbit.enqueue(job_message(broker.job_queue_name, "before"))
            assert await collector.wait_for(1) == ["before"]
            dropped = rabbit.connection
            # When every connection of the broker is dropped (the worker's included)
            _drop_connections(name, fallback=dropped)
            rabbit.enqueue(job_message(broker.job_queue_name, "after"))
            # Then the enqueue reconnected, and the worker's consumer did too
            assert dropped.is_closed
            assert rabbit.connection is not dropped
            assert await collector.wait_for(2) == ["before", "after"]


def _drop_connections(connection_name: str, *, fallback: Any) -> None:
    """Close the named connections from the server (rabbitmqctl) if we may, else ``fallback`` here."""
    pids = _server_connections(connection_name)
    if not pids:
        fallback.close()
        return
    for pid in pids:  # returns once the server is closing it: later frames are ignored
        subprocess.run(["rabbitmqctl", "-q", "close_connection", pid, "test"], check=True, timeout=30)


def _server_connections(connection_name: str) -> list[str]:
    """Pids of the server's connections named ``connection_name``; [] without a usable rabbitmqctl."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return []
    listed = subprocess.run(
        [ctl, "-q", "--no-table-headers", "list_connections", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if listed.returncode != 0:
        return []
    wanted = f'{{"connection_name","{connection_name}"}}'
    return [line.split("\t", 1)[0] for line in listed.stdout.splitlines() if wanted in line]
