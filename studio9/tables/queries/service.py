"""Previews of read-only SQL: resolve the tables a query names as the caller, then run it on the
locked-down DuckDB engine (``studio9.tables.sql``) in a worker thread.

Limits: ``studio9.tables.sql_limits``.
"""

from __future__ import annotations

import functools

import anyio.to_thread
import attrs

from studio9.auth.domain import Principal
from studio9.errors import InvalidInput
from studio9.tables.resolving import TableResolver
from studio9.tables.sql import QueryResult, run_query
from studio9.tables.sql_databases import Databases
from studio9.tables.sql_limits import DEFAULT_PREVIEW_ROWS, SqlLimits


@attrs.define
class SqlService:
    """Runs previews; built by the composition root with the context's ``TableResolver`` and
    the process's ``Databases`` (without them, each preview opens its own database)."""

    tables: TableResolver
    limits: SqlLimits = attrs.field(factory=SqlLimits)
    databases: Databases | None = None

    async def preview(self, actor: Principal, sql: str, *, limit: int = DEFAULT_PREVIEW_ROWS) -> QueryResult:
        """The first ``limit`` rows of ``sql`` over the tables ``actor`` may read.

        Raises:
            InvalidInput: bad or refused SQL, a bad limit, or a query over its time or memory
                limit (``QueryLimitExceeded``), each naming the field.
            UnknownTable: a name the actor has no table of (404).
            TableNotReadable: a named table has no readable version (409).
        """
        if not 0 <= limit <= self.limits.max_rows:
            raise InvalidInput(f"limit must be 0 to {self.limits.max_rows}", field="limit")
        async with self.tables.resolve(actor, sql) as resolved:
            run = functools.partial(
                run_query,
                sql,
                resolved.sources,
                limit=limit,
                timeout_s=self.limits.preview_timeout_s,
                memory_limit=self.limits.preview_memory,
                threads=self.limits.threads,
                databases=self.databases,
            )
            # Not abandoned on cancellation: the thread holds the local copies of the parts,
            # which the resolver removes once the query has stopped (the deadline stops it).
            return await anyio.to_thread.run_sync(run)
