"""StreamSource contract, run against every source adapter: RabbitMQ (real server) and SQS (moto's server).

Sources are opened as production opens them, by URL through ``bootstrap.open_stream_source``.
Each test gets its own queue, fed and inspected from the test side with the vendor's plain
client (pika, boto3), and deleted afterwards. SQS sources are given ``visibility_timeout=1``
so that a message left unacknowledged comes back within a test's patience, as it does on
RabbitMQ when the source's connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

import boto3
import pika
import pytest

from studio9 import bootstrap
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.streams.ports import Delivery, StreamSource
from tests.services import RABBITMQ_URL, require

TIMEOUT = 5.0
REGION = "us-east-1"
#: Longer than the SQS sources' visibility timeout: what is still invisible then was deleted.
REDELIVERY_WAIT = 2.5


class ServerQueue(Protocol):
    """A queue on the server under test, driven from the test side."""

    name: str

    def source_url(self) -> str:
        """This queue's URL, as a stream's ``source`` setting names it."""

    def create(self) -> None: ...

    def publish(self, *bodies: str) -> None: ...

    def count(self) -> int:
        """Messages in the queue, including those received but not yet acknowledged."""

    def delete(self) -> None: ...


class RabbitQueue:
    def __init__(self, server_url: str) -> None:
        self.server_url, self.name = server_url, f"studio9-source-{uuid.uuid4().hex[:10]}"

    def source_url(self) -> str:
        return f"{self.server_url}?queue={self.name}"

    def create(self) -> None:
        with self._channel() as channel:
            channel.queue_declare(queue=self.name, durable=True)

    def publish(self, *bodies: str) -> None:
        with self._channel() as channel:
            for body in bodies:
                channel.basic_publish(exchange="", routing_key=self.name, body=body.encode())

    def count(self) -> int:
        # Unacknowledged messages are not counted while their consumer's connection is open:
        # the tests call this only after the source was closed.
        with self._channel() as channel:
            return int(channel.queue_declare(queue=self.name, passive=True).method.message_count)

    def delete(self) -> None:
        with self._channel() as channel:
            channel.queue_delete(queue=self.name)

    @contextlib.contextmanager
    def _channel(self) -> Iterator[Any]:
        with contextlib.closing(pika.BlockingConnection(pika.URLParameters(self.server_url))) as connection:
            yield connection.channel()


class SqsQueue:
    def __init__(self, endpoint: str) -> None:
        self.endpoint, self.name = endpoint, f"studio9-source-{uuid.uuid4().hex[:10]}"
        self._client = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)

    def source_url(self) -> str:
        return f"sqs://{self.name}?region={REGION}&endpoint_url={self.endpoint}&visibility_timeout=1"

    def create(self) -> None:
        self._client.create_queue(QueueName=self.name)

    def publish(self, *bodies: str) -> None:
        for body in bodies:
            self._client.send_message(QueueUrl=self._url(), MessageBody=body)

    def count(self) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        found = self._client.get_queue_attributes(QueueUrl=self._url(), AttributeNames=names)
        return sum(int(found["Attributes"][n]) for n in names)

    def delete(self) -> None:
        with contextlib.suppress(self._client.exceptions.QueueDoesNotExist):
            self._client.delete_queue(QueueUrl=self._url())
        self._client.close()

    def _url(self) -> str:
        return str(self._client.get_queue_url(QueueName=self.name)["QueueUrl"])


@pytest.fixture(params=[pytest.param("amqp", marks=pytest.mark.service("rabbitmq")), "sqs"])
def queue(request: pytest.FixtureRequest) -> Iterator[ServerQueue]:
    """An empty queue on the server under test; not created yet (``queue.create()`` does)."""
    made: ServerQueue
    if request.param == "amqp":
        made = RabbitQueue(require("RabbitMQ", RABBITMQ_URL))
    else:
        made = SqsQueue(request.getfixturevalue("moto_endpoint"))
    yield made
    made.delete()


@pytest.fixture
async def fed(queue: ServerQueue) -> ServerQueue:
    """``queue``, created."""
    await asyncio.to_thread(queue.create)
    return queue


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[StreamSource]:
    source = bootstrap.open_stream_source(url, timeout=TIMEOUT)
    try:
        yield source
    finally:
        await source.aclose()


async def publish(queue: ServerQueue, *bodies: str) -> None:
    await asyncio.to_thread(queue.publish, *bodies)


async def receive_all(source: StreamSource, count: int, *, within: float = 15.0) -> list[Delivery]:
    """Deliveries until ``count`` arrived (failing after ``within`` seconds), and no more."""
    found: list[Delivery] = []
    deadline = time.monotonic() + within
    while len(found) < count:
        assert time.monotonic() < deadline, f"{len(found)} of {count} messages arrived in time"
        found.extend(await source.receive(max_messages=count - len(found), wait_seconds=1))
    assert len(found) == count
    return found


def payloads(deliveries: Sequence[Delivery]) -> list[Any]:
    """Every item's payload, in a stable order (queues do not all keep order)."""
    return sorted(
        (i.payload for d in deliveries for i in d.items), key=lambda p: json.dumps(p, sort_keys=True)
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def s3_notification(bucket: str, key: str, etag: str) -> str:
    """An S3 ObjectCreated notification in the SNS envelope a subscribed queue receives."""
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 3, "eTag": etag}},
    }
    return json.dumps({"Type": "Notification", "Message": json.dumps({"Records": [record]})})


