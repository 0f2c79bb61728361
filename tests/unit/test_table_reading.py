"""Reads of an imported table (``studio9.tables.reading``): paging, filters, values, exports, stats.

The table is imported from a generated CSV into several parts and row groups; every expectation
is computed in plain Python from the generated rows, never by the code under test.
"""

from __future__ import annotations

import base64
import datetime
import math
import statistics
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio9.errors import InvalidInput
from studio9.tables.importing import import_table
from studio9.tables.reading import column_stats, distinct_values, export, read_rows
from studio9.tables.values import ImportLayout, ImportOptions, ImportResult

N = 530
LAYOUT = ImportLayout(block_size=2048, row_group_rows=64, part_rows=192)
DROP = '"; DROP TABLE'
Row = dict[str, Any]


def _generated() -> list[Row]:
    start = datetime.datetime(2024, 1, 1, 0, 0)
    rows = []
    for i in range(N):
        rows.append(
            {
                "id": i,
                "grp": ["red", "green", "Blue", "it's"][i % 4],
                "val": None if i % 9 == 0 else (math.inf if i % 31 == 0 else float((i * 37) % 101) / 4),
                "day": datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 40),
                "at": start + datetime.timedelta(minutes=17 * i),
                "flag": i % 3 == 0,
                DROP: f"v{i % 7}",
            }
        )
    return rows


ROWS = _generated()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace('"', '""')


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> ImportResult:
    root = tmp_path_factory.mktemp("table")
    header = ",".join(f'"{name.replace(chr(34), chr(34) * 2)}"' for name in ROWS[0])
    lines = [header] + [",".join(f'"{_csv_cell(v)}"' for v in row.values()) for row in ROWS]
    source = root / "data.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_table(source, root / "table", ImportOptions(null_values=("",)), layout=LAYOUT)
    assert len(result.parts) == 3
    return result


EXPECTED = ROWS


def _all_pages(parts: Any, limit: int, **query: Any) -> tuple[list[Row], int]:
    rows: list[Row] = []
    cursor, pages = None, 0
    while True:
        page = read_rows(parts, limit=limit, cursor=cursor, **query)
        assert len(page.rows) <= limit
        rows += page.rows
        pages += 1
        if page.next_cursor is None:
            return rows, pages
        cursor = page.next_cursor
        assert pages < 10 * N


# -- paging -----------------------------------------------------------------------------------


def test_the_fixture_spans_parts_and_row_groups(table: ImportResult) -> None:
    groups = [pq.read_metadata(part).num_row_groups for part in table.parts]
    assert groups == [3, 3, 3]
    assert table.row_count == N


@pytest.mark.parametrize("limit", [1, 7, 64, 1000])
def test_paging_returns_every_row_exactly_once_in_order(table: ImportResult, limit: int) -> None:
    rows, pages = _all_pages(table.parts[0].parent, limit)
    assert rows == EXPECTED
    assert pages == math.ceil(N / limit)


def test_a_list_of_parts_reads_like_the_directory(table: ImportResult) -> None:
    page = read_rows(list(table.parts), limit=3, columns=["id", DROP])
    assert page.columns == ("id", DROP)
    assert page.rows == tuple({"id": r["id"], DROP: r[DROP]} for r in EXPECTED[:3])


def _sorted(rows: list[Row], column: str, descending: bool) -> list[Row]:
    def missing(row: Row) -> bool:
        value = row[column]
        return value is None or (isinstance(value, float) and math.isnan(value))

    present = [r for r in rows if not missing(r)]
    present.sort(key=lambda r: r["id"])
    present.sort(key=lambda r: r[column], reverse=descending)  # stable: ties stay in id order
    return present + [r for r in rows if missing(r)]


@pytest.mark.parametrize("column", ["val", "grp", "day", "at", "flag", DROP])
@pytest.mark.parametrize("descending", [False, True])
def test_ordered_paging_returns_every_row_once_in_order(
    table: ImportResult, column: str, descending: bool
) -> None:
    order = f"{column}:desc" if descending else column
    rows, _ = _all_pages(table.parts, 45, order=order)
    assert rows == _sorted(EXPECTED, column, descending)


def test_nan_and_null_come_last_in_natural_order(tmp_path: Path) -> None:
    values = [3.0, math.nan, None, 1.0, None, math.nan, 2.0]
    pq.write_table(pa.table({"v": values, "i": range(7)}), tmp_path / "part-00000.parquet", row_group_size=3)
    for order, head in (("v", [3, 6, 0]), ("v:desc", [0, 6, 3])):
        rows, _ = _all_pages(tmp_path, 2, order=order, columns=["i"])
        assert [r["i"] for r in rows] == [*head, 1, 2, 4, 5]


