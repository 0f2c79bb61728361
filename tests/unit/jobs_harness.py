"""A job core on in-memory adapters, with a controllable clock and a spying queue."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import msgspec

from adapters.blob_store.memory import MemoryBlobStore
from adapters.job_store.memory import MemoryJobStore
from studio9.auth.domain import Principal, Role
from studio9.errors import InvalidInput, NotFound
from studio9.jobs.domain import Job, JobStatus, RetryableError
from studio9.jobs.ports import JobContext, JobType
from studio9.jobs.registry import JobTypeRegistry
from studio9.jobs.runtime import JobRuntime
from studio9.jobs.service import JobPolicy, JobService
from studio9.jobs.supervisor import Supervisor

OWNER = Principal(
    user_id="u-owner",
    username="owner",
    role=Role.USER,
    token_id="t1",
    token_expires_at=datetime(2100, 1, 1, tzinfo=UTC),
)
OTHER = attrs.evolve(OWNER, user_id="u-other", username="other")
ADMIN = attrs.evolve(OWNER, user_id="u-admin", username="admin", role=Role.ADMIN)


@attrs.define
class Clock:
    now: datetime = attrs.field(factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@attrs.define
class RecordingQueue:
    """Spies on dispatches: (job id, delay) in order."""

    sent: list[tuple[str, float]] = attrs.field(factory=list)

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        self.sent.append((job_id, delay_seconds))


class NoInputs:
    def local_path(self, owner_id: str | None, file_id: str) -> contextlib.AbstractAsyncContextManager[Path]:
        raise NotFound(f"file {file_id!r} not found")

    async def file_name(self, owner_id: str | None, file_id: str) -> str:
        raise NotFound(f"file {file_id!r} not found")


class SleepParams(msgspec.Struct):
    seconds: float = 0.0
    steps: int = 1


class FailParams(msgspec.Struct):
    retryable: bool = False
    message: str = "boom"


async def sleepy(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    for step in range(params.steps):
        ctx.report(step / params.steps, eta=params.seconds, message=f"step {step}")
        await asyncio.sleep(params.seconds / params.steps)
    await ctx.put_temp("scratch.bin", b"x" * 10)
    await ctx.put_output("out.txt", b"hello")
    return {"slept": params.seconds}


def stubborn(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    """A plain function that never reports: only the supervisor can stop it."""
    import time

    time.sleep(params.seconds)
    return {"ignored": True}


def scratchy(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    """A plain function that works in its scratch directory (the runtime removes it)."""
    ctx.scratch.mkdir(parents=True)
    (ctx.scratch / "work.tmp").write_bytes(b"x")
    return {"made": str(ctx.scratch)}


def failing(ctx: JobContext, params: FailParams) -> None:
    if params.retryable:
        raise RetryableError(params.message)
    raise ValueError(params.message)


def refusing(ctx: JobContext, params: FailParams) -> None:
    """Fails as expected input errors do, naming the row; or with an OS error naming a server path."""
    if params.retryable:
        raise OSError(2, "No such file or directory", "/srv/studio9/blobs/jobs/x/temp/in.csv")
    raise InvalidInput(f"row 3: {params.message}", row=3, column="age")


def registry() -> JobTypeRegistry:
    types = JobTypeRegistry()
    types.register(JobType(name="test.sleep", handler=sleepy, params=SleepParams, timeout=5))
    types.register(JobType(name="test.short", handler=sleepy, params=SleepParams, timeout=0.2))
    types.register(JobType(name="test.stubborn", handler=stubborn, params=SleepParams, timeout=30))
    types.register(JobType(name="test.fail", handler=failing, params=FailParams, max_attempts=3))
    types.register(JobType(name="test.scratch", handler=scratchy, params=SleepParams))
    types.register(JobType(name="test.unsafe", handler=sleepy, params=SleepParams, safe_to_rerun=False))
    types.register(JobType(name="test.refuse", handler=refusing, params=FailParams))
    return types


class CountingStore(MemoryJobStore):
    """The in-memory store, counting reads of one job: which paths write without reading first."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, job_id: str) -> Job:
        self.gets += 1
        return await super().get(job_id)


@attrs.define
class Harness:
    service: JobService
    runtime: JobRuntime
    supervisor: Supervisor
    queue: RecordingQueue
    store: CountingStore
    blobs: MemoryBlobStore
    clock: Clock

    async def lose_worker(self, job_id: str) -> Job:
        """Leave the job as a worker that died mid-run does (running, its lease expired), and let
        the clock pass that expiry."""
        current = await self.store.get(job_id)
        dead = attrs.evolve(
            current,
            status=JobStatus.RUNNING,
            attempt=current.attempt + 1,
            lease_owner="dead",
            lease_expires_at=self.clock.now,
            deadline_at=None,
            not_before=None,
        )
        stored = await self.store.save(dead, expected_version=current.version)
        assert stored is not None
        self.clock.advance(2)
        return stored

    async def drain(self) -> None:
        """Deliver every sent message once (like a worker would), in order, until none is left."""
        while self.queue.sent:
            job_id, _ = self.queue.sent.pop(0)
            await self.runtime.run(job_id)


@contextlib.asynccontextmanager
async def harness(tmp_path: Path, **policy: Any) -> AsyncIterator[Harness]:
    clock = Clock()
    store = CountingStore()
    queue = RecordingQueue()
    blobs = MemoryBlobStore()
    values = {
        "heartbeat_interval": 0.05,
        "lease_timeout": 1.0,
        "cancel_grace": 0.5,
        "retry_backoff": 1.0,
        **policy,
    }
    service = JobService(store, store, queue, registry(), JobPolicy(**values), clock=clock)
    runtime = JobRuntime(service, service.registry, blobs, NoInputs(), tmp_path / "scratch")
    yield Harness(service, runtime, Supervisor(service, blobs), queue, store, blobs, clock)
