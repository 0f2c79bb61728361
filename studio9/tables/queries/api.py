"""HTTP route of read-only SQL: ``POST /api/v1/sql/preview``, the first rows of a query at once.

Tables are named ``"username/name"`` or by id, in double quotes, and only the caller's own
(admins: anyone's) resolve; any other name is a 404 naming it, whether it exists or not. One
SELECT (or WITH, VALUES…) statement only: anything that writes, attaches or reads a file is a
422 naming ``sql``, as is a query over its time or memory limit
(``studio9.tables.sql_limits``). A whole result becomes a table through ``POST
/api/v1/tables`` ``{name, sql}`` (the ``tables.sql`` job).
"""

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from studio9.auth.domain import Principal
from studio9.tables.queries.service import SqlService
from studio9.tables.sql_limits import DEFAULT_PREVIEW_ROWS, MAX_PREVIEW_ROWS
from studio9.web.responses import problems

#: Longer text is not a query someone typed.
MAX_SQL_LENGTH: Final = 100_000

Sql = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_SQL_LENGTH)]


class PreviewIn(msgspec.Struct, forbid_unknown_fields=True):
    """One read-only statement over tables named ``"username/name"`` or by id."""

    sql: Sql
    limit: Annotated[int, msgspec.Meta(ge=0, le=MAX_PREVIEW_ROWS)] = DEFAULT_PREVIEW_ROWS


class ColumnOut(msgspec.Struct):
    """A result column: its name and its SQL type (``BIGINT``, ``VARCHAR``, ``DECIMAL(18,3)``…)."""

    name: str
    type: str


class PreviewOut(msgspec.Struct):
    """The first rows, each a list in the order of ``columns``; ``truncated`` when there were more."""

    columns: list[ColumnOut]
    rows: list[list[Any]]
    truncated: bool


class SqlController(Controller):
    path = "/sql"
    tags = ["sql"]

    @post(
        "/preview",
        operation_id="PreviewSql",
        status_code=200,
        responses=problems(404, 409),
        opt={"read_only": True},
    )
    async def preview(
        self,
        data: JSONBody[PreviewIn],
        principal: NamedDependency[Principal],
        sql_service: NamedDependency[SqlService],
    ) -> PreviewOut:
        """Run one read-only query and answer its first ``limit`` rows. 404: a table name the
        caller has no table of; 409: a table still being written or whose import failed."""
        result = await sql_service.preview(principal, data.sql, limit=data.limit)
        return PreviewOut(
            columns=[ColumnOut(name=c.name, type=c.type) for c in result.columns],
            rows=[list(row) for row in result.rows],
            truncated=result.truncated,
        )


def provide_sql_service(request: Request[Any, Any, Any]) -> SqlService:
    """The ``sql_service`` dependency: the container's SqlService."""
    service: SqlService = request.app.state.container.sql
    return service