def test_ordered_paging_with_a_filter(table: ImportResult) -> None:
    rows, _ = _all_pages(table.parts, 11, order="val:desc", filter="grp = 'red' and id < 400")
    wanted = [r for r in EXPECTED if r["grp"] == "red" and r["id"] < 400]
    assert rows == _sorted(wanted, "val", True)


def test_filtered_paging_returns_every_match_once(table: ImportResult) -> None:
    rows, _ = _all_pages(table.parts, 5, filter="flag = true and day >= '2024-01-20'", columns=["id"])
    wanted = [r["id"] for r in EXPECTED if r["flag"] and r["day"] >= datetime.date(2024, 1, 20)]
    assert [r["id"] for r in rows] == wanted


@pytest.mark.parametrize(
    "cursor", ["garbage", "", "!!!!", base64.urlsafe_b64encode(b"[1, 2, 3]").decode(), "W10", "x" * 20_000]
)
def test_a_garbage_cursor_is_refused(table: ImportResult, cursor: str) -> None:
    if cursor == "":
        assert read_rows(table.parts, limit=2).rows == tuple(EXPECTED[:2])  # no cursor: the start
        return
    with pytest.raises(InvalidInput) as caught:
        read_rows(table.parts, limit=2, cursor=cursor)
    assert caught.value.details["field"] == "cursor"


def test_a_cursor_of_another_query_is_refused(table: ImportResult) -> None:
    cursor = read_rows(table.parts, limit=2, filter="id > 3").next_cursor
    assert cursor is not None
    for query in ({"filter": "id > 4"}, {}, {"order": "id"}):
        with pytest.raises(InvalidInput, match="cursor"):
            read_rows(table.parts, limit=2, cursor=cursor, **query)
    assert read_rows(table.parts, limit=2, cursor=cursor, filter="id > 3").rows[0]["id"] == 6


def test_limit_and_columns_are_checked(table: ImportResult) -> None:
    for limit in (0, 1001):
        with pytest.raises(InvalidInput) as caught:
            read_rows(table.parts, limit=limit)
        assert caught.value.details["field"] == "limit"
    with pytest.raises(InvalidInput, match="no column 'nope'") as caught:
        read_rows(table.parts, columns=["id", "nope"])
    assert caught.value.details == {"field": "columns", "column": "nope"}
    with pytest.raises(InvalidInput, match="no column 'nope'"):
        read_rows(table.parts, order="nope:desc")


# -- filters ----------------------------------------------------------------------------------


def _is(value: Any) -> bool:
    return value is not None


FILTERS: list[tuple[str, Callable[[Row], bool]]] = [
    ("id = 5", lambda r: r["id"] == 5),
    ("ID != 5", lambda r: r["id"] != 5),
    ("id < 10", lambda r: r["id"] < 10),
    ("id <= 10 AND id >= 8", lambda r: 8 <= r["id"] <= 10),
    ("id > 520", lambda r: r["id"] > 520),
    ("val > 20.5", lambda r: _is(r["val"]) and r["val"] > 20.5),
    ("val <> 0", lambda r: _is(r["val"]) and r["val"] != 0),
    ("id < 2.5", lambda r: r["id"] < 2.5),
    ("grp in ('red', 'it''s')", lambda r: r["grp"] in ("red", "it's")),
    ("grp not in ('red')", lambda r: r["grp"] != "red"),
    ("val is null", lambda r: r["val"] is None),
    ("val is not null and val < 1", lambda r: _is(r["val"]) and r["val"] < 1),
    ("grp contains 'E'", lambda r: "e" in r["grp"].lower()),
    ("day = '2024-01-05'", lambda r: r["day"] == datetime.date(2024, 1, 5)),
    ("at >= '2024-01-05 12:00:00'", lambda r: r["at"] >= datetime.datetime(2024, 1, 5, 12)),
    ("flag = false and id in (3, 4, 5)", lambda r: not r["flag"] and r["id"] in (3, 4, 5)),
    ('"""; DROP TABLE" = \'v3\'', lambda r: r[DROP] == "v3"),
    ("\"\"\"; drop table\" in ('v1', 'v2')", lambda r: r[DROP] in ("v1", "v2")),
    ("grp = 'x' and id = 1", lambda r: False),
]


@pytest.mark.parametrize(("text", "predicate"), FILTERS, ids=[text for text, _ in FILTERS])
def test_filters_select_what_they_say(
    table: ImportResult, text: str, predicate: Callable[[Row], bool]
) -> None:
    page = read_rows(table.parts, limit=1000, filter=text, columns=["id"])
    assert [r["id"] for r in page.rows] == [r["id"] for r in EXPECTED if predicate(r)]


