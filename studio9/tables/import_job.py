"""The ``tables.import`` job type: an uploaded file becomes a version of a table asset.

Built by ``table_import_job_type(assets, blobs)`` and registered by the composition root;
``TableService.import_file`` creates the table (``saving``, no version) and submits the job
with ``{table, file, options, expected_latest}``. The run, acting as the job's owner:

1. reads the table (another owner's, or not a table: the job fails ``not_found``/``invalid_input``);
   when it is past ``expected_latest`` because an earlier attempt of this same job added the
   version (a worker killed after the compare-and-set), the import is not redone: only lineage
   and statistics are completed. So a retried job ends with exactly one version;
2. imports the file into the run's scratch directory (``importing.import_table``, in a thread,
   progress 0-80 %, a cancel stops it at the next block), uploads the parts to the attempt's own
   ``tables/<table>/<job id>/<attempt>/`` and, in skip mode, ``rejected.csv`` as the job's output;
3. adds the version with a compare-and-set on ``expected_latest`` (status ``active``), deletes
   what earlier attempts of the job left (killed ones: ``drop_earlier_attempts``) and records
   the lineage edge (file asset, 1) → (table, version). An attempt that loses the
   compare-and-set to an earlier attempt of the same job (one stalled, not killed) deletes its
   own prefix and is done as in step 1;
4. computes the column statistics into ``stats.json`` beside the parts
   (``studio9.tables.stats_job.complete_stats``: a failure there writes ``stats-error.json``;
   the table stays readable, its stats are ``error``).

A failure before step 3 removes what this attempt uploaded (only its own prefix: another attempt
of the job may still be running) and, unless another attempt will follow (a read error,
``OSError``, with attempts left), marks the table ``error`` with the message
(``row 3, column 'age': …``): nothing of a failed import is readable.

OpenLineage run events go to the ``LineageEvents`` given: START once the table is read, COMPLETE
after step 3 (the table's version and schema), FAIL when the table is marked ``error``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import anyio
import attrs
import msgspec

from studio9.auth.domain import Principal, Role
from studio9.catalog.domain import AssetKind, AssetNotFound, AssetStatus, AssetVersion, VersionConflict
from studio9.catalog.ports import Assets, LineageDataset, LineageEvents, run_event, table_fields
from studio9.errors import Conflict, InvalidInput, Studio9Error
from studio9.files.ports import BlobStore
from studio9.jobs.domain import RetryableError
from studio9.jobs.ports import JobContext, JobType
from studio9.tables.content import (
    STATS_FILE,
    TableContent,
    attempt_prefix,
    drop_earlier_attempts,
    file_chunks,
)
from studio9.tables.stats_job import complete_stats
from studio9.tables.values import DEFAULT_NULLS, ImportOptions, ImportResult

__all__ = [
    "IMPORT_JOB",
    "REJECTED_OUTPUT",
    "ImportOptionsParams",
    "TableImportParams",
    "table_import_job_type",
]

IMPORT_JOB: Final = "tables.import"
REJECTED_OUTPUT: Final = "rejected.csv"
MAX_ATTEMPTS: Final = 2
#: Share of the progress bar the import takes; the statistics take the rest.
IMPORT_SHARE: Final = 0.8


class ColumnParam(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A declared column: its type and/or variable type override inference."""

    name: str
    type: Literal["string", "integer", "float", "boolean", "date", "timestamp"] | None = None
    variable_type: Literal["continuous", "categorical"] | None = None


