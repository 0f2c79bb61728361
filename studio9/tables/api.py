"""HTTP routes of tables: ``/api/v1/tables``.

``POST /tables`` with ``{name, file, …options}`` creates the table (``saving``) and answers 202
with it and its ``tables.import`` job; the job makes version 1 (``active``) or fails naming the
row and column (``error``). Reads take ``?version=N`` (default: the latest). A table that is not
the caller's is a 404 on every route; one without data yet (``saving``, ``error``) is a 409 on
the data routes. Deleting is the catalog's ``DELETE /api/v1/assets/{id}``.

Filter syntax of ``/rows?filter=`` (``studio9.tables.filters``): conditions on columns joined
with ``and``/``or``/``not`` and parentheses, e.g. ``"age" >= 18 and "city" in ('Oslo', 'Rome')``;
values are parameters of a parsed expression, never SQL text.
"""

from datetime import datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Stream

from studio9.auth.domain import Principal
from studio9.catalog.domain import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, NAME_PATTERN, Asset, AssetStatus
from studio9.errors import InvalidInput
from studio9.jobs.domain import Job
from studio9.tables.service import ColumnChange, TableService, TableView
from studio9.tables.wire import RowsOut, StatsOut, ValueCountOut, ValuesOut
from studio9.web.paging import ID_CURSOR, keyset_page
from studio9.web.responses import problems

MAX_VERSION: Final = 2**31 - 1
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, pattern=f"^(?:{NAME_PATTERN.pattern})$")]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
Version = Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION)]
ColumnType = Literal["string", "integer", "float", "boolean", "date", "timestamp"]
VariableType = Literal["continuous", "categorical"]
_OPTIONS: Final = ("format", "delimiter", "null_values", "encoding", "header", "columns", "on_error")


class DeclaredColumnIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A source column whose type and/or variable type is fixed instead of inferred."""

    name: str
    type: ColumnType | None = None
    variable_type: VariableType | None = None


class TableIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A table from an uploaded ``file`` (with how to read it), or from ``sql`` (a derived table)."""

    name: Name
    file: str | msgspec.UnsetType = msgspec.UNSET
    sql: str | msgspec.UnsetType = msgspec.UNSET
    description: Description = ""
    format: Literal["csv", "parquet", "jsonl"] | msgspec.UnsetType = msgspec.UNSET
    delimiter: str | msgspec.UnsetType = msgspec.UNSET
    null_values: list[str] | msgspec.UnsetType = msgspec.UNSET
    encoding: str | msgspec.UnsetType = msgspec.UNSET
    header: bool | msgspec.UnsetType = msgspec.UNSET
    columns: list[DeclaredColumnIn] | msgspec.UnsetType = msgspec.UNSET
    on_error: Literal["fail", "skip"] | msgspec.UnsetType = msgspec.UNSET


class ColumnOut(msgspec.Struct):
    name: str
    type: ColumnType
    variable_type: VariableType
    display_name: str | None


class TableOut(msgspec.Struct):
    """A table; ``version`` and what follows are None while it has no data (``saving``, ``error``)."""

    id: str
    name: str
    description: str
    owner_id: str
    status: AssetStatus
    error: str | None
    latest_version: int
    created_at: datetime
    updated_at: datetime
    version: int | None
    row_count: int | None
    bytes: int | None
    columns: list[ColumnOut] | None
    stats: Literal["pending", "done", "error"] | None
    stats_error: str | None
    source: dict[str, Any] | None

    @classmethod
    def from_view(cls, view: TableView) -> "TableOut":
        content = view.content
        return cls(
            **_asset_fields(view.asset),
            version=None if view.version is None else view.version.version,
            row_count=None if content is None else content.row_count,
            bytes=None if content is None else content.bytes,
            columns=None
            if content is None
            else [ColumnOut(c.name, c.type, c.variable_type, c.display_name) for c in content.schema],
            stats=view.stats,
            stats_error=view.stats_error,
            source=None if content is None else dict(content.source),
        )


class TableSummaryOut(msgspec.Struct):
    id: str
    name: str
    description: str
    owner_id: str
    status: AssetStatus
    error: str | None
    latest_version: int
    created_at: datetime
    updated_at: datetime


