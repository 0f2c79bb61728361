"""Databases opened ahead of demand (``studio9.tables.sql_databases``) and queries run on them.

A pooled database must be as locked as one opened per query: the lock-down checks of
``test_table_sql`` are repeated here through ``Databases``, with the same controls (the file is
readable by an open DuckDB). Each database serves one query, and is closed afterwards.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio9.errors import InvalidInput
from studio9.tables.sql import TableSource, UnknownTable, query_to_parquet, referenced_tables, run_query
from studio9.tables.sql_databases import Databases

MEMORY, THREADS = "256MB", 2
LIMITS: dict[str, Any] = {"timeout_s": 20.0, "memory_limit": MEMORY, "threads": THREADS}


@pytest.fixture
def databases() -> Any:
    pool = Databases(memory_limit=MEMORY, threads=THREADS)
    yield pool
    pool.close()


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """One table of two parts, a sibling file beside them and a file elsewhere."""
    parts = []
    for i, values in enumerate(([1, 2], [3])):
        path = tmp_path / "tables" / "t" / f"part-{i}.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table({"x": values}), path)
        parts.append(path)
    sibling = tmp_path / "tables" / "t" / "other.parquet"
    pq.write_table(pa.table({"secret": ["sibling"]}), sibling)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("secret\noutside\n")
    return {"tables": {"alice/t": TableSource(parts)}, "sibling": sibling, "outside": outside}


def _ready(databases: Databases, count: int) -> None:
    deadline = time.monotonic() + 10
    while databases.available < count:  # the background thread opens them
        assert time.monotonic() < deadline, "the pool did not fill"
        time.sleep(0.01)


def test_a_pooled_query_answers_as_an_unpooled_one(store: dict[str, Any], databases: Databases) -> None:
    sql = 'SELECT sum(x) AS total, count(*) AS n FROM "alice/t"'
    for _ in range(4):  # the first opens its own; the next ones find ready databases
        result = run_query(sql, store["tables"], limit=10, databases=databases, **LIMITS)
        assert result.rows == ((6, 3),)
    assert result == run_query(sql, store["tables"], limit=10, **LIMITS)


def test_each_database_serves_one_query_and_is_closed_after(databases: Databases) -> None:
    first = databases.take(MEMORY, THREADS, None)  # opened at once: none is ready yet
    databases.retire(first)
    _ready(databases, databases.size)
    taken = [databases.take(MEMORY, THREADS, None) for _ in range(databases.size)]
    assert len({id(con) for con in [first, *taken]}) == 1 + databases.size
    time.sleep(0.2)
    assert databases.available == 0  # none is opened while queries run
    for con in taken:
        con.execute("SELECT 1")
        databases.retire(con)
    deadline = time.monotonic() + 10
    for con in [first, *taken]:
        while True:
            try:
                con.execute("SELECT 1")
            except duckdb.ConnectionException:
                break  # closed
            assert time.monotonic() < deadline, "a retired database stayed open"
            time.sleep(0.01)
    _ready(databases, databases.size)  # refilled once the queries are done


@pytest.mark.parametrize(
    ("memory", "threads", "spill", "setting", "value"),
    [
        ("128MB", THREADS, False, "memory_limit", "122.0 MiB"),
        (MEMORY, 1, False, "threads", 1),
        (MEMORY, THREADS, True, "temp_directory", "spill"),
    ],
)
def test_other_limits_or_a_spill_directory_get_a_database_of_their_own(
    databases: Databases, tmp_path: Path, memory: str, threads: int, spill: bool, setting: str, value: Any
) -> None:
    databases.retire(databases.take(MEMORY, THREADS, None))
    _ready(databases, databases.size)
    con = databases.take(memory, threads, tmp_path / "spill" if spill else None)
    assert databases.available == databases.size  # none of the ready ones was taken
    got = con.execute(f"SELECT current_setting('{setting}')").fetchone()
    assert got == (str(tmp_path / "spill") if spill else value,)
    databases.retire(con)


def test_a_pooled_database_is_locked(store: dict[str, Any], databases: Databases) -> None:
    sql = (
        "SELECT current_setting('lock_configuration'), current_setting('enable_external_access'), "
        "current_setting('allowed_paths'), current_setting('memory_limit'), "
        "current_setting('python_enable_replacements'), current_setting('autoload_known_extensions')"
    )
    databases.retire(databases.take(MEMORY, THREADS, None))
    _ready(databases, databases.size)  # so the query runs on a database opened ahead
    (row,) = run_query(sql, store["tables"], limit=1, databases=databases, **LIMITS).rows
    parts = sorted(str(p) for p in store["tables"]["alice/t"].parts)
    assert (row[0], row[1], sorted(row[2]), row[3], row[4], row[5]) == (
        True,
        False,
        parts,
        "244.1 MiB",
        False,
        False,
    )


@pytest.mark.parametrize(
    ("function", "path"),
    [
        ("read_csv", "/etc/passwd"),
        ("read_text", "/etc/passwd"),
        ("glob", "/*"),
        ("read_csv", "{outside}"),
        ("read_parquet", "{sibling}"),
    ],
)
def test_reading_files_is_refused_on_a_pooled_database(
    store: dict[str, Any], databases: Databases, function: str, path: str
) -> None:
    path = path.format(**store)
    sql = f"SELECT * FROM {function}('{path}')"
    assert duckdb.connect().execute(sql).fetchall()  # control: an open DuckDB reads it
    databases.retire(databases.take(MEMORY, THREADS, None))
    _ready(databases, databases.size)
    for _ in range(2):  # a ready database, then one that served nothing before either
        with pytest.raises(InvalidInput, match="Permission Error: Cannot access file"):
            run_query(sql, store["tables"], limit=5, databases=databases, **LIMITS)


@pytest.mark.parametrize(
    "sql", ["SET enable_external_access = true", 'DROP VIEW "alice/t"', "ATTACH 'x.db' AS x"]
)
def test_only_select_runs_on_a_pooled_database(
    store: dict[str, Any], databases: Databases, sql: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="only a SELECT"):
        run_query(sql, store["tables"], limit=5, databases=databases, **LIMITS)
    assert not (tmp_path / "x.db").exists()


def test_the_parser_reads_names_and_no_file(databases: Databases, store: dict[str, Any]) -> None:
    assert referenced_tables('SELECT * FROM "alice/t" JOIN "bob/u" USING (x)', databases) == {
        "alice/t",
        "bob/u",
    }
    with pytest.raises(InvalidInput, match="only a SELECT"):
        referenced_tables("COPY (SELECT 1) TO 'out.csv'", databases)
    with databases.parser() as con:
        assert con.execute("SELECT current_setting('lock_configuration')").fetchone() == (True,)
        assert con.execute("SELECT current_setting('allowed_paths')").fetchone() == ([],)
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_csv('{store['outside']}')").fetchall()


def test_an_unknown_table_is_not_found_on_a_pooled_database(
    store: dict[str, Any], databases: Databases
) -> None:
    with pytest.raises(UnknownTable, match="bob/u"):
        run_query('SELECT * FROM "bob/u"', store["tables"], limit=5, databases=databases, **LIMITS)


def test_a_derive_runs_on_a_pooled_database_too(
    store: dict[str, Any], databases: Databases, tmp_path: Path
) -> None:
    dest = tmp_path / "out.parquet"
    written = query_to_parquet(
        'SELECT x * 2 AS y FROM "alice/t" ORDER BY y', store["tables"], dest, databases=databases, **LIMITS
    )
    assert written.row_count == 3
    assert pq.read_table(dest).column("y").to_pylist() == [2, 4, 6]


def test_close_closes_what_it_holds_and_later_queries_still_run(
    store: dict[str, Any], databases: Databases
) -> None:
    databases.retire(databases.take(MEMORY, THREADS, None))
    _ready(databases, databases.size)
    held = list(databases._ready)  # the ready databases themselves
    databases.close()
    for con in held:
        with pytest.raises(duckdb.ConnectionException):
            con.execute("SELECT 1")
    result = run_query(
        'SELECT count(*) FROM "alice/t"', store["tables"], limit=1, databases=databases, **LIMITS
    )
    assert result.rows == ((3,),)
    with pytest.raises(RuntimeError, match="closed"):
        referenced_tables("SELECT 1", databases)


def test_queries_at_once_from_many_threads(store: dict[str, Any], databases: Databases) -> None:
    def preview(i: int) -> tuple[tuple[Any, ...], ...]:
        return run_query(
            f'SELECT sum(x) + {i} FROM "alice/t"', store["tables"], limit=1, databases=databases, **LIMITS
        ).rows

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(preview, range(24)))
    assert answers == [((6 + i,),) for i in range(24)]
    _ready(databases, databases.size)  # every database taken was retired: the pool refills
