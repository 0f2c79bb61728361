"""Column statistics of a table version: the step every table-writing job ends with, and the
``tables.stats`` job type that recomputes them for a new version.

``complete_stats`` computes ``studio9.tables.reading.column_stats`` over a version's parts (in a
thread) into the ``stats.json`` its content names (``TableContent.stats``), unless they are
there already or failed before. A failure writes ``stats-error.json`` with the reason instead
and is never raised: the table is there and readable, its statistics are ``error``.
``tables.import`` and ``tables.sql`` call it once their version is added, and again when a
retried job finds its version added but the statistics still pending.

``tables.stats`` (``{table, version}``) is the job ``TableService.update`` submits when a PATCH
changes a column's variable type. The new version names a fresh key under the table's own
prefix (``fresh_stats``: ``tables/<table>/<stats job id>/stats.json``, never another table's:
copies may share parts), whose statistics are ``pending`` until the job, acting as its owner
(``owner_principal``), writes them. ``submit_stats`` records a submit that failed as that key's
``stats-error.json``, so the version's statistics are never pending forever.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.auth.ports import UserStore, owner_principal
from studio9.catalog.domain import AssetKind
from studio9.catalog.ports import Assets
from studio9.errors import InvalidInput, Studio9Error
from studio9.files.ports import BlobStore
from studio9.ids import new_id
from studio9.jobs.domain import Job
from studio9.jobs.ports import JobContext, JobType
from studio9.tables.content import (
    STATS_FILE,
    StatsStatus,
    TableContent,
    local_parts,
    one_chunk,
    run_prefix,
    stats_error_key,
    stats_status,
    table_prefix,
)
from studio9.tables.ports import JobSubmitter

__all__ = [
    "STATS_JOB",
    "TableStatsParams",
    "complete_stats",
    "fresh_stats",
    "submit_stats",
    "table_stats_job_type",
]

log = structlog.get_logger()

STATS_JOB: Final = "tables.stats"
STATS_ATTEMPTS: Final = 2


class TableStatsParams(msgspec.Struct, forbid_unknown_fields=True):
    """Compute the statistics of version ``version`` of table ``table`` (into the key its
    content names, under the table's own prefix)."""

    table: str
    version: int


async def complete_stats(
    ctx: JobContext,
    blobs: BlobStore,
    table: str,
    content: TableContent,
    paths: Sequence[Path] | None = None,
    *,
    start: float = 0.0,
) -> StatsStatus:
    """The statistics of ``content`` computed into ``content.stats`` unless they are done or
    failed already; ``paths`` are local copies of its parts when the caller has them (else they
    are fetched). Progress goes from ``start`` to 1. Returns the statistics' status.

    Raises nothing but cancellation: a failure is recorded (``stats-error.json``), since the
    table is there and readable; a cancel of the job is not honoured here, for that reason.
    """
    from studio9.tables.reading import column_stats  # pyarrow loads in the job, not at start

    if content.stats is None:  # no parts: nothing to compute, nowhere to write
        return "pending"
    status, _ = await stats_status(blobs, content.stats)
    if status != "pending":
        return status

    def progress(fraction: float) -> None:
        with contextlib.suppress(Exception):
            ctx.report(start + (1 - start) * fraction)

    try:
        async with contextlib.AsyncExitStack() as stack:
            local = (
                paths
                if paths is not None
                else await stack.enter_async_context(local_parts(blobs, content.parts))
            )
            stats = await ctx.in_thread(
                functools.partial(column_stats, list(local), content.schema, progress=progress)
            )
        await blobs.put(content.stats, one_chunk(msgspec.json.encode(stats)))
    except Exception as exc:
        ctx.log.warning("table_stats_failed", table=table, error=type(exc).__name__)
        await _failed(
            blobs, content.stats, exc.message if isinstance(exc, Studio9Error) else type(exc).__name__
        )
        return "error"
    return "done"


def fresh_stats(table: str) -> tuple[str, str]:
    """``(job id, stats key)`` for a ``tables.stats`` job of ``table``: the job's id, chosen
    now, names the key its content records before the job is submitted."""
    job_id = new_id()
    return job_id, run_prefix(table, job_id) + STATS_FILE


async def submit_stats(
    jobs: JobSubmitter,
    blobs: BlobStore,
    actor: Principal,
    table: str,
    version: int,
    *,
    job_id: str,
    stats_key: str,
) -> Job | None:
    """Submit the ``tables.stats`` job (``fresh_stats``) of a version added with ``stats_key``.

    A submit that fails is recorded as the version's statistics error and answered None (the
    version is added: the change it made stands, only its statistics are missing); a cancel
    records it too and propagates.
    """
    try:
        return await jobs.submit(actor, STATS_JOB, {"table": table, "version": version}, job_id=job_id)
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await _failed(blobs, stats_key, "the statistics job could not be submitted")
        if not isinstance(exc, Exception):
            raise
        log.warning("table_stats_not_submitted", table=table, version=version, error=type(exc).__name__)
        return None


def table_stats_job_type(*, assets: Assets, users: UserStore, blobs: BlobStore) -> JobType:
    """The ``tables.stats`` job type (registered by the composition root)."""
    return JobType(
        name=STATS_JOB,
        handler=functools.partial(_run, assets, users, blobs),
        params=TableStatsParams,
        timeout=6 * 3600,
        max_attempts=STATS_ATTEMPTS,
        retry_on=(OSError,),
        description="Compute the column statistics of a table version (after a variable-type change).",
    )


async def _run(
    assets: Assets, users: UserStore, blobs: BlobStore, ctx: JobContext, params: TableStatsParams
) -> dict[str, Any]:
    actor = await owner_principal(users, ctx.owner_id, ctx.job_id)
    asset, version = await assets.read(actor, params.table, params.version)
    if asset.kind is not AssetKind.TABLE or version is None:
        raise InvalidInput(f"asset {params.table!r} is not a table", field="params.table")
    content = TableContent.of(version.content)
    if content.stats is None or not content.stats.startswith(table_prefix(asset.id)):
        # Statistics another table wrote (a copy's): never overwritten from here.
        raise InvalidInput(
            f"table {asset.id!r} version {version.version} keeps no statistics of its own",
            field="params.version",
        )
    status = await complete_stats(ctx, blobs, asset.id, content)
    return {"table": asset.id, "version": version.version, "stats": status}


async def _failed(blobs: BlobStore, stats_key: str, message: str) -> None:
    await blobs.put(stats_error_key(stats_key), one_chunk(msgspec.json.encode({"error": message})))