async def test_each_message_becomes_a_delivery_of_its_items(fed: ServerQueue) -> None:
    await publish(
        fed,
        json.dumps({"key": "a", "n": 1}),
        "not json at all",
        s3_notification("photos", "2026/cat+one.png", "e1"),
    )
    async with opened(fed.source_url()) as source:
        deliveries = await receive_all(source, 3)
        assert sorted(len(d.items) for d in deliveries) == [1, 1, 1]
        assert sorted(i.key for d in deliveries for i in d.items) == [
            "a",
            "s3://photos/2026/cat one.png#e1",
            "sha256:" + hashlib.sha256(b'{"body":"not json at all"}').hexdigest(),
        ]
        assert payloads(deliveries) == [
            {"body": "not json at all"},
            {"bucket": "photos", "etag": "e1", "key": "2026/cat one.png", "size": 3},
            {"key": "a", "n": 1},
        ]
        await source.ack(deliveries)


async def test_receive_returns_at_most_max_messages(fed: ServerQueue) -> None:
    await publish(fed, *(json.dumps({"key": f"m{n}"}) for n in range(5)))
    async with opened(fed.source_url()) as source:
        first = await source.receive(max_messages=2, wait_seconds=2)
        assert 1 <= len(first) <= 2
        rest = await receive_all(source, 5 - len(first))
        assert sorted(i.key for d in [*first, *rest] for i in d.items) == [f"m{n}" for n in range(5)]
        await source.ack([*first, *rest])


async def test_an_empty_queue_answers_nothing_after_about_wait_seconds(fed: ServerQueue) -> None:
    async with opened(fed.source_url()) as source:
        started = time.monotonic()
        assert list(await source.receive(max_messages=10, wait_seconds=0)) == []
        assert time.monotonic() - started < 1.0
        started = time.monotonic()
        assert list(await source.receive(max_messages=10, wait_seconds=1)) == []
        assert 0.8 <= time.monotonic() - started < 1.0 + TIMEOUT


async def test_a_waiting_receive_returns_a_message_sent_meanwhile(fed: ServerQueue) -> None:
    async with opened(fed.source_url()) as source:
        await source.receive(max_messages=1, wait_seconds=0)  # connected before the clock starts
        started = time.monotonic()
        waiting = asyncio.create_task(source.receive(max_messages=1, wait_seconds=10))
        await asyncio.sleep(0.3)
        await publish(fed, json.dumps({"key": "late"}))
        deliveries = await waiting
        assert [i.key for d in deliveries for i in d.items] == ["late"]
        assert time.monotonic() - started < 5.0
        await source.ack(deliveries)