class ImportOptionsParams(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How to read the source (``studio9.tables.values.ImportOptions``)."""

    format: Literal["csv", "parquet", "jsonl"] | None = None
    delimiter: str = ","
    null_values: list[str] = msgspec.field(default_factory=lambda: list(DEFAULT_NULLS))
    encoding: str = "utf-8"
    header: bool = True
    columns: list[ColumnParam] = msgspec.field(default_factory=list)
    on_error: Literal["fail", "skip"] = "fail"

    def to_options(self) -> ImportOptions:
        """The engine's options. Raises InvalidInput naming the bad option."""
        return ImportOptions(
            format=self.format,
            delimiter=self.delimiter,
            null_values=tuple(self.null_values),
            encoding=self.encoding,
            header=self.header,
            columns=[msgspec.structs.asdict(c) for c in self.columns],
            on_error=self.on_error,
        )


class TableImportParams(msgspec.Struct, forbid_unknown_fields=True):
    """Import the uploaded ``file`` as the next version of the table ``table`` (made by
    ``POST /api/v1/tables``), which must still be at version ``expected_latest``."""

    table: str
    file: str
    options: ImportOptionsParams = msgspec.field(default_factory=ImportOptionsParams)
    expected_latest: int = 0


def owner_of(ctx: JobContext) -> Principal:
    """The principal a job acts as: its owner (the one access rule applies to what it reads)."""
    return Principal(
        user_id=ctx.owner_id,
        username=ctx.owner_id,
        role=Role.USER,
        token_id=f"job:{ctx.job_id}",
        token_expires_at=datetime.max.replace(tzinfo=UTC),
    )


def table_import_job_type(assets: Assets, blobs: BlobStore, lineage: LineageEvents) -> JobType:
    """The ``tables.import`` job type, writing through ``assets`` and ``blobs``; its OpenLineage
    run events (START, then COMPLETE or a final FAIL) go to ``lineage``."""

    async def handler(ctx: JobContext, params: TableImportParams) -> dict[str, Any]:
        return await _Import(assets, blobs, lineage, ctx, params).run()

    return JobType(
        name=IMPORT_JOB,
        handler=handler,
        params=TableImportParams,
        timeout=6 * 3600,
        max_attempts=MAX_ATTEMPTS,
        retry_on=(OSError,),
        description="Import an uploaded CSV, JSON Lines or Parquet file as a version of a table.",
    )


class _Import:
    def __init__(
        self,
        assets: Assets,
        blobs: BlobStore,
        lineage: LineageEvents,
        ctx: JobContext,
        params: TableImportParams,
    ) -> None:
        self.assets, self.blobs, self.lineage, self.ctx, self.params = assets, blobs, lineage, ctx, params
        self.prefix = attempt_prefix(params.table, ctx.job_id, ctx.attempt)
        self.table: LineageDataset | None = None

    async def run(self) -> dict[str, Any]:
        asset = await self.assets.get(owner_of(self.ctx), self.params.table)
        if asset.kind is not AssetKind.TABLE:
            raise InvalidInput(f"asset {asset.id!r} is not a table", field="params.table")
        if asset.latest_version != self.params.expected_latest:
            return await self._already_done(await self._own_version())
        self.table = LineageDataset(asset_id=asset.id, name=asset.name, owner=asset.owner_id)
        await self._emit("START")
        # Nothing of another attempt is deleted before the version is added: an earlier one
        # may be stalled, not dead, and still add its version (see the module doc).
        try:
            result, content = await self._import()
            version, won = await self._add_version(content)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                await self._failed(exc)
            raise
        if not won:  # an earlier attempt of this job added it meanwhile: ours is garbage
            await self.blobs.delete_prefix(self.prefix)
            return await self._already_done(version)
        await self._drop_earlier_attempts(())
        await self.assets.record_lineage(
            job_id=self.ctx.job_id, inputs=[(self.params.file, 1)], outputs=[(asset.id, version.version)]
        )
        await self._emit("COMPLETE", version)
        await complete_stats(self.ctx, self.blobs, asset.id, content, result.parts, start=IMPORT_SHARE)
        return _summary(asset.id, version.version, content, result.rejected_count)

    async def _import(self) -> tuple[ImportResult, TableContent]:
        from studio9.tables.importing import import_table  # pyarrow loads with the first import

        options = self.params.options.to_options()
        dest = self.ctx.scratch / "table"
        report = self.ctx.report
        async with self.ctx.input_file(self.params.file) as path:
            result = await self.ctx.in_thread(
                functools.partial(
                    import_table, path, dest, options, progress=lambda f: report(IMPORT_SHARE * f)
                )
            )
        keys = []
        for part in result.parts:
            key = self.prefix + part.name
            await self.blobs.put(key, file_chunks(part))
            keys.append(key)
        if result.rejected_file is not None:
            await self.ctx.put_output(REJECTED_OUTPUT, file_chunks(result.rejected_file))
        content = TableContent(
            schema=result.schema,
            row_count=result.row_count,
            bytes=result.bytes_written,
            parts=tuple(keys),
            source={"file": self.params.file, "format": result.format},
            stats=self.prefix + STATS_FILE,
        )
        return result, content

    async def _add_version(self, content: TableContent) -> tuple[AssetVersion, bool]:
        """``(the version, whether this attempt added it)``: not when an earlier attempt of this
        job added it first. Raises Conflict when another writer did."""
        try:
            _, version = await self.assets.add_version(
                self.params.table,
                content.to_json(),
                expected_latest=self.params.expected_latest,
                job_id=self.ctx.job_id,
                status=AssetStatus.ACTIVE,
            )
        except VersionConflict:
            return await self._own_version(), False
        return version, True

    async def _own_version(self) -> AssetVersion:
        """The version after ``expected_latest``, added by an earlier attempt of this job.
        Raises Conflict when another writer added it (or none is there)."""
        at = self.params.expected_latest + 1
        with contextlib.suppress(AssetNotFound):
            _, version = await self.assets.read(owner_of(self.ctx), self.params.table, at)
            if version is not None and version.job_id == self.ctx.job_id:
                return version
        raise Conflict(
            f"table {self.params.table!r} changed since the import was submitted (at version"
            f" {self.params.expected_latest}); nothing was added"
        )

    async def _drop_earlier_attempts(self, keep: Sequence[str]) -> None:
        """What killed attempts of this job left (the version is added: none of them can add
        one any more). A failure here leaves garbage, not a broken table: logged, not raised."""
        try:
            await drop_earlier_attempts(
                self.blobs, self.params.table, self.ctx.job_id, self.ctx.attempt, keep=keep
            )
        except Exception as exc:
            self.ctx.log.warning(
                "table_attempts_not_dropped", table=self.params.table, error=type(exc).__name__
            )

    async def _failed(self, exc: BaseException) -> None:
        """Remove what this run uploaded; mark the table ``error`` unless another attempt follows."""
        await self.blobs.delete_prefix(self.prefix)
        retried = isinstance(exc, OSError | RetryableError) and self.ctx.attempt < MAX_ATTEMPTS
        if retried or not isinstance(exc, Exception):  # a worker stopping: the job comes back
            return
        message = exc.message if isinstance(exc, Studio9Error) else f"{type(exc).__name__}: {exc}"
        await self._emit("FAIL", error=message)
        with contextlib.suppress(Studio9Error):  # the table may be gone (deleted meanwhile)
            await self.assets.set_status(
                self.params.table, AssetStatus.ERROR, f"import failed: {message}"[:2000]
            )

    async def _already_done(self, version: AssetVersion) -> dict[str, Any]:
        """An earlier attempt of this job added ``version``: finish its lineage and statistics,
        and delete what the other earlier attempts left."""
        self.ctx.log.info("table_import_already_done", table=self.params.table, version=version.version)
        content = TableContent.of(version.content)
        await self._drop_earlier_attempts([*content.parts, *([content.stats] if content.stats else [])])
        await self.assets.record_lineage(
            job_id=self.ctx.job_id,
            inputs=[(self.params.file, 1)],
            outputs=[(self.params.table, version.version)],
        )
        await self._emit("COMPLETE", version)
        await complete_stats(self.ctx, self.blobs, self.params.table, content, start=IMPORT_SHARE)
        return _summary(self.params.table, version.version, content, None)

    async def _emit(
        self,
        event_type: Literal["START", "COMPLETE", "FAIL"],
        version: AssetVersion | None = None,
        error: str | None = None,
    ) -> None:
        """Tell lineage tools: the file (version 1) goes into the table (at ``version`` once added)."""
        table = self.table or LineageDataset(asset_id=self.params.table)
        if version is not None:
            table = attrs.evolve(table, version=version.version, fields=table_fields(version.content))
        await self.lineage.emit(
            run_event(
                event_type,
                job_id=self.ctx.job_id,
                job_type=IMPORT_JOB,
                at=datetime.now(UTC),
                inputs=[LineageDataset(asset_id=self.params.file, kind="file", version=1)],
                outputs=[table],
                error=error,
            )
        )


def _summary(table: str, version: int, content: TableContent, rejected: int | None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "table": table,
        "version": version,
        "rows": content.row_count,
        "columns": len(content.schema),
    }
    if rejected is not None:
        summary["rejected"] = rejected
        if rejected:
            summary["output"] = REJECTED_OUTPUT
    return summary
