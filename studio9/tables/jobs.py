"""The ``data.profile`` job type: per-column statistics of an uploaded CSV or Parquet file.

Built by ``profile_job_type()`` and registered by the composition root. The engine
(``studio9.tables.profiling``) streams the file in bounded memory and the handler writes the
whole profile as the output ``profile.json``; the job's result is its summary. A read error
of the file (``OSError``) is worth a second attempt; bad input is not.
"""

from __future__ import annotations

import functools
from typing import Any, Final, Literal

import msgspec

from studio9.jobs.ports import JobContext, JobType

__all__ = ["PROFILE_JOB", "PROFILE_OUTPUT", "ProfileParams", "profile_job_type"]

PROFILE_JOB: Final = "data.profile"
PROFILE_OUTPUT: Final = "profile.json"


class ProfileParams(msgspec.Struct, forbid_unknown_fields=True):
    """Profile an uploaded CSV or Parquet file (``POST /api/v1/files`` gives its id)."""

    file: str
    format: Literal["csv", "parquet"] | None = None


async def profile(ctx: JobContext, params: ProfileParams) -> dict[str, Any]:
    # pyarrow and numpy load with the first profile, not with the server (docs/decisions.md).
    from studio9.tables.profiling import profile_file

    # Under its uploaded name: Parquet is told by its magic bytes, a .parquet file without them
    # is refused as such, anything else is read as CSV; errors name the file the user knows.
    async with ctx.input_file(params.file) as path:
        profiled = await ctx.in_thread(
            functools.partial(profile_file, path, file_format=params.format, on_progress=ctx.report)
        )
    await ctx.put_output(PROFILE_OUTPUT, msgspec.json.encode(profiled))
    return {
        "format": profiled["format"],
        "rows": profiled["rows"],
        "columns": len(profiled["columns"]),
        "output": PROFILE_OUTPUT,
    }


def profile_job_type() -> JobType:
    """The ``data.profile`` job type."""
    return JobType(
        name=PROFILE_JOB,
        handler=profile,
        params=ProfileParams,
        timeout=6 * 3600,
        max_attempts=2,
        retry_on=(OSError,),
        description="Per-column statistics of a CSV or Parquet file, streamed.",
    )
