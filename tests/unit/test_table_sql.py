"""Read-only SQL over tables (``studio9.tables.sql``): results, refusals, the lock-down and the limits.

Tables are small Parquet files written with pyarrow in ``tmp_path``; expected results come
from plain Python over the same rows. Every refusal is checked against a control that shows
the same thing succeeds without the guard (the file exists and is readable, the statement is
valid SQL), so a test fails if the guard goes missing rather than passing for another reason.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio9.api.problems import status_of
from studio9.errors import InvalidInput
from studio9.tables.sql import (
    QueryLimitExceeded,
    TableSource,
    UnknownTable,
    _locked,
    query_to_parquet,
    referenced_tables,
    run_query,
)

LIMITS: dict[str, Any] = {"timeout_s": 20.0, "memory_limit": "256MB", "threads": 2}
TABLE_ID = "01JB8XQ3Z6S7V4W2Y9K1M5N0PR"
SALES = [  # (customer_id, region, amount)
    (1, "north", 10),
    (2, "south", 5),
    (1, "north", 7),
    (3, "east", 1),
    (2, "south", 8),
    (3, "west", 4),
]
CUSTOMERS = [(1, "Ada"), (2, "Bo"), (3, "Cy")]


def _write(path: Path, rows: dict[str, list[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """Two tables (sales in two parts), a sibling file beside sales' parts, and files outside."""
    root = tmp_path / "tables"
    halves = (SALES[:3], SALES[3:])
    sales_parts = [
        _write(
            root / "sales" / f"part-{i}.parquet",
            {
                "customer_id": [r[0] for r in half],
                "region": [r[1] for r in half],
                "amount": [r[2] for r in half],
            },
        )
        for i, half in enumerate(halves)
    ]
    customers = _write(
        root / "customers" / "part-0.parquet",
        {"id": [c[0] for c in CUSTOMERS], "name": [c[1] for c in CUSTOMERS]},
    )
    sibling = _write(root / "sales" / "other-version.parquet", {"secret": ["sibling"]})
    outside = _write(tmp_path / "elsewhere" / "secret.parquet", {"secret": ["outside"]})
    (tmp_path / "elsewhere" / "secret.csv").write_text("secret\noutside-csv\n")
    return {
        "tables": {
            "alice/sales": TableSource(sales_parts),
            "alice/customers": TableSource([customers]),
        },
        "sibling": sibling,
        "outside": outside,
        "outside_csv": tmp_path / "elsewhere" / "secret.csv",
        "root": root,
        "tmp": tmp_path,
    }


# --- results ---------------------------------------------------------------------------------------------


def test_a_join_with_aggregation_over_two_views(store: dict[str, Any]) -> None:
    result = run_query(
        'SELECT c.name, count(*) AS n, sum(s.amount) AS total FROM "alice/sales" s '
        'JOIN "alice/customers" c ON s.customer_id = c.id GROUP BY c.name ORDER BY c.name',
        store["tables"],
        limit=100,
        **LIMITS,
    )
    names = dict(CUSTOMERS)
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for customer, _region, amount in SALES:
        totals[names[customer]][0] += 1
        totals[names[customer]][1] += amount
    assert result.rows == tuple((name, n, total) for name, (n, total) in sorted(totals.items()))
    assert [(c.name, c.type) for c in result.columns] == [
        ("name", "VARCHAR"),
        ("n", "BIGINT"),
        ("total", "HUGEINT"),
    ]
    assert result.truncated is False


def test_join_using_and_a_table_named_by_id(store: dict[str, Any]) -> None:
    tables = {TABLE_ID: store["tables"]["alice/sales"], "alice/customers": store["tables"]["alice/customers"]}
    result = run_query(
        f'SELECT name, sum(amount) FROM "{TABLE_ID}" JOIN (SELECT id AS customer_id, name '
        "FROM \"alice/customers\") USING (customer_id) WHERE region = 'south' GROUP BY name",
        tables,
        limit=10,
        **LIMITS,
    )
    assert result.rows == (("Bo", sum(r[2] for r in SALES if r[1] == "south")),)


def test_names_match_whatever_their_case(store: dict[str, Any]) -> None:
    result = run_query('SELECT count(*) FROM "ALICE/Sales"', store["tables"], limit=1, **LIMITS)
    assert result.rows == ((len(SALES),),)


