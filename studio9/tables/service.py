"""Use cases of tables: import a file as a table, read it (schema, rows, values, statistics,
exports), change its names and variable types, copy it.

A table is a catalog asset of kind ``table`` (``studio9.tables.content`` has its layout); the
catalog's one access rule applies through ``TableCatalog``: a table the caller may not read, or
an asset that is not a table, is ``TableNotFound`` (404) on every use case. The engines (pyarrow)
are imported inside the functions that run them, in a thread, over local copies of the parts.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Literal

import anyio
import attrs
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetStatus, AssetVersion
from studio9.errors import Conflict, InvalidInput
from studio9.files.domain import FileNotFound
from studio9.files.ports import BlobStore, FileRecords
from studio9.jobs.domain import Job
from studio9.tables.content import (
    StatsStatus,
    TableContent,
    local_parts,
    read_blob,
    stats_status,
)
from studio9.tables.import_job import IMPORT_JOB, ImportOptionsParams
from studio9.tables.ports import JobSubmitter, TableCatalog
from studio9.tables.resolving import TableResolver
from studio9.tables.stats_job import fresh_stats, submit_stats
from studio9.tables.values import ORDERED_TYPES, DistinctValues, RowsPage, VariableType

log = structlog.get_logger()

ExportFormat = Literal["csv", "parquet"]
MEDIA_TYPES: dict[str, str] = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


class TableNotFound(AssetNotFound):
    """No such table, or one the caller may not read."""

    def __init__(self, table_id: str, version: int | None = None) -> None:
        super().__init__(table_id, version)
        self.message = f"table {table_id!r}" + (f" version {version}" if version else "") + " not found"


class TableNotReady(Conflict):
    def __init__(self, asset: Asset) -> None:
        why = f": {asset.error}" if asset.error else ""
        super().__init__(f"table {asset.id!r} has no data ({asset.status}{why})", status=str(asset.status))


@attrs.frozen(kw_only=True)
class TableView:
    """A table and one of its versions (None while the first is written, or after a failure)."""

    asset: Asset
    version: AssetVersion | None
    content: TableContent | None
    stats: StatsStatus | None
    stats_error: str | None = None


@attrs.frozen(kw_only=True)
class ColumnChange:
    """A PATCH of one column: its display name (``""`` clears it) and/or variable type."""

    name: str
    display_name: str | None = None
    variable_type: VariableType | None = None


@attrs.define
class TableService:
    assets: TableCatalog
    blobs: BlobStore
    files: FileRecords
    jobs: JobSubmitter
    #: Resolves the table names of SQL (``studio9.tables.resolving``); None: no derived tables.
    resolver: TableResolver | None = None

    # -- writes ----------------------------------------------------------------------------------

    async def import_file(
        self,
        actor: Principal,
        *,
        name: str,
        file_id: str,
        options: Mapping[str, Any],
        description: str = "",
    ) -> tuple[Asset, Job]:
        """A new table (``saving``) and the ``tables.import`` job that fills it.

        Raises:
            FileNotFound: no such file of the caller's.
            InvalidInput: an option (named) or the name is unusable; nothing was created.
            AssetNameTaken: the caller has a table of that name.
        """
        await self.readable_file(actor, file_id)
        try:
            parsed = msgspec.convert(dict(options), type=ImportOptionsParams)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"invalid import options: {exc}") from None
        parsed.to_options()  # every option checked before anything is created
        asset = await self.assets.create(
            owner_id=actor.user_id,
            kind=AssetKind.TABLE,
            name=name,
            content=None,
            description=description,
            in_library=True,
        )
        params = {
            "table": asset.id,
            "file": file_id,
            "options": msgspec.to_builtins(parsed),
            "expected_latest": 0,
        }
        try:
            job = await self.jobs.submit(actor, IMPORT_JOB, params)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.assets.set_status(asset.id, AssetStatus.ERROR, "the import could not be submitted")
            raise
        log.info("table_import_submitted", table_id=asset.id, file_id=file_id, job_id=job.id)
        return asset, job

    async def derive(
        self, actor: Principal, *, name: str, sql: str, description: str = ""
    ) -> tuple[Asset, Job]:
        """A new table (``saving``) and the ``tables.sql`` job writing the result of ``sql`` into it
        (``studio9.tables.derive.submit_derive``)."""
        from studio9.tables.derive import submit_derive

        if self.resolver is None:
            raise InvalidInput("sql tables are not available yet", field="sql")
        return await submit_derive(
            actor,
            name=name,
            sql=sql,
            description=description,
            tables=self.resolver,
            assets=self.assets,
            jobs=self.jobs,
        )

    async def readable_file(self, actor: Principal, file_id: str) -> None:
        """Raises FileNotFound unless the caller may read the file: theirs, or one whose asset is
        shared with them (the import job, acting as the caller, reads it the same way)."""
        if actor.owns((await self.files.get(file_id)).owner_id):
            return
        try:
            await self.assets.get(actor, file_id)
        except AssetNotFound:
            raise FileNotFound(file_id) from None

    async def update(
        self,
        actor: Principal,
        table_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        columns: Sequence[ColumnChange] = (),
    ) -> TableView:
        """Rename or describe the table; a column change (display name, variable type) is a new
        version sharing the parts of the latest one (see ``studio9.tables.content``). A
        display-name change shares its statistics too; a variable-type change gets fresh ones,
        ``pending`` until the ``tables.stats`` job submitted here writes them (a submit that
        fails makes them ``error``: ``studio9.tables.stats_job.submit_stats``).

        Raises TableNotFound, PermissionDenied, InvalidInput, AssetNameTaken, TableNotReady
        (column changes of a table without data), Conflict (a concurrent version).
        """
        await self._table(actor, table_id)  # a missing table, or another kind: TableNotFound
        asset = await self.assets.writable(actor, table_id)
        if columns:
            view = await self.get(actor, table_id)
            if view.content is None or view.version is None:
                raise TableNotReady(view.asset)
            content = _changed(view.content, columns)
            retyped = [c.variable_type for c in content.schema] != [
                c.variable_type for c in view.content.schema
            ]
            if retyped:  # the statistics record each column's variable type: recompute them
                stats_job, stats_key = fresh_stats(asset.id)
                content = attrs.evolve(content, stats=stats_key)
            _, added = await self.assets.add_version(
                asset.id, content.to_json(), expected_latest=view.version.version, job_id=None
            )
            if retyped:  # submitted once the version exists, so the job finds what it computes
                await submit_stats(
                    self.jobs,
                    self.blobs,
                    actor,
                    asset.id,
                    added.version,
                    job_id=stats_job,
                    stats_key=stats_key,
                )
        if name is not None or description is not None:
            await self.assets.update(actor, asset.id, name=name, description=description)
        return await self.get(actor, table_id)

    async def copy(self, actor: Principal, table_id: str, *, name: str | None = None) -> Asset:
        """A new table whose first version is the latest version of this one, with a lineage edge
        from it (a job-less edge: what marks a copy).

        Copy-on-write: the copy's version names the same Parquet parts and statistics, so a copy
        costs no bytes and no time whatever the table's size. A later change writes the copy's
        own blobs under its own prefix (new statistics after a variable-type change); deleting
        either table keeps what the other still holds (``studio9.tables.content.TableBlobs``).
        Raises TableNotFound, TableNotReady, AssetNameTaken.
        """
        view = await self.get(actor, table_id)
        if view.content is None or view.version is None:
            raise TableNotReady(view.asset)
        copy = await self.assets.create(
            owner_id=actor.user_id,
            kind=AssetKind.TABLE,
            name=name if name is not None else f"{view.asset.name} (copy)",
            content=None,
            description=view.asset.description,
            in_library=True,
        )
        content = attrs.evolve(
            view.content, source={"copy_of": {"table": view.asset.id, "version": view.version.version}}
        )
        try:
            done, version = await self.assets.add_version(
                copy.id, content.to_json(), expected_latest=0, status=AssetStatus.ACTIVE
            )
            await self.assets.record_lineage(
                job_id=None,
                inputs=[(view.asset.id, view.version.version)],
                outputs=[(copy.id, version.version)],
            )
            # A delete of the source looks for copies after removing its record: the source
            # still there now means that look will find this one; gone, its blobs may be too.
            await self._table(actor, view.asset.id)
        except TableNotFound:
            with anyio.CancelScope(shield=True):
                await self.assets.set_status(copy.id, AssetStatus.ERROR, "the source was deleted")
            raise Conflict(f"table {table_id!r} was deleted while it was being copied") from None
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.assets.set_status(copy.id, AssetStatus.ERROR, "the copy failed")
            raise
        log.info("table_copied", table_id=view.asset.id, copy_id=copy.id)
        return done

    # -- reads -----------------------------------------------------------------------------------

    async def list(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Asset]:
        """The caller's tables, newest first, older than ``after``."""
        return await self.assets.list(actor, kind=AssetKind.TABLE, limit=limit, after=after)

    async def get(self, actor: Principal, table_id: str, version: int | None = None) -> TableView:
        """The table and its latest version, or ``version``. Raises TableNotFound."""
        asset = await self._table(actor, table_id)
        try:
            asset, found = await self.assets.read(actor, table_id, version)
        except AssetNotFound:
            raise TableNotFound(table_id, version) from None
        if found is None:
            return TableView(asset=asset, version=None, content=None, stats=None)
        content = TableContent.of(found.content)
        status, error = await stats_status(self.blobs, content.stats)
        return TableView(asset=asset, version=found, content=content, stats=status, stats_error=error)

    async def rows(
        self,
        actor: Principal,
        table_id: str,
        *,
        version: int | None = None,
        limit: int = 100,
        cursor: str | None = None,
        order: str | None = None,
        columns: Sequence[str] | None = None,
        filter: str | None = None,
    ) -> RowsPage:
        """A page of rows (``studio9.tables.reading.read_rows``). Raises TableNotFound,
        TableNotReady, InvalidInput (naming the argument)."""
        from studio9.tables.reading import read_rows

        content = await self._content(actor, table_id, version)
        read = functools.partial(
            read_rows, limit=limit, cursor=cursor, order=order, columns=columns, filter=filter
        )
        async with local_parts(self.blobs, content.parts) as paths:
            return await anyio.to_thread.run_sync(read, paths)

    async def values(
        self,
        actor: Principal,
        table_id: str,
        column: str,
        *,
        version: int | None = None,
        q: str | None = None,
        limit: int = 50,
    ) -> DistinctValues:
        """A column's most frequent values (containing ``q``)."""
        from studio9.tables.reading import distinct_values

        content = await self._content(actor, table_id, version)
        async with local_parts(self.blobs, content.parts) as paths:
            return await anyio.to_thread.run_sync(functools.partial(distinct_values, paths, column, q, limit))

    async def stats(
        self, actor: Principal, table_id: str, *, version: int | None = None
    ) -> tuple[StatsStatus, dict[str, Any] | None, str | None]:
        """``(status, stats, error)``: the statistics once computed, each column with the
        variable type of the version read."""
        view = await self.get(actor, table_id, version)
        if view.content is None or view.stats is None:
            raise TableNotReady(view.asset)
        if view.stats != "done" or view.content.stats is None:
            return view.stats, None, view.stats_error
        stats: dict[str, Any] = msgspec.json.decode(await read_blob(self.blobs, view.content.stats))
        by_name = {c.name: c for c in view.content.schema}
        for column in stats.get("columns", []):
            if (schema := by_name.get(column.get("name"))) is not None:
                column["variable_type"] = schema.variable_type
                column["display_name"] = schema.display_name
        return "done", stats, None

    async def export(
        self, actor: Principal, table_id: str, format: ExportFormat, *, version: int | None = None
    ) -> tuple[str, str, AsyncIterator[bytes]]:
        """``(filename, media type, chunks)`` of the table as CSV or Parquet, streamed."""
        if format not in MEDIA_TYPES:
            raise InvalidInput(f"format must be 'csv' or 'parquet', not {format!r}", field="format")
        view = await self.get(actor, table_id, version)
        if view.content is None:
            raise TableNotReady(view.asset)
        return f"{view.asset.name}.{format}", MEDIA_TYPES[format], self._exported(view.content, format)

    async def _exported(self, content: TableContent, format: ExportFormat) -> AsyncIterator[bytes]:
        from studio9.tables.reading import export

        async with local_parts(self.blobs, content.parts) as paths:
            chunks: Iterator[bytes] = await anyio.to_thread.run_sync(export, paths, format)
            while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
                yield chunk

    async def _table(self, actor: Principal, table_id: str) -> Asset:
        try:
            asset = await self.assets.get(actor, table_id)
        except AssetNotFound:
            raise TableNotFound(table_id) from None
        if asset.kind is not AssetKind.TABLE:
            raise TableNotFound(table_id)
        return asset

    async def _content(self, actor: Principal, table_id: str, version: int | None) -> TableContent:
        view = await self.get(actor, table_id, version)
        if view.content is None:
            raise TableNotReady(view.asset)
        return view.content


def _changed(content: TableContent, changes: Sequence[ColumnChange]) -> TableContent:
    """``content`` with the column changes made. Raises InvalidInput (field ``columns``)."""
    schema = list(content.schema)
    index = {c.name.casefold(): i for i, c in enumerate(schema)}
    for change in changes:
        if (at := index.get(change.name.casefold())) is None:
            raise InvalidInput(f"the table has no column {change.name!r}", field="columns")
        column = schema[at]
        if change.variable_type == "continuous" and column.type not in ORDERED_TYPES:
            raise InvalidInput(
                f"column {column.name!r} is {column.type}: it cannot be continuous", field="columns"
            )
        if change.variable_type is not None:
            column = attrs.evolve(column, variable_type=change.variable_type)
        if change.display_name is not None:
            column = attrs.evolve(column, display_name=change.display_name or None)
        schema[at] = column
    return attrs.evolve(content, schema=tuple(schema))
