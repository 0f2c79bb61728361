"""Read-only SQL over tables: DuckDB on a connection locked down to the tables a query names.

``run_query`` answers a preview (the first ``limit`` rows, at once); ``query_to_parquet``
streams the whole result into one Parquet file (zstd) for a derived table. Both take the
query and the mapping of every table name the caller resolved (through its access check) to
that table's Parquet parts on local disk, and nothing else: there is no catalog here.

How users name tables: by ``owner/name`` or by table id, written as a double-quoted SQL
identifier (``SELECT * FROM "alice/sales" JOIN "01JB8X…" USING (id)``); the ``/`` and the
leading digit of ids make the quotes necessary. A quote inside a name is doubled. DuckDB
matches identifiers case-insensitively, so two names differing only in case cannot be read
together. ``referenced_tables(sql)`` gives the names as written, so the caller resolves only
those and answers an unknown one with ``UnknownTable`` (404).

Each call runs on a new in-memory DuckDB database of its own, so memory, threads and file
access are per query, and locks it before any user SQL is parsed, bound or run:

1. ``allowed_paths`` = exactly the Parquet parts of the mapped tables (not their
   directories: a sibling file, another version's part or another owner's table in the same
   directory stays unreadable; ``glob`` of the directory is refused);
2. ``enable_external_access=false`` (no other file, no network, no extension loading);
3. ``lock_configuration=true``, so the query cannot ``SET`` any of it back;
4. set at connect: ``memory_limit``, ``threads``, no extension auto-install/auto-load, no
   community extensions, no Python replacement scans (a Python variable in scope is never a
   table), and no spilling unless the caller gives a private ``spill_dir``.

Given ``databases`` (``studio9.tables.sql_databases.Databases``), the database was opened ahead
of demand, unlocked and unused, and is closed in the background once the call is done; it
never serves a second query. Names are then parsed on its shared parse-only database, locked
with no file readable. Without it, each call opens and closes its own.

Then each name becomes a VIEW over ``read_parquet([...its parts])``; the database caches the
parts' footers (``parquet_metadata_cache``, per database), so binding the views and running the
query read them once. Only one statement of
type SELECT is run (``SELECT``, ``WITH``, ``FROM …``, ``VALUES``, ``DESCRIBE``,
``SUMMARIZE``, ``PIVOT … IN (…)``); anything else is refused before it reaches the engine.
There is no statement timeout in DuckDB, so a watchdog thread calls ``interrupt()`` once
``timeout_s`` has passed (and again until the query has stopped, in case the first call
landed before the query had started).

What a query can still see: the absolute paths of the parts of the tables it names
(``duckdb_settings()``, ``duckdb_views()``), i.e. where those tables' blobs live, never data
the caller may not read. Error messages have those paths replaced by the table's name.

Errors: bad SQL (syntax, unknown column or function, a conversion that fails, a refused file
read) → ``InvalidInput`` with DuckDB's message, field ``sql``; an unknown table →
``UnknownTable`` (404); time or memory over its limit → ``QueryLimitExceeded`` (422).
Anything else DuckDB raises (an I/O error on a part, an internal error) is a server fault and
propagates unchanged.

Not yet: Parquet parts in S3. The httpfs extension cannot be installed here; those tables
will be registered as pyarrow ``S3FileSystem`` datasets instead of ``read_parquet`` views.

The module imports duckdb and pyarrow inside the functions, so importing it (as the HTTP
routes do at start-up) loads neither. Every call blocks: run it in a worker thread.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from attrs import field, frozen

from studio9.errors import InvalidInput, NotFound
from studio9.tables.sql_checks import (
    distinct_names,
    first_paragraph,
    single_select,
    table_names,
    unique_columns,
)
from studio9.tables.sql_databases import (
    PARSER_MEMORY,
    PARSER_THREADS,
    Databases,
    lock,
    open_database,
)

if TYPE_CHECKING:
    import duckdb

#: Rows per Arrow batch, and so per Parquet row group, of a derived table.
ROWS_PER_GROUP = 1 << 18
# After the deadline, how often the watchdog repeats interrupt() until the query stops.
_INTERRUPT_EVERY_S = 0.05


def _absolute_parts(parts: Any) -> tuple[Path, ...]:
    return tuple(Path(p).absolute() for p in parts)


@frozen
class TableSource:
    """Where one table's rows are: its Parquet part files on local disk (at least one)."""

    parts: tuple[Path, ...] = field(converter=_absolute_parts)

    @parts.validator
    def _has_parts(self, _attribute: Any, value: tuple[Path, ...]) -> None:
        if not value:
            raise ValueError("a table source needs at least one Parquet part")