@pytest.mark.parametrize(
    ("limit", "expected", "truncated"), [(0, 0, True), (4, 4, True), (6, 6, False), (50, 6, False)]
)
def test_limit_and_truncated(store: dict[str, Any], limit: int, expected: int, truncated: bool) -> None:
    result = run_query('SELECT * FROM "alice/sales" ORDER BY amount', store["tables"], limit=limit, **LIMITS)
    assert len(result.rows) == expected
    assert result.rows == tuple(sorted(SALES, key=lambda r: r[2])[:limit])
    assert result.truncated is truncated


def test_a_preview_of_a_huge_result_computes_only_what_it_returns() -> None:
    started = time.monotonic()
    result = run_query(
        "SELECT range * 2 AS x FROM range(1000000000000)", {}, limit=5, **LIMITS | {"timeout_s": 10.0}
    )
    assert result.rows == tuple((2 * i,) for i in range(5))
    assert result.truncated is True
    assert time.monotonic() - started < 5


def test_query_to_parquet_writes_a_readable_file(store: dict[str, Any]) -> None:
    dest = store["tmp"] / "out" / "derived.parquet"
    dest.parent.mkdir()
    written = query_to_parquet(
        'SELECT region, sum(amount)::BIGINT AS total FROM "alice/sales" GROUP BY region ORDER BY region',
        store["tables"],
        dest,
        **LIMITS,
    )
    totals: dict[str, int] = defaultdict(int)
    for _customer, region, amount in SALES:
        totals[region] += amount
    table = pq.read_table(dest)
    assert table.to_pylist() == [{"region": r, "total": t} for r, t in sorted(totals.items())]
    assert written.row_count == len(totals)
    assert written.schema.equals(table.schema)
    assert [str(t) for t in table.schema.types] == ["string", "int64"]
    assert pq.ParquetFile(dest).metadata.row_group(0).column(0).compression == "ZSTD"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["derived.parquet"]


def test_query_to_parquet_streams_in_row_groups(tmp_path: Path) -> None:
    dest = tmp_path / "big.parquet"
    written = query_to_parquet("SELECT range AS x FROM range(600000)", {}, dest, **LIMITS)
    assert written.row_count == 600_000
    meta = pq.ParquetFile(dest).metadata
    assert meta.num_rows == 600_000
    assert meta.num_row_groups >= 3  # one per streamed batch, not one for the whole result


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT 1 AS a, 2 AS a", 'two columns named "a"'),
        ("SELECT INTERVAL 1 DAY AS i", "cannot store"),
    ],
)
def test_query_to_parquet_refuses_what_a_table_cannot_hold(tmp_path: Path, sql: str, needle: str) -> None:
    dest = tmp_path / "out.parquet"
    with pytest.raises(InvalidInput, match=needle):
        query_to_parquet(sql, {}, dest, **LIMITS)
    assert list(tmp_path.iterdir()) == []


# --- names --------------------------------------------------------------------------------------------------


def test_referenced_tables_reads_the_names_as_written() -> None:
    sql = (
        'WITH recent AS (SELECT * FROM "alice/sales" WHERE amount > 1) '
        f'SELECT * FROM recent JOIN "Alice/Customers" USING (id) '
        f'WHERE id IN (SELECT id FROM main."{TABLE_ID}") '
        'UNION ALL SELECT * FROM (SELECT * FROM "a""quote") t, LATERAL (SELECT * FROM "bob/x" WHERE k = t.k)'
    )
    assert referenced_tables(sql) == {"alice/sales", "Alice/Customers", TABLE_ID, 'a"quote', "bob/x"}


def test_referenced_tables_refuses_what_run_query_refuses() -> None:
    with pytest.raises(InvalidInput, match="only a SELECT"):
        referenced_tables('DELETE FROM "alice/sales"')
    with pytest.raises(InvalidInput, match="is not a table name"):
        referenced_tables("SELECT * FROM alice.sales")
    with pytest.raises(InvalidInput, match="syntax error"):
        referenced_tables("SELEC 1")


