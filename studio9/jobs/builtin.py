"""The job types Studio9 ships: ``system.noop``, ``system.sleep`` and ``data.profile``."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Annotated, Any, Literal

import msgspec

from studio9.jobs.context import JobContext
from studio9.jobs.registry import JobType, JobTypeRegistry


class NoopParams(msgspec.Struct, forbid_unknown_fields=True):
    """Returns at once with ``echo``: for health checks and benchmarks."""

    echo: Any = None


class SleepParams(msgspec.Struct, forbid_unknown_fields=True):
    """Wait, reporting progress: for demos, drills and tests of cancellation and recovery."""

    seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 1.0
    message: Annotated[str, msgspec.Meta(max_length=200)] = "sleeping"


class ProfileParams(msgspec.Struct, forbid_unknown_fields=True):
    """Profile an uploaded CSV or Parquet file (``POST /api/v1/files`` gives its id)."""

    file: str
    format: Literal["csv", "parquet"] | None = None


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


async def profile(ctx: JobContext, params: ProfileParams) -> dict[str, Any]:
    # pyarrow and numpy load with the first profile, not with the server (docs/decisions.md).
    from studio9.jobs.profiling import profile_file

    # Under its uploaded name: Parquet is told by its magic bytes, a .parquet file without them
    # is refused as such, anything else is read as CSV; errors name the file the user knows.
    async with ctx.input_file(params.file) as path:
        profiled = await ctx.in_thread(
            functools.partial(profile_file, path, file_format=params.format, on_progress=ctx.report)
        )
    await ctx.put_output("profile.json", msgspec.json.encode(profiled))
    return {
        "format": profiled["format"],
        "rows": profiled["rows"],
        "columns": len(profiled["columns"]),
        "output": "profile.json",
    }


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
    registry.register(
        JobType(
            name="data.profile",
            handler=profile,
            params=ProfileParams,
            timeout=6 * 3600,
            max_attempts=2,
            retry_on=(OSError,),
            description="Per-column statistics of a CSV or Parquet file, streamed.",
        )
    )
    return registry