@frozen
class Column:
    """A result column: its name and its DuckDB type (``BIGINT``, ``VARCHAR``, ``DECIMAL(18,3)``)."""

    name: str
    type: str


@frozen
class QueryResult:
    """The first rows of a query; ``truncated`` when it had more than the limit."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool


class Written(NamedTuple):
    """What ``query_to_parquet`` wrote: the Arrow schema of the file and its row count."""

    schema: Any  # pyarrow.Schema
    row_count: int


class UnknownTable(NotFound):
    """The query names a table the caller has none of (or may not read)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f'no table named "{name}": name tables as "owner/name" or by id, in double quotes',
            field="sql",
            table=name,
        )


class QueryLimitExceeded(InvalidInput):
    """The query ran longer, or needed more memory, than its limit allows."""


def referenced_tables(sql: str, databases: Databases | None = None) -> set[str]:
    """The table names ``sql`` reads, as written (CTE names excluded); refuses what ``run_query`` would.

    Parsing only: nothing is bound or run, and no file is touched; on the shared parser of
    ``databases`` when given, else on a database of its own.
    """
    parsing = (
        databases.parser() if databases is not None else _locked([], PARSER_MEMORY, PARSER_THREADS, None)
    )
    with parsing as con:
        statement = single_select(con, sql)
        return table_names(con, statement.query)


def run_query(
    sql: str,
    tables: Mapping[str, TableSource],
    *,
    limit: int,
    timeout_s: float,
    memory_limit: str,
    threads: int,
    spill_dir: Path | None = None,
    databases: Databases | None = None,
) -> QueryResult:
    """The first ``limit`` rows of ``sql`` over ``tables`` (name → parts), and whether there were more.

    The database comes from ``databases`` (opened ahead, closed afterwards in the background)
    when given, else is opened and closed by this call.
    """
    if limit < 0:
        raise InvalidInput("limit must be 0 or more", field="limit")
    with _session(sql, tables, memory_limit, threads, spill_dir, databases) as (con, statement):
        with _deadline(con, timeout_s, memory_limit):
            con.execute(statement)  # streams: only the rows fetched are computed
            columns = tuple(Column(name, str(kind)) for name, kind, *_ in con.description or ())
            rows = con.fetchmany(limit + 1)
        return QueryResult(columns, tuple(rows[:limit]), truncated=len(rows) > limit)


