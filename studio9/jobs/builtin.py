"""The job core's own job types, ``system.noop`` and ``system.sleep`` (other contexts bring theirs:
``data.profile`` in ``studio9.tables``, ``predictions.import`` in ``studio9.predictions``)."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import msgspec

from studio9.jobs.ports import JobContext, JobType
from studio9.jobs.registry import JobTypeRegistry


class NoopParams(msgspec.Struct, forbid_unknown_fields=True):
    """Returns at once with ``echo``: for health checks and benchmarks."""

    echo: Any = None


class SleepParams(msgspec.Struct, forbid_unknown_fields=True):
    """Wait, reporting progress: for demos, drills and tests of cancellation and recovery."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 1.0
    message: Annotated[str, msgspec.Meta(max_length=200)] = "sleeping"


async def noop(ctx: JobContext, params: NoopParams) -> dict[str, Any]:
    # async: a plain function would cost a worker-thread hop per run, most of a no-op's cost.
    return {"echo": params.echo}


async def sleep(ctx: JobContext, params: SleepParams) -> dict[str, Any]:
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < params.seconds:
        ctx.report(
            elapsed / params.seconds if params.seconds else 1.0,
            eta=params.seconds - elapsed,
            message=params.message,
        )
        await asyncio.sleep(min(0.1, params.seconds - elapsed))
    return {"slept": params.seconds}


def builtin_registry() -> JobTypeRegistry:
    registry = JobTypeRegistry()
    registry.register(
        JobType(
            name="system.noop",
            handler=noop,
            params=NoopParams,
            timeout=60,
            description="Returns at once; for health checks and benchmarks.",
        )
    )
    registry.register(
        JobType(
            name="system.sleep",
            handler=sleep,
            params=SleepParams,
            timeout=86_400 + 60,
            description="Waits the given seconds, reporting progress.",
        )
    )
    return registry
