"""SNS subscribers remove the queues of processes that died without their exit, and only those.

moto's server (started by the ``moto_endpoint`` fixture) stands in for SNS and SQS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import aioboto3
import boto3
import pytest
from botocore.exceptions import ClientError

from adapters.event_publisher import sns_orphans
from adapters.event_publisher.sns import SnsEventPublisher
from studio9 import bootstrap
from tests.contract.test_event_subscriptions import OPTIONS, SETTING, Recorder, event, eventually

REGION = "us-east-1"


@pytest.fixture
def topic(moto_endpoint: str) -> Iterator[tuple[str, str]]:
    """A fresh topic: (name, ARN); deleted afterwards with every queue of its subscribers."""
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    arn = _client("sns", moto_endpoint).create_topic(Name=name)["TopicArn"]
    yield name, arn
    sqs = _client("sqs", moto_endpoint)
    for url in sqs.list_queues(QueueNamePrefix=sns_orphans.queue_prefix(name)).get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    _client("sns", moto_endpoint).delete_topic(TopicArn=arn)


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION)


def _subscribed_queue(endpoint: str, topic_arn: str, name: str, tags: dict[str, str]) -> str:
    """A queue subscribed to the topic, as a subscriber of another process would have left it."""
    sqs, sns = _client("sqs", endpoint), _client("sns", endpoint)
    url = sqs.create_queue(QueueName=name, tags=tags)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})
    return str(url)


def _subscriber(name: str, endpoint: str, **seams: Any) -> contextlib.aclosing[SnsEventPublisher]:
    """An SNS subscriber built directly, to pass the constructor's test seams (``seams``)."""
    return contextlib.aclosing(
        SnsEventPublisher(
            name, region=REGION, endpoint_url=endpoint, create=False, timeout=OPTIONS.timeout, **seams
        )
    )


def _endpoints(endpoint: str, topic_arn: str) -> set[str]:
    subscriptions = _client("sns", endpoint).list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    return {s["Endpoint"].rsplit(":", 1)[-1] for s in subscriptions}


def _queues(endpoint: str, prefix: str) -> set[str]:
    urls = _client("sqs", endpoint).list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    return {url.rsplit("/", 1)[-1] for url in urls}


async def test_a_subscriber_removes_queues_nobody_stamped_and_leaves_the_others(
    moto_endpoint: str, topic: tuple[str, str]
) -> None:
    name, arn = topic
    prefix, now = sns_orphans.queue_prefix(name), time.time()
    stale = now - sns_orphans.ORPHANED_AFTER - 60
    # Given the queues of a dead process, of a live one, and of another topic whose name starts alike
    _subscribed_queue(moto_endpoint, arn, f"{prefix}dead", sns_orphans.tags(name, stale))
    _subscribed_queue(moto_endpoint, arn, f"{prefix}live", sns_orphans.tags(name, now))
    _subscribed_queue(moto_endpoint, arn, f"{prefix}elsewhere", sns_orphans.tags(f"{name}-other", stale))
    url = f"sns://{name}?region={REGION}&endpoint_url={moto_endpoint}"
    async with bootstrap.open_adapter(bootstrap.EVENTS, url, setting=SETTING, options=OPTIONS) as subscriber:
        subscriber.subscribe(Recorder().on_event, prefix="config.")
        # When a subscriber starts
        async with subscriber.listening():
            # Then the dead process's queue and subscription go, and nothing else
            await eventually(lambda: f"{prefix}dead" not in _queues(moto_endpoint, prefix))
            queues = _queues(moto_endpoint, prefix)
            assert {f"{prefix}live", f"{prefix}elsewhere"} <= queues
            assert len(queues) == 3  # and its own
            assert _endpoints(moto_endpoint, arn) == queues  # the dead queue's subscription went too


async def test_a_subscriber_stamps_its_queue_while_it_listens(
    moto_endpoint: str, topic: tuple[str, str]
) -> None:
    name, _ = topic
    sqs = _client("sqs", moto_endpoint)
    # Stamp often, and let receives come back often enough for the stamps to happen
    async with _subscriber(name, moto_endpoint, renew_every=0.2, receive_wait=1) as subscriber:
        subscriber.subscribe(Recorder().on_event, prefix="config.")
        async with subscriber.listening():
            [queue] = sqs.list_queues(QueueNamePrefix=sns_orphans.queue_prefix(name))["QueueUrls"]
            sqs.tag_queue(QueueUrl=queue, Tags={sns_orphans.SEEN_TAG: "1000"})  # as if stamped long ago

            def stamp() -> int:
                return int(sqs.list_queue_tags(QueueUrl=queue)["Tags"][sns_orphans.SEEN_TAG])

            await eventually(lambda: stamp() >= int(time.time()) - 5, timeout=10)


async def test_a_failed_sweep_neither_stops_the_events_nor_loses_any(
    moto_endpoint: str, topic: tuple[str, str]
) -> None:
    name, arn = topic

    async def refused(sqs: Any, sns: Any, *, topic: str, topic_arn: str, keep: str | None, now: float) -> int:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListQueues")

    async with _subscriber(name, moto_endpoint, sweep=refused) as subscriber:
        recorder = Recorder()
        subscriber.subscribe(recorder.on_event, prefix="config.", on_gap=recorder.on_gap)
        async with subscriber.listening():
            body = event("config.updated", 1).to_json_dict()
            attributes = {"topic": {"DataType": "String", "StringValue": "config.updated"}}
            await asyncio.to_thread(
                _client("sns", moto_endpoint).publish,
                TopicArn=arn,
                Message=json.dumps(body),
                MessageAttributes=attributes,
            )
            await eventually(lambda: len(recorder.events) == 1, timeout=20)
            assert recorder.gaps == 1  # the one of the start: the failed sweep did not stop the polling


async def test_two_sweepers_at_once_both_finish(moto_endpoint: str, topic: tuple[str, str]) -> None:
    name, arn = topic
    prefix = sns_orphans.queue_prefix(name)
    stale = time.time() - sns_orphans.ORPHANED_AFTER - 60
    for n in range(3):
        _subscribed_queue(moto_endpoint, arn, f"{prefix}dead{n}", sns_orphans.tags(name, stale))
    session = aioboto3.Session()
    async with (
        session.client("sqs", endpoint_url=moto_endpoint, region_name=REGION) as sqs,
        session.client("sns", endpoint_url=moto_endpoint, region_name=REGION) as sns,
    ):
        # Two processes starting together find the same dead queues; neither fails on the other's work
        now = time.time()
        removed = await asyncio.gather(
            *(sns_orphans.sweep(sqs, sns, topic=name, topic_arn=arn, keep=None, now=now) for _ in "ab")
        )
    assert sum(removed) >= 3
    assert _queues(moto_endpoint, prefix) == set() and _endpoints(moto_endpoint, arn) == set()