def query_to_parquet(
    sql: str,
    tables: Mapping[str, TableSource],
    dest: Path,
    *,
    timeout_s: float,
    memory_limit: str,
    threads: int,
    spill_dir: Path | None = None,
    databases: Databases | None = None,
) -> Written:
    """Write the whole result of ``sql`` to ``dest`` as Parquet (zstd), streamed batch by batch.

    The file appears at ``dest`` only once complete: it is written beside it and renamed, and
    removed on any failure, so a failed query leaves nothing half-written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from studio9.tables.conversion import storable_schema, stored_batch

    partial = dest.with_name(dest.name + ".partial")
    try:
        with (
            _session(sql, tables, memory_limit, threads, spill_dir, databases) as (con, statement),
            _deadline(con, timeout_s, memory_limit),
        ):
            relation = con.sql(statement)
            unique_columns(relation.columns)
            reader = relation.to_arrow_reader(ROWS_PER_GROUP)
            schema = storable_schema(reader.schema)
            try:
                writer = pq.ParquetWriter(partial, schema, compression="zstd")
            except pa.ArrowNotImplementedError as exc:
                raise InvalidInput(
                    f"a table cannot store this result ({exc}); cast the column to another type",
                    field="sql",
                ) from exc
            rows = 0
            with writer:
                for batch in reader:
                    writer.write_batch(stored_batch(batch, schema))
                    rows += batch.num_rows
        os.replace(partial, dest)
    finally:
        partial.unlink(missing_ok=True)
    return Written(schema, rows)


# --- the locked session --------------------------------------------------------------------------------

#: Replaces the tables' part paths in an error message by the tables' names.
Scrub = Callable[[str], str]


@contextmanager
def _session(
    sql: str,
    tables: Mapping[str, TableSource],
    memory_limit: str,
    threads: int,
    spill_dir: Path | None,
    databases: Databases | None,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, duckdb.Statement]]:
    """A locked connection with one view per table, and the checked statement.

    DuckDB errors the query is at fault for, raised here or in the body, leave as ``InvalidInput``.
    """
    distinct_names(tables)
    paths = {str(p): name for name, source in tables.items() for p in source.parts}
    scrub = _scrubber(paths)
    with (
        _locked(list(paths), memory_limit, threads, spill_dir, databases) as con,
        _user_errors(scrub),
    ):
        statement = single_select(con, sql)
        known = {name.casefold() for name in tables}
        for name in sorted(table_names(con, statement.query)):
            if name.casefold() not in known:
                raise UnknownTable(name)
        for name, source in tables.items():
            # The relation API takes the paths and the view name as values: no SQL is built here.
            con.read_parquet([str(p) for p in source.parts]).create_view(name, replace=False)
        yield con, statement


@contextmanager
def _locked(
    allowed: list[str],
    memory_limit: str,
    threads: int,
    spill_dir: Path | None,
    databases: Databases | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new database (ready in ``databases`` when given) locked to the files ``allowed``."""
    con = (
        databases.take(memory_limit, threads, spill_dir)
        if databases is not None
        else open_database(memory_limit, threads, spill_dir)
    )
    try:
        lock(con, allowed)
        yield con
    finally:
        if databases is not None:
            databases.retire(con)
        else:
            con.close()


# --- limits and errors ---------------------------------------------------------------------------------


@contextmanager
def _deadline(con: duckdb.DuckDBPyConnection, timeout_s: float, memory_limit: str) -> Iterator[None]:
    """Interrupt the query after ``timeout_s``; turn the interruption and out-of-memory into limits."""
    import duckdb

    done, expired = threading.Event(), threading.Event()

    def watch() -> None:
        if done.wait(timeout_s):
            return
        expired.set()
        while True:  # a call that lands before the query starts is lost, so repeat until it stops
            con.interrupt()
            if done.wait(_INTERRUPT_EVERY_S):
                return

    watchdog = threading.Thread(target=watch, name="sql-deadline", daemon=True)
    watchdog.start()
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise QueryLimitExceeded(
            f"the query needs more memory than its limit of {memory_limit}; "
            "read fewer columns or rows, or aggregate earlier",
            field="sql",
            limit="memory",
        ) from exc
    except Exception as exc:
        # The interruption surfaces as DuckDB's InterruptException, or as an OSError from the
        # Arrow reader when it happens while batches are streamed.
        if expired.is_set() and isinstance(exc, duckdb.InterruptException | OSError):
            raise QueryLimitExceeded(
                f"the query ran longer than its limit of {timeout_s:g} s", field="sql", limit="time"
            ) from exc
        raise
    finally:
        done.set()
        watchdog.join()


@contextmanager
def _user_errors(scrub: Scrub) -> Iterator[None]:
    """DuckDB errors the query is at fault for → ``InvalidInput`` / ``UnknownTable``."""
    import duckdb

    try:
        yield
    except (
        duckdb.ProgrammingError,  # parser, binder, catalog, invalid input
        duckdb.DataError,  # conversion, out of range, type mismatch
        duckdb.NotSupportedError,
        duckdb.PermissionException,  # a file outside the tables
    ) as exc:
        message = scrub(first_paragraph(str(exc)))
        if isinstance(exc, duckdb.CatalogException) and (missing := _MISSING_TABLE.search(message)):
            raise UnknownTable(missing.group(1)) from exc
        raise InvalidInput(message, field="sql") from exc


_MISSING_TABLE = re.compile(r"^Catalog Error: Table with name (.+?) does not exist!")


def _scrubber(paths: Mapping[str, str]) -> Scrub:
    # Longest first, so a path that contains another is replaced whole.
    ordered = sorted(paths.items(), key=lambda item: -len(item[0]))

    def scrub(message: str) -> str:
        for path, name in ordered:
            message = message.replace(path, f'<a part of "{name}">')
        return message

    return scrub
