"""Derived tables: the whole result of a read-only query saved as a new table, by a ``tables.sql`` job.

``submit_derive`` checks the query as its author (refused SQL: 422; an unknown table: 404; a
table not yet readable: 409), creates the table asset (``saving``, no version) and submits the
job ``{table, sql, expected_latest}``. The job, acting as its owner (``owner_principal``),
resolves the names again (the tables may have changed since), streams the result into one Parquet
part in its scratch directory (``query_to_parquet``), uploads it to the attempt's own
``tables/<table>/<job_id>/<attempt>/part-00000.parquet``, adds version ``expected_latest + 1``
(``active``, its statistics ``stats.json`` beside the part), records lineage from every table
read, at the version read, and computes the column statistics
(``studio9.tables.stats_job.complete_stats``: a failure there is the statistics' ``error``,
never the job's).

Retries add no second version: the version is added by compare-and-set on ``expected_latest``,
and a job that finds a version made by its own id is done (it only records the lineage again,
which is idempotent, and computes the statistics if they are still pending). An attempt deletes
only its own prefix before the version is added (on a failure, or when it loses the
compare-and-set to an earlier attempt of the job: one stalled, not killed); the attempt whose
version is added deletes what earlier attempts of the job left (``drop_earlier_attempts``).
A query the user is at fault for (bad SQL, an unknown or unreadable table,
a limit exceeded, a result a table cannot store) fails the job ``invalid_input`` with the
message and marks the table ``error``; so does the last failed attempt of any other error.
Each such outcome is also an OpenLineage run event (START, then COMPLETE naming every table read,
or FAIL) sent to the job type's ``LineageEvents``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.auth.ports import UserStore, owner_principal
from studio9.catalog.domain import Asset, AssetKind, AssetStatus, AssetVersion, VersionConflict
from studio9.catalog.ports import Assets, EventType, LineageDataset, LineageEvents, run_event, table_fields
from studio9.errors import Conflict, InvalidInput, NotFound
from studio9.files.ports import BlobStore
from studio9.jobs.domain import Job
from studio9.jobs.ports import JobContext, JobType
from studio9.tables.content import STATS_FILE, TableContent, attempt_prefix, drop_earlier_attempts
from studio9.tables.ports import JobSubmitter
from studio9.tables.resolving import TableResolver
from studio9.tables.sql import query_to_parquet
from studio9.tables.sql_limits import SqlLimits
from studio9.tables.stats_job import complete_stats

log = structlog.get_logger()

DERIVE_JOB: Final = "tables.sql"
DERIVE_ATTEMPTS: Final = 2
PART_NAME: Final = "part-00000.parquet"
_CHUNK = 1 << 20
#: Share of the progress bar the query and its upload take; the statistics take the rest.
_QUERY_SHARE = 0.85
#: What a derive is refused for, as the user's fault: the job fails ``invalid_input``.
_USER_ERRORS = (InvalidInput, NotFound, Conflict)


class DeriveParams(msgspec.Struct, forbid_unknown_fields=True):
    """Write the result of ``sql`` as the next version (after ``expected_latest``) of table ``table``."""

    table: str
    sql: str
    expected_latest: int = 0


async def submit_derive(
    actor: Principal,
    *,
    name: str,
    sql: str,
    description: str = "",
    tables: TableResolver,
    assets: Assets,
    jobs: JobSubmitter,
) -> tuple[Asset, Job]:
    """A new library table ``name`` (``saving``) and the ``tables.sql`` job that fills it.

    Raises:
        InvalidInput: refused SQL (field ``sql``) or a bad name/description.
        UnknownTable: a table name ``actor`` has no table of (404).
        TableNotReadable: a named table has no readable version (409).
        AssetNameTaken: ``actor`` has a library table of that name (409).
    """
    for table in sorted(await tables.names(sql)):
        await tables.latest(actor, table)  # fail now, not in the job, for what can be seen now
    asset = await assets.create(
        owner_id=actor.user_id,
        kind=AssetKind.TABLE,
        name=name,
        content=None,
        description=description,
        in_library=True,
    )
    try:
        job = await jobs.submit(actor, DERIVE_JOB, {"table": asset.id, "sql": sql, "expected_latest": 0})
    except BaseException:
        # No job will ever fill it: do not leave it ``saving`` forever (even when cancelled).
        with anyio.CancelScope(shield=True):
            await assets.set_status(asset.id, AssetStatus.ERROR, "its job could not be submitted")
        raise
    return asset, job


def derive_job_type(
    *,
    assets: Assets,
    tables: TableResolver,
    users: UserStore,
    blobs: BlobStore,
    limits: SqlLimits,
    lineage: LineageEvents,
) -> JobType:
    """The ``tables.sql`` job type (registered by the composition root); its OpenLineage run
    events (START, then COMPLETE with every table read, or a final FAIL) go to ``lineage``."""
    return JobType(
        name=DERIVE_JOB,
        handler=functools.partial(_derive, assets, tables, users, blobs, limits, lineage),
        params=DeriveParams,
        timeout=limits.derive_timeout_s + 600,  # the query's own limit ends it first
        max_attempts=DERIVE_ATTEMPTS,
        retry_on=(OSError,),
        description="Save the result of a read-only SQL query over tables as a new table version.",
    )


async def _derive(
    assets: Assets,
    tables: TableResolver,
    users: UserStore,
    blobs: BlobStore,
    limits: SqlLimits,
    lineage: LineageEvents,
    ctx: JobContext,
    params: DeriveParams,
) -> dict[str, Any]:
    actor = await owner_principal(users, ctx.owner_id, ctx.job_id)
    if (done := await _made_by(assets, actor, params, ctx.job_id)) is not None:
        await _drop_earlier(blobs, ctx, done)
        return await _finish(assets, blobs, lineage, ctx, params.sql, done)
    # The tables read are known once the query resolves: START names only the output.
    await lineage.emit(_event("START", ctx.job_id, params.sql, [], LineageDataset(asset_id=params.table)))
    try:
        version, paths = await _run(assets, tables, blobs, limits, actor, ctx, params)
    except _USER_ERRORS as exc:
        await assets.set_status(params.table, AssetStatus.ERROR, exc.message)
        await _failed(lineage, ctx.job_id, params, exc.message)
        raise InvalidInput(exc.message, field="sql", table=params.table) from exc
    except Exception as exc:
        if ctx.attempt >= DERIVE_ATTEMPTS or not isinstance(exc, OSError):
            await assets.set_status(params.table, AssetStatus.ERROR, "the query failed on the server")
            await _failed(
                lineage, ctx.job_id, params, f"the query failed on the server ({type(exc).__name__})"
            )
        raise
    return await _finish(assets, blobs, lineage, ctx, params.sql, version, paths)


async def _failed(lineage: LineageEvents, job_id: str, params: DeriveParams, message: str) -> None:
    await lineage.emit(
        _event("FAIL", job_id, params.sql, [], LineageDataset(asset_id=params.table), error=message)
    )


def _event(
    event_type: EventType,
    job_id: str,
    sql: str,
    inputs: list[LineageDataset],
    output: LineageDataset,
    error: str | None = None,
) -> dict[str, Any]:
    return run_event(
        event_type,
        job_id=job_id,
        job_type=DERIVE_JOB,
        at=datetime.now(UTC),
        inputs=inputs,
        outputs=[output],
        error=error,
        sql=sql,
    )


async def _run(
    assets: Assets,
    tables: TableResolver,
    blobs: BlobStore,
    limits: SqlLimits,
    actor: Principal,
    ctx: JobContext,
    params: DeriveParams,
) -> tuple[AssetVersion, list[Path] | None]:
    """Query, upload, and add the version; returns it, and the local part when this attempt
    added it."""
    dest = ctx.scratch / PART_NAME
    spill = ctx.scratch / "spill"
    await anyio.Path(spill).mkdir(parents=True, exist_ok=True)
    async with tables.resolve(actor, params.sql) as resolved:
        ctx.report(0.05, message=f"reading {len(resolved.tables)} table(s)")
        written = await ctx.in_thread(
            functools.partial(
                query_to_parquet,
                params.sql,
                resolved.sources,
                dest,
                timeout_s=limits.derive_timeout_s,
                memory_limit=limits.derive_memory,
                threads=limits.threads,
                spill_dir=spill,
            )
        )
    ctx.report(0.8, message=f"{written.row_count} rows written; storing them")
    columns = await ctx.in_thread(table_columns, written.schema)
    prefix = attempt_prefix(params.table, ctx.job_id, ctx.attempt)
    try:
        key = prefix + PART_NAME
        size = await blobs.put(key, _chunks(dest))
        content = {
            "format": "parquet",
            "schema": columns,
            "row_count": written.row_count,
            "bytes": size,
            "parts": [key],
            "source": {"sql": params.sql, "tables": resolved.described},
            "stats": prefix + STATS_FILE,
        }
        try:
            _, version = await assets.add_version(
                params.table,
                content,
                expected_latest=params.expected_latest,
                job_id=ctx.job_id,
                status=AssetStatus.ACTIVE,
            )
        except VersionConflict:
            if (done := await _made_by(assets, actor, params, ctx.job_id)) is None:
                raise
            # An earlier attempt of this job got there first (stalled, not killed): ours is garbage.
            await blobs.delete_prefix(prefix)
            await _drop_earlier(blobs, ctx, done)
            return done, None
    except BaseException:
        # Only this attempt's own prefix: another attempt of the job may still add its version.
        with anyio.CancelScope(shield=True):
            await blobs.delete_prefix(prefix)
        raise
    await _drop_earlier(blobs, ctx, version)
    return version, [dest]


async def _drop_earlier(blobs: BlobStore, ctx: JobContext, version: AssetVersion) -> None:
    """Delete what the earlier attempts of this job left, but the prefix of ``version`` (the
    job's; none of them can add one any more). A failure leaves garbage, not a broken table."""
    content = TableContent.of(version.content)
    keep = [*content.parts, *([content.stats] if content.stats else [])]
    try:
        await drop_earlier_attempts(blobs, version.asset_id, ctx.job_id, ctx.attempt, keep=keep)
    except Exception as exc:
        log.warning("table_attempts_not_dropped", table=version.asset_id, error=type(exc).__name__)


async def _made_by(
    assets: Assets, actor: Principal, params: DeriveParams, job_id: str
) -> AssetVersion | None:
    """The version after ``expected_latest`` if this job made it (a retried job is then done)."""
    asset = await assets.get(actor, params.table)
    if asset.latest_version <= params.expected_latest:
        return None
    _, version = await assets.read(actor, asset.id, params.expected_latest + 1)
    if version is None or version.job_id != job_id:
        raise Conflict(
            f"table {params.table!r} got version {params.expected_latest + 1} from another job",
            field="table",
        )
    return version


async def _finish(
    assets: Assets,
    blobs: BlobStore,
    lineage: LineageEvents,
    ctx: JobContext,
    sql: str,
    version: AssetVersion,
    paths: list[Path] | None = None,
) -> dict[str, Any]:
    """Record the lineage (again, harmlessly, on a retry), tell lineage tools, compute the
    statistics unless done (``paths``: the local part, when this attempt wrote it), and answer
    the job's result."""
    job_id = ctx.job_id
    read = version.content["source"]["tables"]
    inputs = sorted({(asset_id, number) for asset_id, number in read.values()})
    await assets.record_lineage(job_id=job_id, inputs=inputs, outputs=[(version.asset_id, version.version)])
    # Named as the query names them (one asset read under two names is one input).
    names = {tuple(at): name for name, at in sorted(read.items(), reverse=True)}
    read_datasets = [LineageDataset(asset_id=i, version=v, name=names.get((i, v))) for i, v in inputs]
    output = LineageDataset(
        asset_id=version.asset_id, version=version.version, fields=table_fields(version.content)
    )
    await lineage.emit(_event("COMPLETE", job_id, sql, read_datasets, output))
    content = TableContent.of(version.content)
    await complete_stats(ctx, blobs, version.asset_id, content, paths, start=_QUERY_SHARE)
    return {
        "table": version.asset_id,
        "version": version.version,
        "rows": version.content["row_count"],
        "inputs": [{"id": i, "version": v} for i, v in inputs],
    }


def table_columns(schema: Any) -> list[dict[str, Any]]:
    """The table schema of a result's Arrow schema (pyarrow loads here, in the job, not at start)."""
    from studio9.tables.conversion import arrow_type_for_source, column_type_of, variable_type

    columns = []
    for column in schema:
        kind = column_type_of(arrow_type_for_source(column.type, column.name))
        columns.append(
            {
                "name": column.name,
                "type": kind,
                "variable_type": variable_type(kind, None),
                "display_name": None,
            }
        )
    return columns


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(_CHUNK):
            yield chunk
