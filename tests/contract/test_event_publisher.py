"""EventPublisher contract: memory, RabbitMQ topic exchange (real server) and SNS (moto's server)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pika
import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import ConfigError
from studio9.messaging.domain import Event
from tests.services import RABBITMQ_URL, require

EVENTS = [
    Event(
        topic=f"job.{status}",
        subject_id=f"j{i}",
        version=i,
        at=datetime(2026, 1, 1, tzinfo=UTC),
        payload={"n": i},
    )
    for i, status in enumerate(["queued", "running", "completed"])
]


class Listener:
    """Reads back what a publisher sent, from the outside, as a subscriber would."""

    def __init__(self, kind: str, **setup: Any) -> None:
        self.kind, self.setup = kind, setup

    def received(self, count: int) -> list[dict[str, Any]]:
        deadline, got = time.monotonic() + 10, []
        while len(got) < count and time.monotonic() < deadline:
            got += self._poll()
        return got

    def _poll(self) -> list[dict[str, Any]]:
        if self.kind == "memory":
            return self.setup.pop("seen", [])
        if self.kind == "amqp":
            channel = self.setup["channel"]
            method, _, body = channel.basic_get(self.setup["queue"], auto_ack=True)
            return [json.loads(body)] if method else []
        sqs = self.setup["sqs"]
        answer = sqs.receive_message(
            QueueUrl=self.setup["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        return [json.loads(json.loads(m["Body"])["Message"]) for m in answer.get("Messages", [])]


@pytest.fixture(params=["memory", "amqp", "sns"])
async def publisher_and_listener(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Listener]]:
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    if request.param == "memory":
        async with bootstrap.open_adapter(
            bootstrap.EVENTS, "memory://", setting="STUDIO9_EVENTS_URL", options=AdapterOptions()
        ) as bus:
            seen: list[dict[str, Any]] = []
            bus.subscribe(lambda e: seen.append(e.to_json_dict()), prefix="job.")
            yield bus, Listener("memory", seen=seen)
        return
    if request.param == "amqp":
        base = require("RabbitMQ", RABBITMQ_URL)
        connection = pika.BlockingConnection(pika.URLParameters(base))
        channel = connection.channel()
        channel.exchange_declare(exchange=name, exchange_type="topic", durable=True)
        queue = channel.queue_declare(queue="", exclusive=True).method.queue
        channel.queue_bind(queue=queue, exchange=name, routing_key="job.#")
        try:
            async with bootstrap.open_adapter(
                bootstrap.EVENTS,
                f"{base}?exchange={name}",
                setting="STUDIO9_EVENTS_URL",
                options=AdapterOptions(),
            ) as publisher:
                yield publisher, Listener("amqp", channel=channel, queue=queue)
        finally:
            channel.exchange_delete(name)
            connection.close()
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    topic_arn = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    url = f"sns://{name}?region=us-east-1&endpoint_url={endpoint}"
    async with bootstrap.open_adapter(
        bootstrap.EVENTS, url, setting="STUDIO9_EVENTS_URL", options=AdapterOptions()
    ) as publisher:
        yield publisher, Listener("sns", sqs=sqs, queue_url=queue_url)


async def test_published_events_reach_a_subscriber_with_their_topic(
    publisher_and_listener: tuple[Any, Listener],
) -> None:
    publisher, listener = publisher_and_listener
    await publisher.publish(EVENTS)
    await publisher.publish([])
    received = sorted(listener.received(3), key=lambda e: e["version"])
    assert [(e["topic"], e["subject_id"], e["payload"]) for e in received] == [
        (e.topic, e.subject_id, dict(e.payload)) for e in EVENTS
    ]


async def test_unreachable_destination_fails_start_up_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="STUDIO9_EVENTS_URL"):
        async with bootstrap.open_adapter(
            bootstrap.EVENTS,
            "amqp://guest:guest@127.0.0.1:1/",
            setting="STUDIO9_EVENTS_URL",
            options=AdapterOptions(timeout=2),
        ):
            pass


def test_an_event_reads_back_from_its_json() -> None:
    for event in EVENTS:
        assert Event.from_json(json.dumps(event.to_json_dict())) == event
    for bad in (
        b"not json",
        b"[]",
        b'{"topic": "x"}',
        b'{"topic":"x","subject_id":"s","version":1,"at":"no"}',
    ):
        with pytest.raises(ValueError, match="not an event"):
            Event.from_json(bad)