class TablePageOut(msgspec.Struct):
    items: list[TableSummaryOut]
    next_cursor: str | None


class TableJobOut(msgspec.Struct):
    """The job writing the table: follow it at ``/api/v1/jobs/{id}``."""

    id: str
    type: str
    status: str
    submitted_at: datetime

    @classmethod
    def from_domain(cls, job: Job) -> "TableJobOut":
        return cls(id=job.id, type=job.type, status=job.status.value, submitted_at=job.submitted_at)


class TableCreatedOut(msgspec.Struct):
    table: TableOut
    job: TableJobOut


class ColumnPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """One column's display name (``""`` clears it) and/or variable type."""

    name: str
    display_name: Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH)] | msgspec.UnsetType = msgspec.UNSET
    variable_type: VariableType | msgspec.UnsetType = msgspec.UNSET


class TablePatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only what is given changes; column changes make a new version (same data)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    columns: list[ColumnPatch] | msgspec.UnsetType = msgspec.UNSET


class TableCopyIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """The copy's name (default: ``<name> (copy)``)."""

    name: Name | msgspec.UnsetType = msgspec.UNSET


class TableController(Controller):
    path = "/tables"
    tags = ["tables"]

    @post("/", operation_id="CreateTable", status_code=202, responses=problems(404, 409))
    async def create_table(
        self,
        data: JSONBody[TableIn],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
    ) -> TableCreatedOut:
        """Import an uploaded file (``file``), or save a query's result (``sql``), as a new table:
        202 with the table (``saving``) and its ``tables.import`` / ``tables.sql`` job. A bad option
        or refused SQL is a 422 naming it, before anything is created; 409 if you have a table of
        that name."""
        if isinstance(data.file, str) and isinstance(data.sql, str):
            await table_service.readable_file(principal, data.file)  # a file that is not there: 404
            raise InvalidInput("give either file or sql, not both", field="sql")
        if isinstance(data.sql, str):
            asset, job = await table_service.derive(
                principal, name=data.name, sql=data.sql, description=data.description
            )
            view = TableView(asset=asset, version=None, content=None, stats=None)
            return TableCreatedOut(table=TableOut.from_view(view), job=TableJobOut.from_domain(job))
        if not isinstance(data.file, str):
            raise InvalidInput("give either file (an uploaded file's id) or sql", field="file")
        given = msgspec.structs.asdict(data)
        options = {k: msgspec.to_builtins(given[k]) for k in _OPTIONS if given[k] is not msgspec.UNSET}
        asset, job = await table_service.import_file(
            principal, name=data.name, file_id=data.file, options=options, description=data.description
        )
        view = TableView(asset=asset, version=None, content=None, stats=None)
        return TableCreatedOut(table=TableOut.from_view(view), job=TableJobOut.from_domain(job))

    @get("/", operation_id="ListTables")
    async def list_tables(
        self,
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")] = None,
    ) -> TablePageOut:
        """Your tables, newest first; pass ``next_cursor`` back as ``cursor``."""
        page, next_cursor = await keyset_page(
            lambda size, after: table_service.list(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda asset: asset.id,
        )
        return TablePageOut([TableSummaryOut(**_asset_fields(a)) for a in page], next_cursor=next_cursor)

    @get("/{table_id:str}", operation_id="GetTable")
    async def get_table(
        self,
        table_id: FromPath[str],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        version: Version = None,
    ) -> TableOut:
        """The table: schema, row count, version, statistics status."""
        return TableOut.from_view(await table_service.get(principal, table_id, version))

    @get("/{table_id:str}/rows", operation_id="GetTableRows", responses=problems(409))
    async def rows(
        self,
        table_id: FromPath[str],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        version: Version = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=4096)] = None,
        order: Annotated[str | None, QueryParameter(max_length=600)] = None,
        columns: FromQuery[list[str] | None] = None,
        filter: Annotated[str | None, QueryParameter(max_length=10_000)] = None,
    ) -> RowsOut:
        """A page of rows. ``order``: ``column`` or ``column:asc|desc``; ``columns`` (repeated)
        picks them; ``filter``: see the module doc. Pass ``next_cursor`` back as ``cursor``."""
        page = await table_service.rows(
            principal,
            table_id,
            version=version,
            limit=limit,
            cursor=cursor,
            order=order,
            columns=columns,
            filter=filter,
        )
        return RowsOut(columns=list(page.columns), rows=list(page.rows), next_cursor=page.next_cursor)

    @get("/{table_id:str}/values", operation_id="GetTableValues", responses=problems(400, 409))
    async def values(
        self,
        table_id: FromPath[str],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        column: Annotated[str, QueryParameter(max_length=MAX_NAME_LENGTH)],
        q: Annotated[str | None, QueryParameter(max_length=1000)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 50,
        version: Version = None,
    ) -> ValuesOut:
        """A column's most frequent values (those containing ``q``, ignoring case)."""
        found = await table_service.values(principal, table_id, column, version=version, q=q, limit=limit)
        return ValuesOut(
            column=found.column,
            values=[ValueCountOut(v.value, v.count) for v in found.values],
            approximate=found.approximate,
            max_error=found.max_error,
        )

    @get("/{table_id:str}/stats", operation_id="GetTableStats", responses=problems(409))
    async def stats(
        self,
        table_id: FromPath[str],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        version: Version = None,
    ) -> StatsOut:
        """Per-column statistics; ``status`` ``pending`` while the import job computes them."""
        status, stats, error = await table_service.stats(principal, table_id, version=version)
        if stats is None:
            return StatsOut(status=status, rows=None, columns=None, error=error)
        return StatsOut(status=status, rows=stats["rows"], columns=stats["columns"], error=None)

    @get("/{table_id:str}/export", operation_id="ExportTable", responses=problems(409))
    async def export(
        self,
        table_id: FromPath[str],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
        format: FromQuery[Literal["csv", "parquet"]] = "csv",
        version: Version = None,
    ) -> Stream:
        """The table as one CSV (header, RFC 4180) or Parquet (zstd) file, streamed."""
        filename, media_type, chunks = await table_service.export(
            principal, table_id, format, version=version
        )
        return Stream(
            chunks,
            headers={
                "content-type": media_type,
                "content-disposition": _attachment(filename),
                "x-content-type-options": "nosniff",
            },
        )

    @patch("/{table_id:str}", operation_id="UpdateTable", responses=problems(403, 409))
    async def update_table(
        self,
        table_id: FromPath[str],
        data: JSONBody[TablePatch],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
    ) -> TableOut:
        """Rename, describe, or change columns' display names and variable types (a new version
        with the same data; the statistics follow the new variable types at once)."""
        columns = [
            ColumnChange(
                name=c.name,
                display_name=None if c.display_name is msgspec.UNSET else c.display_name,
                variable_type=None if c.variable_type is msgspec.UNSET else c.variable_type,
            )
            for c in ([] if data.columns is msgspec.UNSET else data.columns)
        ]
        view = await table_service.update(
            principal,
            table_id,
            name=None if data.name is msgspec.UNSET else data.name,
            description=None if data.description is msgspec.UNSET else data.description,
            columns=columns,
        )
        return TableOut.from_view(view)

    @post("/{table_id:str}/copy", operation_id="CopyTable", status_code=201, responses=problems(409))
    async def copy_table(
        self,
        table_id: FromPath[str],
        data: JSONBody[TableCopyIn],
        principal: NamedDependency[Principal],
        table_service: NamedDependency[TableService],
    ) -> TableOut:
        """A new table with the latest version's data and a lineage edge from this one; send
        ``{}`` for the default name. 409 if this one has no data or the name is taken."""
        name = None if data.name is msgspec.UNSET else data.name
        copy = await table_service.copy(principal, table_id, name=name)
        return TableOut.from_view(await table_service.get(principal, copy.id))


def provide_table_service(request: Request[Any, Any, Any]) -> TableService:
    """The ``table_service`` dependency: the container's TableService."""
    service: TableService = request.app.state.container.tables
    return service


def _asset_fields(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "name": asset.name,
        "description": asset.description,
        "owner_id": asset.owner_id,
        "status": asset.status,
        "error": asset.error,
        "latest_version": asset.latest_version,
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
    }


def _attachment(name: str) -> str:
    """A Content-Disposition for ``name``: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