async def test_only_acknowledged_messages_leave_the_queue(fed: ServerQueue) -> None:
    await publish(fed, *(json.dumps({"key": f"m{n}"}) for n in range(4)))
    async with opened(fed.source_url()) as source:
        deliveries = await receive_all(source, 4)
        kept = [d for d in deliveries if d.items[0].key in {"m1", "m3"}]
        await source.ack([d for d in deliveries if d not in kept])
    # The two others come back, to this source's successor, once the first one is closed.
    async with opened(fed.source_url()) as successor:
        again = await receive_all(successor, 2)
        assert payloads(again) == [{"key": "m1"}, {"key": "m3"}]
        await successor.ack(again)
        await asyncio.sleep(REDELIVERY_WAIT)
        assert list(await successor.receive(max_messages=10, wait_seconds=1)) == []
    assert await asyncio.to_thread(fed.count) == 0


async def test_a_message_never_acknowledged_keeps_coming_back(fed: ServerQueue) -> None:
    await publish(fed, json.dumps({"key": "sticky"}))
    for _ in range(3):
        async with opened(fed.source_url()) as source:
            (delivery,) = await receive_all(source, 1)
            assert [i.key for i in delivery.items] == ["sticky"]
    assert await asyncio.to_thread(fed.count) == 1


async def test_acknowledging_nothing_does_nothing(fed: ServerQueue) -> None:
    await publish(fed, json.dumps({"key": "left"}))
    async with opened(fed.source_url()) as source:
        await source.ack([])
    assert await asyncio.to_thread(fed.count) == 1


async def test_aclose_is_idempotent_and_needs_no_use_first(fed: ServerQueue) -> None:
    unused = bootstrap.open_stream_source(fed.source_url(), timeout=TIMEOUT)
    await unused.aclose()
    await unused.aclose()
    await publish(fed, json.dumps({"key": "x"}))
    used = bootstrap.open_stream_source(fed.source_url(), timeout=TIMEOUT)
    await receive_all(used, 1)
    await used.aclose()
    await used.aclose()
    assert await asyncio.to_thread(fed.count) == 1  # closed without an ack: still there


async def test_a_missing_queue_is_unavailable_until_it_exists(queue: ServerQueue) -> None:
    async with opened(queue.source_url()) as source:
        with pytest.raises(BackendUnavailable, match=queue.name):
            await source.receive(max_messages=1, wait_seconds=0)
        # The runner keeps its source across failures: the same one must work once the queue is there.
        await asyncio.to_thread(queue.create)
        await publish(queue, json.dumps({"key": "finally"}))
        (delivery,) = await receive_all(source, 1)
        assert delivery.items[0].key == "finally"
        await source.ack([delivery])


async def test_an_unreachable_server_is_unavailable(queue: ServerQueue) -> None:
    port = closed_port()
    if isinstance(queue, RabbitQueue):
        url = f"amqp://guest:guest@127.0.0.1:{port}/%2F?queue={queue.name}"
    else:
        url = f"sqs://{queue.name}?region={REGION}&endpoint_url=http://127.0.0.1:{port}"
    async with opened(url) as source:
        started = time.monotonic()
        with pytest.raises(BackendUnavailable):
            await source.receive(max_messages=1, wait_seconds=0)
        assert time.monotonic() - started < 2 * TIMEOUT


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@127.0.0.1:5672/%2F?queue=q&unknown=1",
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        "amqp://guest:guest@127.0.0.1:5672/%2F?queue=q&declare=maybe",
        "sqs://q?region=us-east-1&unknown=1",
        "sqs://user:secret@q?region=us-east-1",
        "sqs://q?visibility_timeout=-1",
        "ftp://somewhere/q",
    ],
)
def test_a_url_the_source_cannot_use_is_a_config_error_before_any_io(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        bootstrap.open_stream_source(url, timeout=TIMEOUT)
    assert "secret" not in str(raised.value)