def test_an_unknown_table_is_not_found(store: dict[str, Any]) -> None:
    with pytest.raises(UnknownTable) as caught:
        run_query(
            'SELECT * FROM "alice/sales" JOIN "bob/secret" USING (id)', store["tables"], limit=5, **LIMITS
        )
    assert caught.value.details["table"] == "bob/secret"
    assert '"bob/secret"' in caught.value.message
    assert status_of(caught.value) == 404


def test_a_table_named_only_inside_a_function_is_not_found_either(store: dict[str, Any]) -> None:
    # query_table() hides the name from the parse tree; the engine's "does not exist" is mapped.
    with pytest.raises(UnknownTable, match="bob/secret"):
        run_query("SELECT * FROM query_table('bob/secret')", store["tables"], limit=5, **LIMITS)
    assert run_query(
        "SELECT count(*) FROM query_table('alice/sales')", store["tables"], limit=1, **LIMITS
    ).rows


def test_names_differing_only_in_case_are_refused(store: dict[str, Any]) -> None:
    tables = {
        "alice/sales": store["tables"]["alice/sales"],
        "alice/Sales": store["tables"]["alice/customers"],
    }
    with pytest.raises(InvalidInput, match="differ only in case"):
        run_query('SELECT * FROM "alice/sales"', tables, limit=5, **LIMITS)


# --- refusals -----------------------------------------------------------------------------------------------

REFUSED = {
    "insert": ("INSERT INTO \"alice/sales\" VALUES (9, 'x', 1)", "INSERT"),
    "create": ("CREATE TABLE t AS SELECT 1", "CREATE"),
    "attach": ("ATTACH '{tmp}/other.db' AS other", "ATTACH"),
    "copy": ("COPY (SELECT 1) TO '{tmp}/tables/sales/copied.csv'", "COPY"),
    "pragma": ("PRAGMA version", "PRAGMA"),
    "set": ("SET threads = 8", "SET"),
    "unlock": ("SET enable_external_access = true", "SET"),
    "install": ("INSTALL httpfs", "LOAD"),
    "load": ("LOAD httpfs", "LOAD"),
    "drop": ('DROP VIEW "alice/sales"', "DROP"),
    "explain": ('EXPLAIN SELECT * FROM "alice/sales"', "EXPLAIN"),
    "call": ("CALL pragma_version()", "CALL"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_only_select_statements_run(store: dict[str, Any], case: str) -> None:
    template, kind = REFUSED[case]
    sql = template.format(tmp=store["tmp"])
    duckdb.connect().extract_statements(sql)  # control: valid SQL, refused for what it is
    with pytest.raises(InvalidInput, match=f"only a SELECT.*this is a {kind}") as caught:
        run_query(sql, store["tables"], limit=5, **LIMITS)
    assert caught.value.details["field"] == "sql"
    assert not (store["tmp"] / "other.db").exists()
    assert not (store["root"] / "sales" / "copied.csv").exists()


@pytest.mark.parametrize(
    ("sql", "count"),
    [("SELECT 1; SELECT 2", 2), ('SELECT 1; DROP VIEW "alice/sales"', 2), ("", 0), ("-- nothing", 0)],
)
def test_exactly_one_statement(store: dict[str, Any], sql: str, count: int) -> None:
    with pytest.raises(InvalidInput, match=f"exactly one statement, not {count}"):
        run_query(sql, store["tables"], limit=5, **LIMITS)


@pytest.mark.parametrize(
    ("function", "path"),
    [
        ("read_csv", "/etc/passwd"),
        ("read_text", "/etc/passwd"),
        ("read_blob", "/etc/hostname"),
        ("glob", "/*"),
        ("read_parquet", "{outside}"),
        ("read_csv", "{outside_csv}"),
        ("read_parquet", "{sibling}"),
        ("glob", "{root}/sales/*"),
        ("read_parquet", "{root}/sales/../../elsewhere/secret.parquet"),
        ("read_csv", "https://example.com/data.csv"),
    ],
)
def test_reading_files_is_refused_by_the_lock_down(store: dict[str, Any], function: str, path: str) -> None:
    path = path.format(**store)
    sql = f"SELECT * FROM {function}('{path}')"
    if not path.startswith("https:"):
        assert duckdb.connect().execute(sql).fetchall()  # control: an open DuckDB reads it
    with pytest.raises(InvalidInput) as caught:
        run_query(sql, store["tables"], limit=5, **LIMITS)
    # The message names what the query wrote, and nothing else: no content, no other path.
    refused = "file system operations are disabled by configuration"
    assert caught.value.message == f'Permission Error: Cannot access file "{path}" - {refused}'


def test_error_messages_name_the_table_not_its_files(store: dict[str, Any]) -> None:
    broken = store["root"] / "broken" / "part-0.parquet"
    broken.parent.mkdir()
    broken.write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput) as caught:
        run_query('SELECT * FROM "alice/broken"', {"alice/broken": TableSource([broken])}, limit=5, **LIMITS)
    assert '<a part of "alice/broken">' in caught.value.message
    assert str(store["tmp"]) not in caught.value.message


def test_the_connection_is_locked(store: dict[str, Any]) -> None:
    settings = [
        "lock_configuration",
        "enable_external_access",
        "autoinstall_known_extensions",
        "autoload_known_extensions",
        "allow_community_extensions",
        "python_enable_replacements",
        "temp_directory",
        "allowed_directories",
        "threads",
        "memory_limit",
    ]
    sql = (
        "SELECT "
        + ", ".join(f"current_setting('{s}')" for s in settings)
        + ", current_setting('allowed_paths')"
    )
    values = run_query(sql, store["tables"], limit=1, **LIMITS).rows[0]
    got = dict(zip(settings, values, strict=False))
    assert got == {
        "lock_configuration": True,
        "enable_external_access": False,
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
        "temp_directory": "",
        "allowed_directories": [],
        "threads": 2,
        "memory_limit": "244.1 MiB",  # 256 MB
    }
    assert sorted(values[-1]) == sorted(str(p) for t in store["tables"].values() for p in t.parts)


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "RESET enable_external_access",
        "SET lock_configuration = false",
        "SET allowed_directories = ['/']",
        "SET allowed_paths = ['/etc/passwd']",
    ],
)
def test_the_lock_cannot_be_undone_even_by_a_statement_that_got_through(statement: str) -> None:
    # The statement check refuses SET before the engine sees it; this shows the engine refuses too.
    with _locked(["/nowhere/part-0.parquet"], "64MB", 1, None) as con:
        with pytest.raises(duckdb.InvalidInputException, match="locked"):
            con.execute(statement)
        with pytest.raises(duckdb.PermissionException):
            con.execute("SELECT * FROM read_csv('/etc/passwd')").fetchall()