@pytest.mark.parametrize(
    "text",
    [
        "id",
        "id =",
        "id = 1 or id = 2",
        "id == 1",
        "= 1",
        "and = 1",
        "id in 1, 2",
        "id in (1, 2",
        "id is 1",
        "id = 'one'",
        "id = 99999999999999999999999",
        "id in (1, 'x')",
        "day < 'yesterday'",
        "id contains '1'",
        "grp contains red",
        "flag = maybe",
        "grp = 'unterminated",
        "grp = 'a' id = 1",
        "id = 1 and",
        "x" * 5000,
    ],
)
def test_bad_filters_are_refused(table: ImportResult, text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_rows(table.parts, filter=text)
    assert caught.value.details["field"] == "filter"


def test_a_filter_naming_an_unknown_column_names_it(table: ImportResult) -> None:
    with pytest.raises(InvalidInput, match="no column 'colour'") as caught:
        read_rows(table.parts, filter="grp = 'red' and colour = 'red'")
    assert caught.value.details == {"field": "filter", "column": "colour"}


# -- distinct values, export, statistics ------------------------------------------------------


def test_distinct_values_count_like_python(table: ImportResult) -> None:
    found = distinct_values(table.parts, "grp")
    assert [(v.value, v.count) for v in found.values] == sorted(
        Counter(r["grp"] for r in EXPECTED).items(), key=lambda item: (-item[1], item[0])
    )
    assert found.approximate is False
    filtered = distinct_values(table.parts, DROP, q="V1", limit=5)
    assert [(v.value, v.count) for v in filtered.values] == [("v1", sum(r[DROP] == "v1" for r in EXPECTED))]
    numbers = distinct_values(table.parts, "day", q="-01-0", limit=3)
    assert len(numbers.values) == 3
    assert all(isinstance(v.value, datetime.date) and v.value.day < 10 for v in numbers.values)
    with pytest.raises(InvalidInput, match="no column"):
        distinct_values(table.parts, "nope")


def test_distinct_values_past_the_exact_limit_are_approximate(tmp_path: Path) -> None:
    n = 120_000
    values = np.concatenate([np.arange(n), np.full(5000, 7), np.full(3000, 11)])
    pq.write_table(pa.table({"v": values}), tmp_path / "part-00000.parquet", row_group_size=20_000)
    found = distinct_values(tmp_path, "v", limit=2)
    assert found.approximate is True
    assert [v.value for v in found.values] == [7, 11]
    assert 5001 - found.max_error <= found.values[0].count <= 5001


def test_csv_export_round_trips(table: ImportResult, tmp_path: Path) -> None:
    chunks = list(export(table.parts, "csv"))
    path = tmp_path / "export.csv"
    path.write_bytes(b"".join(chunks))
    again = import_table(path, tmp_path / "again", ImportOptions(), layout=LAYOUT)
    assert [(c.name, c.type) for c in again.schema] == [(c.name, c.type) for c in table.schema]
    assert read_rows(tmp_path / "again", limit=1000).rows == read_rows(table.parts, limit=1000).rows


def test_parquet_export_is_one_file_with_every_row(table: ImportResult, tmp_path: Path) -> None:
    path = tmp_path / "export.parquet"
    path.write_bytes(b"".join(export(table.parts, "parquet")))
    assert pq.read_table(path).to_pylist() == EXPECTED
    single = b"".join(export(table.parts[:1], "parquet"))
    assert single == table.parts[0].read_bytes()
    with pytest.raises(InvalidInput) as caught:
        export(table.parts, "xlsx")  # type: ignore[arg-type]
    assert caught.value.details["field"] == "format"


def test_column_stats_are_the_profile_figures_with_120_bins(table: ImportResult) -> None:
    seen: list[float] = []
    stats = column_stats(table.parts, table.schema, progress=seen.append)
    assert stats["rows"] == N
    assert seen[-1] == 1.0
    by_name = {column["name"]: column for column in stats["columns"]}
    assert list(by_name) == [c.name for c in table.schema]
    assert by_name["grp"]["variable_type"] == "categorical"
    ids = by_name["id"]
    assert ids["mean"] == pytest.approx(statistics.mean(range(N)))
    assert len(ids["histogram"]["counts"]) == 120
    assert sum(ids["histogram"]["counts"]) == N
    val = by_name["val"]
    assert val["nulls"] == sum(r["val"] is None for r in EXPECTED)
    assert val["non_finite"] == sum(r["val"] == math.inf for r in EXPECTED)
    assert sum(val["histogram"]["counts"]) == val["count"] - val["non_finite"]
    assert by_name["day"]["min"] == "2024-01-01"
