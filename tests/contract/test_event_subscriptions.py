"""EventSubscriber contract: memory, RabbitMQ (real server) and SNS → SQS (moto's server).

Two adapters opened from the same URL stand for two processes: what one publishes reaches the
other's handlers while it is listening, filtered by prefix; cloud subscribers say when events
may have been missed (``on_gap``), and leave nothing behind on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pika
import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.messaging.domain import Event
from studio9.messaging.ports import EventSubscriber
from tests.contract.test_job_broker import _server_connections
from tests.services import RABBITMQ_URL, require

SETTING = "STUDIO9_EVENTS_URL"
OPTIONS = AdapterOptions(timeout=5)


def event(topic: str, version: int) -> Event:
    return Event(
        topic=topic,
        subject_id=f"jobs/n{version}",
        version=version,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        payload={"service": "jobs", "name": f"n{version}", "version": version},
    )


class Recorder:
    """A handler and a gap handler that remember what they were called with."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.gaps = 0

    def on_event(self, received: Event) -> None:
        self.events.append(received)

    def on_gap(self) -> None:
        self.gaps += 1


async def eventually(condition: Callable[[], bool], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(params=["memory", pytest.param("amqp", marks=pytest.mark.service("rabbitmq")), "sns"])
async def events_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """One destination, fresh per test (exchange or topic), removed afterwards."""
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        yield "memory://"
    elif request.param == "amqp":
        base = require("RabbitMQ", RABBITMQ_URL)
        yield f"{base}?exchange={name}"
        connection = pika.BlockingConnection(pika.URLParameters(base))
        try:
            connection.channel().exchange_delete(name)
        finally:
            connection.close()
    else:
        endpoint = request.getfixturevalue("moto_endpoint")
        yield f"sns://{name}?region=us-east-1&endpoint_url={endpoint}&create=true"
        sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
        for topic in sns.list_topics()["Topics"]:
            if topic["TopicArn"].endswith(":" + name):
                sns.delete_topic(TopicArn=topic["TopicArn"])


@contextlib.asynccontextmanager
async def two_processes(url: str) -> AsyncIterator[tuple[Any, Any]]:
    """(publisher, subscriber) as two processes would open them; the same bus for memory://."""
    async with contextlib.AsyncExitStack() as stack:
        publisher = await stack.enter_async_context(
            bootstrap.open_adapter(bootstrap.EVENTS, url, setting=SETTING, options=OPTIONS)
        )
        subscriber = publisher
        if not url.startswith("memory:"):
            subscriber = await stack.enter_async_context(
                bootstrap.open_adapter(bootstrap.EVENTS, url, setting=SETTING, options=OPTIONS)
            )
        yield publisher, subscriber


async def test_every_events_adapter_is_a_subscriber(events_url: str) -> None:
    async with bootstrap.open_adapter(
        bootstrap.EVENTS, events_url, setting=SETTING, options=OPTIONS
    ) as adapter:
        assert isinstance(adapter, EventSubscriber)


async def test_events_published_elsewhere_reach_handlers_of_their_prefix(events_url: str) -> None:
    async with two_processes(events_url) as (publisher, subscriber):
        config, everything = Recorder(), Recorder()
        subscriber.subscribe(config.on_event, prefix="config.", on_gap=config.on_gap)
        subscriber.subscribe(everything.on_event)
        async with subscriber.listening():
            await publisher.publish([event("config.updated", 1), event("job.completed", 2)])
            await publisher.publish([event("config.deleted", 3)])
            await eventually(lambda: len(config.events) == 2 and len(everything.events) == 3)
            await asyncio.sleep(0.2)  # nothing more comes
        assert sorted((e.version, e.topic) for e in config.events) == [
            (1, "config.updated"),
            (3, "config.deleted"),
        ]
        assert len(everything.events) == 3
        assert config.events[0].payload == {"service": "jobs", "name": "n1", "version": 1}
        # A cloud subscriber starts with a gap (events before it was bound are not in its queue);
        # the in-process bus never misses one.
        assert config.gaps == (0 if events_url.startswith("memory:") else 1)


async def test_a_failing_handler_does_not_stop_the_others(events_url: str) -> None:
    async with two_processes(events_url) as (publisher, subscriber):
        recorder = Recorder()

        def broken(_: Event) -> None:
            raise RuntimeError("handler bug")

        subscriber.subscribe(broken, prefix="config.")
        subscriber.subscribe(recorder.on_event, prefix="config.")
        async with subscriber.listening():
            await publisher.publish([event("config.updated", 1), event("config.updated", 2)])
            await eventually(lambda: len(recorder.events) == 2)


@pytest.mark.service("rabbitmq")
async def test_amqp_subscriber_reconnects_after_a_dropped_connection_and_signals_a_gap() -> None:
    base = require("RabbitMQ", RABBITMQ_URL)
    url = f"{base}?exchange=studio9-test-{uuid.uuid4().hex[:10]}"
    async with two_processes(url) as (publisher, subscriber):
        recorder = Recorder()
        subscriber.subscribe(recorder.on_event, prefix="config.", on_gap=recorder.on_gap)
        async with subscriber.listening():
            await publisher.publish([event("config.updated", 1)])
            await eventually(lambda: len(recorder.events) == 1)
            # When RabbitMQ closes the subscriber's connection
            pids = await asyncio.to_thread(_server_connections, subscriber.connection_name)
            if not pids:
                pytest.skip("rabbitmqctl cannot list this server's connections")
            for pid in pids:
                proc = await asyncio.create_subprocess_exec(
                    "rabbitmqctl", "-q", "close_connection", pid, "test"
                )
                assert await proc.wait() == 0
            # Then it binds a new queue, says events may have been missed, and receives again
            await eventually(lambda: recorder.gaps == 2)
            await publisher.publish([event("config.updated", 2)])
            await eventually(lambda: [e.version for e in recorder.events] == [1, 2])


@pytest.mark.parametrize(
    "unreachable",
    [
        pytest.param("amqp://guest:guest@127.0.0.1:1/?exchange=studio9-test", id="amqp"),
        pytest.param("sns://studio9-test?region=us-east-1&endpoint_url=http://127.0.0.1:1", id="sns"),
    ],
)
async def test_a_subscriber_that_cannot_connect_lets_the_process_start(unreachable: str) -> None:
    async with bootstrap.open_adapter(
        bootstrap.EVENTS, unreachable, setting=SETTING, options=AdapterOptions(timeout=0.5), check=False
    ) as subscriber:
        recorder = Recorder()
        subscriber.subscribe(recorder.on_event, prefix="config.", on_gap=recorder.on_gap)
        started = time.monotonic()
        async with subscriber.listening():
            assert time.monotonic() - started < 3  # waited the backend timeout, no more
        assert time.monotonic() - started < 6  # and stops at once
        assert recorder.gaps == 0


async def test_sns_subscriber_removes_its_queue_and_subscription_on_exit(moto_endpoint: str) -> None:
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    url = f"sns://{name}?region=us-east-1&endpoint_url={moto_endpoint}&create=true"
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    async with bootstrap.open_adapter(bootstrap.EVENTS, url, setting=SETTING, options=OPTIONS) as subscriber:
        subscriber.subscribe(Recorder().on_event, prefix="config.")
        async with subscriber.listening():
            topic_arn = await subscriber._topic_arn()
            subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
            queues = sqs.list_queues(QueueNamePrefix=f"{name}-sub-").get("QueueUrls", [])
            assert len(subscriptions) == 1 and len(queues) == 1
            assert sqs.list_queue_tags(QueueUrl=queues[0])["Tags"]["studio9"] == "event-subscription"
            attributes = sns.get_subscription_attributes(SubscriptionArn=subscriptions[0]["SubscriptionArn"])
            assert attributes["Attributes"]["RawMessageDelivery"] == "true"
        assert sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"] == []
        assert sqs.list_queues(QueueNamePrefix=f"{name}-sub-").get("QueueUrls", []) == []
        sns.delete_topic(TopicArn=topic_arn)


async def test_sns_subscriber_makes_a_new_queue_when_its_queue_is_deleted(moto_endpoint: str) -> None:
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    url = f"sns://{name}?region=us-east-1&endpoint_url={moto_endpoint}&create=true"
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    async with two_processes(url) as (publisher, subscriber):
        recorder = Recorder()
        subscriber.subscribe(recorder.on_event, prefix="config.", on_gap=recorder.on_gap)
        async with subscriber.listening():
            # When someone deletes the subscriber's queue
            [queue] = sqs.list_queues(QueueNamePrefix=f"{name}-sub-")["QueueUrls"]
            sqs.delete_queue(QueueUrl=queue)
            # Then it makes another one, says events may have been missed, and receives again
            await eventually(lambda: recorder.gaps == 2, timeout=20)
            await publisher.publish([event("config.updated", 1)])
            await eventually(lambda: len(recorder.events) == 1)
            assert sqs.list_queues(QueueNamePrefix=f"{name}-sub-")["QueueUrls"] not in ([], [queue])
            # And the old queue's subscription is gone
            sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
            topic_arn = await subscriber._topic_arn()
            assert len(sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]) == 1
        assert sqs.list_queues(QueueNamePrefix=f"{name}-sub-").get("QueueUrls", []) == []
    sns.delete_topic(TopicArn=topic_arn)