# --- errors and limits --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
        ('SELECT nope FROM "alice/sales"', 'Binder Error: Referenced column "nope" not found'),
        (
            "SELECT no_such_function(1)",
            "Catalog Error: Scalar Function with name no_such_function does not exist",
        ),
        ("SELECT 'x'::INTEGER", "Conversion Error: Could not convert string 'x' to INT32"),
        (
            'SELECT amount + 9223372036854775807 FROM "alice/sales"',
            "Out of Range Error: Overflow in addition",
        ),
    ],
)
def test_engine_errors_are_invalid_input(store: dict[str, Any], sql: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_query(sql, store["tables"], limit=5, **LIMITS)
    assert caught.value.message.startswith(message)
    assert "\n" not in caught.value.message
    assert status_of(caught.value) == 422


def test_a_query_running_too_long_is_stopped_at_its_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(QueryLimitExceeded, match=r"longer than its limit of 0\.5 s") as caught:
        run_query("SELECT count(*) FROM range(1000000000000)", {}, limit=5, **LIMITS | {"timeout_s": 0.5})
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 3
    assert caught.value.details == {"field": "sql", "limit": "time"}
    assert status_of(caught.value) == 422


def test_a_derived_table_running_too_long_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "derived.parquet"
    started = time.monotonic()
    with pytest.raises(QueryLimitExceeded, match="longer than"):
        query_to_parquet(
            "SELECT range AS x FROM range(1000000000000)", {}, dest, **LIMITS | {"timeout_s": 0.5}
        )
    assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


def test_a_query_needing_too_much_memory_is_stopped() -> None:
    with pytest.raises(QueryLimitExceeded, match="more memory than its limit of 64MB") as caught:
        run_query(
            "SELECT list(range) FROM range(100000000)", {}, limit=1, **LIMITS | {"memory_limit": "64MB"}
        )
    assert caught.value.details["limit"] == "memory"
