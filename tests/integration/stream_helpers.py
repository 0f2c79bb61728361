"""Helpers for stream runner tests: a running runner that can be stopped or killed, and fakes that
freeze at the worst moment (after a job was submitted, before a message was acknowledged)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from studio9.auth.domain import Principal
from studio9.jobs.domain import Job
from studio9.messaging.streams import StreamRunner, StreamService
from studio9.messaging.streams.ports import Delivery, JobSubmitter, StreamSource


class Served:
    """``runner.run_forever()`` in a task: ``stop()`` is a graceful stop, ``kill()`` a crash."""

    def __init__(self, runner: StreamRunner) -> None:
        self.runner = runner
        self.task = asyncio.create_task(runner.run_forever())

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def kill(self) -> None:
        """End the runner without giving its leases back (they expire, as after a crash)."""
        self.runner.release_on_exit = False
        await self.stop()


def runner(service: StreamService, *, lease: float = 0.5) -> StreamRunner:
    return StreamRunner(service, lease_seconds=lease, tick=0.02, discover_every=0.05)


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return result


class CountingJobs:
    """The job service, counting submissions; with ``freeze_at`` it submits the n-th job and then
    never answers: a process dying between a job's submission and its batch's mark."""

    def __init__(self, jobs: JobSubmitter, *, freeze_at: int | None = None) -> None:
        self.jobs, self.freeze_at = jobs, freeze_at
        self.submitted: list[str] = []
        self.frozen = asyncio.Event()

    @property
    def registry(self) -> Any:
        return self.jobs.registry

    async def submit(
        self, actor: Principal, type_name: str, params: Mapping[str, Any], *, job_id: str | None = None
    ) -> Job:
        job = await self.jobs.submit(actor, type_name, params, job_id=job_id)
        self.submitted.append(job.id)
        if len(self.submitted) == self.freeze_at:
            self.frozen.set()
            await asyncio.Event().wait()
        return job

    async def get(self, actor: Principal, job_id: str) -> Job:
        return await self.jobs.get(actor, job_id)


class FreezeOnAck:
    """A source that stores nothing of its own but never acknowledges: the process dies after the
    items were stored, before the messages left the queue."""

    def __init__(self, source: StreamSource) -> None:
        self.source = source
        self.received = 0
        self.frozen = asyncio.Event()

    async def receive(self, *, max_messages: int, wait_seconds: float) -> Sequence[Delivery]:
        got = await self.source.receive(max_messages=max_messages, wait_seconds=wait_seconds)
        self.received += len(got)
        return got

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.frozen.set()
        await asyncio.Event().wait()

    async def aclose(self) -> None:
        await self.source.aclose()


class CountingAcks:
    """A source that counts what it acknowledged: a test waits for the last ack before it stops
    the runner (stopping first would put the unacknowledged message back on the queue)."""

    def __init__(self, source: StreamSource) -> None:
        self.source = source
        self.acked = 0

    async def receive(self, *, max_messages: int, wait_seconds: float) -> Sequence[Delivery]:
        return await self.source.receive(max_messages=max_messages, wait_seconds=wait_seconds)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self.source.ack(deliveries)
        self.acked += len(deliveries)

    async def aclose(self) -> None:
        await self.source.aclose()


def s3_event(bucket: str, key: str, etag: str, size: int = 1) -> str:
    """An S3 ObjectCreated notification, as S3 hands it to SNS."""
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": etag}},
    }
    return json.dumps({"Records": [record]})
