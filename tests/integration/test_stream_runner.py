"""The stream runner: restarts lose and double nothing, one runner serves a stream at a time, and
the SQS (S3 notifications through SNS, on moto) and RabbitMQ (real server) sources."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs

from studio9 import bootstrap
from studio9.auth.domain import Principal
from studio9.bootstrap import Container
from studio9.config import Settings
from studio9.jobs.ports import JobQuery
from tests.conftest import memory_settings
from tests.integration.stream_helpers import (
    CountingAcks,
    CountingJobs,
    FreezeOnAck,
    Served,
    eventually,
    runner,
    s3_event,
)
from tests.services import RABBITMQ_URL, require

NOOP = {"job_type": "system.noop", "item_param": "echo"}


def _sqlite(tmp_path: Path) -> Settings:
    return memory_settings(tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/streams.db")


@contextlib.asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[tuple[Container, Principal]]:
    async with bootstrap.build(settings) as container:
        yield container, await container.auth.local_principal("feeder")


async def _submitted(container: Container, stream_id: str, count: int) -> bool:
    state = await container.streams.states.get(stream_id)
    return state is not None and state.jobs_submitted >= count


async def _echoed(container: Container, principal: Principal) -> list[Any]:
    """Every item of every job the streams made, in job order."""
    jobs = await container.jobs.list(principal, JobQuery(type="system.noop", limit=500))
    return [item for job in reversed(jobs) for item in job.params["echo"]]


async def test_a_runner_dying_between_submit_and_mark_loses_and_doubles_nothing(tmp_path: Path) -> None:
    settings = _sqlite(tmp_path)
    await asyncio.to_thread(bootstrap.migrate, settings)
    async with _opened(settings) as (container, principal):
        view = await container.streams.create(principal, {**NOOP, "batch_size": 10, "max_wait": 0.1})
        sid = view.spec.id
        await container.streams.push(principal, sid, [{"n": i} for i in range(25)])

        freezing = CountingJobs(container.jobs, freeze_at=2)
        first = Served(runner(attrs.evolve(container.streams, jobs=freezing)))
        await asyncio.wait_for(freezing.frozen.wait(), 10)
        await first.kill()  # the second batch's job exists; its batch still says "submitting"
        state = await container.streams.states.get(sid)
        assert state is not None and (state.jobs_submitted, state.lease_owner) == (1, first.runner.owner)

        counting = CountingJobs(container.jobs)
        second = Served(runner(attrs.evolve(container.streams, jobs=counting)))
        try:
            await eventually(lambda: _submitted(container, sid, 3))
        finally:
            await second.stop()
        assert len(counting.submitted) == 1  # the third batch only: the second's job was found by its id
        assert sorted(item["n"] for item in await _echoed(container, principal)) == list(range(25))
        state = await container.streams.states.get(sid)
        assert state is not None and (state.batched, state.jobs_submitted, state.lease_owner) == (25, 3, None)


async def test_two_runners_on_one_database_serve_each_stream_once(tmp_path: Path) -> None:
    settings = _sqlite(tmp_path)
    await asyncio.to_thread(bootstrap.migrate, settings)
    async with _opened(settings) as (a, principal), _opened(settings) as (b, _):
        sids = [(await a.streams.create(principal, {**NOOP, "batch_size": 5, "max_wait": 0.05})).spec.id]
        sids.append((await b.streams.create(principal, {**NOOP, "batch_size": 5, "max_wait": 0.05})).spec.id)
        served = [Served(runner(a.streams, lease=0.6)), Served(runner(b.streams, lease=0.6))]
        try:
            for round_ in range(4):
                for i, sid in enumerate(sids):
                    service = (a, b)[(round_ + i) % 2].streams  # pushes arrive through either API
                    await service.push(principal, sid, [{"n": round_ * 5 + j} for j in range(5)])
                await asyncio.sleep(0.05)
                for sid in sids:  # never served by both
                    assert sum(sid in s.runner.serving for s in served) <= 1
            for sid in sids:
                await eventually(lambda sid=sid: _submitted(a, sid, 4))
            holder = next(s for s in served if sids[0] in s.runner.serving)
            other = served[1 - served.index(holder)]
            await holder.kill()
            await a.streams.push(principal, sids[0], [{"n": 100 + j} for j in range(5)])
            await eventually(lambda: _submitted(a, sids[0], 5))  # taken over once the lease expired
            state = await a.streams.states.get(sids[0])
            assert state is not None and state.lease_owner == other.runner.owner
        finally:
            for s in served:
                await s.stop()
        echoed = sorted(item["n"] for item in await _echoed(a, principal))
        assert echoed == sorted([*range(20), *range(20), *range(100, 105)])


def _sqs_queue(endpoint: str) -> tuple[Any, Any, str, str]:
    """An SNS topic delivering to a fresh SQS queue (as S3 → SNS → SQS in the original)."""
    import boto3

    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
    name = f"uploads-{uuid.uuid4().hex[:8]}"
    topic = sns.create_topic(Name=name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sns, sqs, topic, name


async def test_sqs_stream_turns_s3_notifications_into_jobs_even_across_a_crash(
    moto_endpoint: str, tmp_path: Path
) -> None:
    sns, sqs, topic, name = await asyncio.to_thread(_sqs_queue, moto_endpoint)
    for i in range(7):
        await asyncio.to_thread(
            sns.publish, TopicArn=topic, Message=s3_event("in", f"images/{i}.png", f"e{i}")
        )
    source = f"sqs://{name}?endpoint_url={moto_endpoint}&region=us-east-1&visibility_timeout=1"
    async with _opened(memory_settings(tmp_path)) as (container, principal):
        view = await container.streams.create(
            principal, {**NOOP, "source": source, "batch_size": 5, "max_wait": 0.2}
        )
        sid = view.spec.id
        opener = container.streams.open_source
        assert opener is not None
        freezing: list[FreezeOnAck] = []

        def open_freezing(url: str) -> FreezeOnAck:
            freezing.append(FreezeOnAck(opener(url)))
            return freezing[-1]

        first = Served(runner(attrs.evolve(container.streams, open_source=open_freezing)))
        await asyncio.wait_for(
            eventually(lambda: asyncio.sleep(0, bool(freezing) and freezing[0].frozen.is_set())), 10
        )
        await first.kill()  # items stored, messages not deleted: they come back after 1 s
        second = Served(runner(container.streams))

        async def redelivered_and_dropped() -> bool:
            state = await container.streams.states.get(sid)
            return state is not None and state.duplicates >= freezing[0].received >= 1

        async def every_message_deleted() -> bool:
            attributes = await asyncio.to_thread(
                sqs.get_queue_attributes,
                QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )
            return set(attributes["Attributes"].values()) == {"0"}

        try:
            await eventually(lambda: _submitted(container, sid, 2))
            await eventually(redelivered_and_dropped)
            # A redelivered message is deleted just after its duplicates are counted: wait for it.
            await eventually(every_message_deleted)
        finally:
            await second.stop()
        echoed = await _echoed(container, principal)
        assert sorted(item["key"] for item in echoed) == sorted(f"images/{i}.png" for i in range(7))
        assert echoed[0].keys() == {"bucket", "key", "size", "etag"}


def _rabbit_queue(url: str, bodies: list[bytes]) -> str:
    import pika

    name = f"studio9-stream-test-{uuid.uuid4().hex[:8]}"
    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        channel = connection.channel()
        channel.queue_declare(queue=name, durable=True)
        for body in bodies:
            channel.basic_publish(exchange="", routing_key=name, body=body)
    return name


def _rabbit_depth_and_delete(url: str, name: str) -> int:
    import pika

    with contextlib.closing(pika.BlockingConnection(pika.URLParameters(url))) as connection:
        channel = connection.channel()
        depth = int(channel.queue_declare(queue=name, passive=True).method.message_count)
        channel.queue_delete(queue=name)
    return depth


async def test_rabbitmq_stream_acks_only_stored_items_and_survives_a_crash(tmp_path: Path) -> None:
    url = require("RabbitMQ", RABBITMQ_URL)
    bodies = [f'{{"key": "m{i}", "n": {i}}}'.encode() for i in range(6)] + [b'{"key": "m0", "n": 0}']
    name = await asyncio.to_thread(_rabbit_queue, url, bodies)
    try:
        async with _opened(memory_settings(tmp_path)) as (container, principal):
            source = f"{url}?queue={name}"
            view = await container.streams.create(principal, {**NOOP, "source": source, "batch_size": 3})
            sid = view.spec.id
            opener = container.streams.open_source
            assert opener is not None
            freezing: list[FreezeOnAck] = []

            def open_freezing(url_: str) -> FreezeOnAck:
                freezing.append(FreezeOnAck(opener(url_)))
                return freezing[-1]

            first = Served(runner(attrs.evolve(container.streams, open_source=open_freezing)))
            await eventually(lambda: asyncio.sleep(0, bool(freezing) and freezing[0].frozen.is_set()))
            await first.kill()  # closing its connection puts the unacknowledged messages back
            counting: list[CountingAcks] = []

            def open_counting(url_: str) -> CountingAcks:
                counting.append(CountingAcks(opener(url_)))
                return counting[-1]

            second = Served(runner(attrs.evolve(container.streams, open_source=open_counting)))
            try:
                await eventually(lambda: _submitted(container, sid, 2))
                # Every message, the duplicate too, acknowledged before the runner stops.
                await eventually(lambda: asyncio.sleep(0, sum(c.acked for c in counting) >= len(bodies)))
            finally:
                await second.stop()
            state = await container.streams.states.get(sid)
            assert state is not None and (state.received, state.batched) == (6, 6)
            assert state.duplicates >= 1
            assert sorted(item["n"] for item in await _echoed(container, principal)) == list(range(6))
    finally:
        assert await asyncio.to_thread(_rabbit_depth_and_delete, url, name) == 0
