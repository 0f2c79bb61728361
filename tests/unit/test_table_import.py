"""The table import engine (``studio9.tables.importing``): types, streaming, and bad input.

Every source is written in ``tmp_path``; expectations come from the literal data or from plain
pyarrow reads of the same file, never from the code under test.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from structlog.testing import capture_logs

from studio9.errors import Conflict, InvalidInput
from studio9.tables.conversion import join
from studio9.tables.importing import import_table
from studio9.tables.values import (
    DeclaredColumn,
    ImportCancelled,
    ImportFailed,
    ImportLayout,
    ImportOptions,
    ImportResult,
)

SMALL = ImportLayout(block_size=1024, row_group_rows=100, part_rows=300)


def _file(tmp_path: Path, content: str | bytes, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _import(
    source: Path, options: ImportOptions | None = None, layout: ImportLayout = SMALL, **kwargs: Any
) -> ImportResult:
    return import_table(source, source.parent / "table", options or ImportOptions(), layout=layout, **kwargs)


def _rows(result: ImportResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pa.concat_tables([pq.read_table(p) for p in result.parts]).to_pylist()
    return rows


def _types(result: ImportResult) -> dict[str, tuple[str, str]]:
    return {c.name: (c.type, c.variable_type) for c in result.schema}


def _assert_nothing_left(source: Path) -> None:
    """After a failed import only the source remains: no table, no staging directory."""
    assert sorted(p.name for p in source.parent.iterdir()) == [source.name]


# -- types ------------------------------------------------------------------------------------


def test_infers_every_type_and_variable_type(tmp_path: Path) -> None:
    lines = ["id,price,ok,day,at,zoned,word,rating,empty"]
    for i in range(1, 41):
        lines.append(
            f"{i},{i / 4},{'true' if i % 2 else 'FALSE'},2024-01-{i % 28 + 1:02d},"
            f"2024-02-01 10:{i:02d}:00,2024-02-01T10:00:00+02:00,w{i % 3},{i % 5},"
        )
    lines.append("41,NA,,,,,,3,")
    result = _import(_file(tmp_path, "\n".join(lines) + "\n"))

    assert _types(result) == {
        "id": ("integer", "continuous"),
        "price": ("float", "continuous"),
        "ok": ("boolean", "categorical"),
        "day": ("date", "continuous"),
        "at": ("timestamp", "continuous"),
        "zoned": ("timestamp", "continuous"),
        "word": ("string", "categorical"),
        "rating": ("integer", "categorical"),  # 5 distinct values, each seen 8 times
        "empty": ("string", "categorical"),  # no value at all: text
    }
    rows = _rows(result)
    assert result.row_count == len(rows) == 41
    assert rows[0] == {
        "id": 1,
        "price": 0.25,
        "ok": True,
        "day": datetime.date(2024, 1, 2),
        "at": datetime.datetime(2024, 2, 1, 10, 1),
        "zoned": datetime.datetime(2024, 2, 1, 8, 0, tzinfo=datetime.UTC),
        "word": "w1",
        "rating": 1,
        "empty": None,
    }
    assert rows[1]["ok"] is False
    assert {k: v for k, v in rows[40].items() if v is not None} == {"id": 41, "rating": 3}
    schema = pq.read_schema(result.parts[0])
    assert schema.field("zoned").type == pa.timestamp("us", "UTC")
    assert pq.read_metadata(result.parts[0]).row_group(0).column(0).compression == "ZSTD"


def test_declared_types_override_inference(tmp_path: Path) -> None:
    source = _file(tmp_path, "zip,n,when\n00501,1,2024-01-01\n10001,2,2024-01-02\n")
    columns = [
        DeclaredColumn(name="zip", type="string"),
        DeclaredColumn(name="n", type="float", variable_type="categorical"),
        {"name": "when", "type": "timestamp"},
    ]
    result = _import(source, ImportOptions(columns=columns))  # type: ignore[arg-type]

    assert _types(result) == {
        "zip": ("string", "categorical"),
        "n": ("float", "categorical"),
        "when": ("timestamp", "continuous"),
    }
    assert [r["zip"] for r in _rows(result)] == ["00501", "10001"]
    assert _rows(result)[1]["when"] == datetime.datetime(2024, 1, 2)


def test_without_a_header_columns_are_numbered_or_named_by_the_declaration(tmp_path: Path) -> None:
    source = _file(tmp_path, "1;a\n2;b\n")
    numbered = _import(source, ImportOptions(header=False, delimiter=";"))
    assert [c.name for c in numbered.schema] == ["column_1", "column_2"]
    assert _rows(numbered) == [{"column_1": 1, "column_2": "a"}, {"column_1": 2, "column_2": "b"}]

    named = import_table(
        source,
        tmp_path / "named",
        ImportOptions(header=False, delimiter=";", columns=[{"name": "k"}, {"name": "v"}]),
    )
    assert [c.name for c in named.schema] == ["k", "v"]
    with pytest.raises(InvalidInput, match="2 columns but 1 are declared") as caught:
        import_table(
            source, tmp_path / "x", ImportOptions(header=False, delimiter=";", columns=[{"name": "k"}])
        )
    assert caught.value.details["field"] == "columns"


def test_a_declared_column_the_file_lacks_is_refused(tmp_path: Path) -> None:
    source = _file(tmp_path, "a\n1\n")
    with pytest.raises(InvalidInput, match="no column 'b'"):
        _import(source, ImportOptions(columns=[DeclaredColumn(name="b", type="integer")]))
    _assert_nothing_left(source)


def test_a_later_value_widens_an_inferred_type_and_keeps_every_value(tmp_path: Path) -> None:
    lines = ["n,d,s,sparse"] + [f"{i},2024-01-{i % 28 + 1:02d},{i}," for i in range(300)]
    lines += ["2.5,2024-03-01 12:30:00,x,7"]  # far past the first 1 KiB block
    result = _import(_file(tmp_path, "\n".join(lines) + "\n"))

    assert _types(result) == {
        "n": ("float", "continuous"),
        "d": ("timestamp", "continuous"),
        "s": ("string", "categorical"),
        "sparse": ("integer", "continuous"),  # empty in the first block: typed by its first value
    }
    rows = _rows(result)
    assert [r["n"] for r in rows] == [float(i) for i in range(300)] + [2.5]
    assert rows[-1]["d"] == datetime.datetime(2024, 3, 1, 12, 30)
    assert rows[0]["s"] == "0"
    assert [r["sparse"] for r in rows] == [None] * 300 + [7]


def test_widenings_in_several_later_blocks_cost_one_more_pass(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},{i},2024-01-01" for i in range(400)]
    lines[150] = "1.5,150,2024-01-01"
    lines[350] = "350,x,2024-01-02 10:00:00"
    with capture_logs() as logs:
        result = _import(_file(tmp_path, "\n".join(lines) + "\n"))
    assert _types(result) == {
        "a": ("float", "continuous"),
        "b": ("string", "categorical"),
        "c": ("timestamp", "continuous"),
    }
    assert [e["event"] for e in logs].count("table_import_restarted") == 1
    assert result.row_count == 400
    assert _rows(result)[349]["b"] == "x"


@pytest.mark.parametrize(
    ("one", "other", "joined"),
    [
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.date32(), pa.timestamp("us"), pa.timestamp("us")),
        (pa.timestamp("us", "UTC"), pa.date32(), pa.timestamp("us", "UTC")),
        (pa.timestamp("us", "UTC"), pa.timestamp("us"), pa.string()),
        (pa.bool_(), pa.int64(), pa.string()),
        (pa.float64(), pa.float64(), pa.float64()),
    ],
)
def test_join_is_the_narrowest_common_type(one: pa.DataType, other: pa.DataType, joined: pa.DataType) -> None:
    assert join(one, other) == joined
    assert join(other, one) == joined


# -- bad input --------------------------------------------------------------------------------


def test_a_ragged_row_fails_naming_its_row_and_column(tmp_path: Path) -> None:
    lines = ["a,b,c"] + [f"{i},{i},{i}" for i in range(1, 200)] + ["200,200"] + ["201,201,201"]
    source = _file(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ImportFailed) as caught:
        _import(source)
    assert (caught.value.row, caught.value.column) == (200, "c")
    assert "row 200, column 'c'" in caught.value.message
    _assert_nothing_left(source)


def test_a_row_with_too_many_values_names_the_last_column(tmp_path: Path) -> None:
    source = _file(tmp_path, 'a,b\n"x\ny",1\n\n2,3,4\n')  # a value spanning lines, a blank line
    with pytest.raises(ImportFailed, match=r"row 2: the row has 3 values .* after 'b'") as caught:
        _import(source)
    assert caught.value.row == 2


def test_latin1_bytes_declared_utf8_fail_naming_row_and_column(tmp_path: Path) -> None:
    rows = "".join(f"{i},ok\n" for i in range(1, 150))
    source = _file(tmp_path, b"id,name\n" + rows.encode() + b"150,caf\xe9\n")
    with pytest.raises(ImportFailed) as caught:
        _import(source)
    assert (caught.value.row, caught.value.column) == (150, "name")
    assert "not valid UTF-8" in caught.value.reason
    _assert_nothing_left(source)

    result = _import(source, ImportOptions(encoding="latin-1"))
    assert _rows(result)[-1] == {"id": 150, "name": "café"}


def test_a_header_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="header line is not valid utf-8") as caught:
        _import(_file(tmp_path, b"caf\xe9,b\n1,2\n"))
    assert caught.value.details["field"] == "encoding"


def test_a_value_that_does_not_fit_a_declared_type_fails(tmp_path: Path) -> None:
    source = _file(tmp_path, "n,x\n1,a\n2,b\nthree,c\n")
    with pytest.raises(ImportFailed) as caught:
        _import(source, ImportOptions(columns=[DeclaredColumn(name="n", type="integer")]))
    assert (caught.value.row, caught.value.column) == (3, "n")
    assert caught.value.reason == "'three' is not an integer"
    _assert_nothing_left(source)


@pytest.mark.parametrize("name", ["data.csv", "data.parquet", "data.jsonl"])
def test_a_zero_byte_file_fails_clearly(tmp_path: Path, name: str) -> None:
    source = _file(tmp_path, b"", name)
    with pytest.raises(InvalidInput, match="is empty"):
        _import(source)
    _assert_nothing_left(source)


def test_garbage_parquet_fails_clearly(tmp_path: Path) -> None:
    garbage = _file(tmp_path, b"PAR1" + bytes(range(256)) * 4 + b"PAR1", "data.parquet")
    with pytest.raises(InvalidInput, match="not a readable Parquet file"):
        _import(garbage)
    _assert_nothing_left(garbage)
    garbage.unlink()
    text = _file(tmp_path, "a,b\n1,2\n", "data.parquet")
    with pytest.raises(InvalidInput, match="not a Parquet file"):
        _import(text)
    with pytest.raises(InvalidInput, match="not a Parquet file"):
        _import(text, ImportOptions(format="parquet"))


def test_a_sql_looking_column_name_is_just_a_name(tmp_path: Path) -> None:
    source = _file(tmp_path, '"""; DROP TABLE",x\nrobert,1\n')
    result = _import(source)
    assert [c.name for c in result.schema] == ['"; DROP TABLE', "x"]
    assert pq.read_schema(result.parts[0]).names == ['"; DROP TABLE', "x"]
    assert _rows(result) == [{'"; DROP TABLE': "robert", "x": 1}]


def test_column_names_are_sanitised(tmp_path: Path) -> None:
    result = _import(_file(tmp_path, "a,A,,  b  ,a,c\td\n1,2,3,4,5,6\n"))
    assert [c.name for c in result.schema] == ["a", "A_2", "column_3", "b", "a_3", "c_d"]


def test_skip_mode_keeps_going_and_writes_the_rejected_rows(tmp_path: Path) -> None:
    body = b"n,name\n1,ok\n2\n3,caf\xe9\nfour,x\n5,fine\n6,a,b\n"
    source = _file(tmp_path, body)
    options = ImportOptions(on_error="skip", columns=[DeclaredColumn(name="n", type="integer")])
    result = _import(source, options)

    assert _rows(result) == [{"n": 1, "name": "ok"}, {"n": 5, "name": "fine"}]
    assert (result.row_count, result.rejected_count) == (2, 4)
    assert result.rejected_file == tmp_path / "table" / "rejected.csv"
    with result.rejected_file.open(encoding="utf-8", newline="") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["column"]) for r in rejected] == [
        ("2", "name"),
        ("3", "name"),
        ("4", "n"),
        ("6", ""),
    ]
    assert [r["text"] for r in rejected] == ["2", "3,caf\\xe9", "four,x", "6,a,b"]
    assert "not valid UTF-8" in rejected[1]["reason"]
    assert rejected[2]["reason"] == "'four' is not an integer"


def test_a_clean_import_writes_no_rejected_file(tmp_path: Path) -> None:
    result = _import(_file(tmp_path, "a\n1\n"), ImportOptions(on_error="skip"))
    assert result.rejected_file is None
    assert sorted(p.name for p in (tmp_path / "table").iterdir()) == ["part-00000.parquet"]


def test_a_header_alone_is_an_empty_table(tmp_path: Path) -> None:
    result = _import(_file(tmp_path, "a,b\n"))
    assert (result.row_count, len(result.parts)) == (0, 1)
    assert pq.read_table(result.parts[0]).schema.names == ["a", "b"]


def test_a_destination_that_is_not_empty_is_refused(tmp_path: Path) -> None:
    (tmp_path / "table").mkdir()
    (tmp_path / "table" / "keep").write_text("x")
    with pytest.raises(Conflict):
        _import(_file(tmp_path, "a\n1\n"))
    assert (tmp_path / "table" / "keep").exists()


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"delimiter": ",,"}, "delimiter"),
        ({"delimiter": "\n"}, "delimiter"),
        ({"encoding": "no-such-codec"}, "encoding"),
        ({"format": "xlsx"}, "format"),
        ({"on_error": "ignore"}, "on_error"),
        ({"columns": [{"name": "a", "type": "string", "variable_type": "continuous"}]}, "columns"),
        ({"columns": [{"name": "a"}, {"name": "A"}]}, "columns"),
        ({"columns": [{"name": " a"}]}, "columns"),
        ({"columns": [{"name": "a", "type": "decimal"}]}, "columns"),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        ImportOptions(**options)
    assert caught.value.details["field"] == field


# -- streaming, layout, progress, cancelling --------------------------------------------------


def test_a_file_larger_than_a_block_gives_row_groups_and_parts_with_the_same_rows(tmp_path: Path) -> None:
    n = 1000
    table = pa.table({"i": np.arange(n), "x": np.arange(n) / 7, "s": [f"s{i % 13}" for i in range(n)]})
    source = tmp_path / "data.csv"
    pcsv.write_csv(table, source)
    assert source.stat().st_size > 10 * SMALL.block_size

    result = _import(source)

    assert [p.name for p in result.parts] == [f"part-{k:05d}.parquet" for k in range(4)]
    groups = [pq.read_metadata(p).num_row_groups for p in result.parts]
    assert groups == [3, 3, 3, 1]
    assert result.bytes_written == sum(p.stat().st_size for p in result.parts)
    assert _rows(result) == pcsv.read_csv(source).to_pylist()


def test_progress_rises_to_one_and_an_exception_from_it_leaves_nothing(tmp_path: Path) -> None:
    source = _file(tmp_path, "a\n" + "".join(f"{i}\n" for i in range(2000)))
    seen: list[float] = []
    _import(source, progress=seen.append)
    assert len(seen) > 5
    assert seen == sorted(seen)
    assert seen[-1] == 1.0

    def interrupt(fraction: float) -> None:
        if fraction > 0.3:
            raise KeyboardInterrupt  # what a job's report raises is not ours to catch

    for path in tmp_path.glob("table"):
        path.rename(tmp_path / "done")
    with pytest.raises(KeyboardInterrupt):
        import_table(source, tmp_path / "other", ImportOptions(), layout=SMALL, progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "done"]


def test_cancelling_stops_the_import_and_leaves_nothing(tmp_path: Path) -> None:
    source = _file(tmp_path, "a\n" + "".join(f"{i}\n" for i in range(2000)))
    asked: list[int] = []

    def cancelled() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(ImportCancelled):
        _import(source, cancelled=cancelled)
    assert len(asked) == 3
    _assert_nothing_left(source)


def test_memory_stays_a_fraction_of_the_file(tmp_path: Path) -> None:
    n = 400_000
    rng = np.random.default_rng(3)
    table = pa.table({"id": np.arange(n), "x": rng.normal(size=n), "s": [f"name {i}" for i in range(n)]})
    source = tmp_path / "big.csv"
    pcsv.write_csv(table, source)
    size = source.stat().st_size
    del table
    arrow_bytes: list[int] = []
    layout = ImportLayout(block_size=64 << 10, row_group_rows=16_384)
    import_table(_file(tmp_path, "a\n1\n", "warm.csv"), tmp_path / "warm", ImportOptions())  # lazy imports
    tracemalloc.start()
    try:
        result = import_table(
            source,
            tmp_path / "table",
            ImportOptions(),
            layout=layout,
            progress=lambda _: arrow_bytes.append(pa.total_allocated_bytes()),
        )
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.row_count == n
    assert max(arrow_bytes) < size / 3, (max(arrow_bytes), size)  # a few blocks and a row group
    assert python_peak < size / 4


# -- Parquet and JSON Lines sources -----------------------------------------------------------


def test_parquet_keeps_its_types_by_row_groups(tmp_path: Path) -> None:
    stamps = pa.array([1_700_000_000_000_000_123 + i for i in range(250)], pa.timestamp("ns", "Europe/Paris"))
    table = pa.table(
        {
            "small": pa.array(range(250), pa.uint8()),
            "f": pa.array(np.arange(250) / 2, pa.float32()),
            "cat": pa.array([f"c{i % 3}" for i in range(250)]).dictionary_encode(),
            "at": stamps,
            "day": pa.array([datetime.date(2024, 1, 1)] * 250),
            "raw": pa.array([b"bytes"] * 250),
        }
    )
    source = tmp_path / "data.parquet"
    pq.write_table(table, source, row_group_size=60)
    result = _import(source)

    assert result.format == "parquet"
    assert _types(result) == {
        "small": ("integer", "continuous"),
        "f": ("float", "continuous"),
        "cat": ("string", "categorical"),
        "at": ("timestamp", "continuous"),
        "day": ("date", "continuous"),
        "raw": ("string", "categorical"),
    }
    rows = _rows(result)
    assert len(rows) == 250
    assert rows[7]["small"] == 7
    assert rows[7]["cat"] == "c1"
    assert rows[0]["at"] == datetime.datetime(
        2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC
    )  # µs kept, ns cut
    assert rows[0]["raw"] == "bytes"


def test_parquet_nested_columns_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "data.parquet"
    pq.write_table(pa.table({"l": [[1, 2]]}), source)
    with pytest.raises(InvalidInput, match="nested type"):
        _import(source)
    _assert_nothing_left(source)


def test_jsonl_values_keys_and_late_keys(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "code": f"{i:05d}", "ok": i % 2 == 0, "tags": [i]}) for i in range(60)]
    lines.insert(30, "")
    lines.append(json.dumps({"id": 60, "late": 1.5}))  # keys the first block never saw
    lines.append(json.dumps({"id": 61, "later": "x"}))
    with capture_logs() as logs:
        result = _import(_file(tmp_path, "\n".join(lines) + "\n", "data.jsonl"))

    assert [e["event"] for e in logs].count("table_import_restarted") == 1
    assert _types(result) == {
        "id": ("integer", "continuous"),
        "code": ("string", "categorical"),  # JSON strings are not read as numbers
        "ok": ("boolean", "categorical"),
        "tags": ("string", "categorical"),
        "late": ("float", "continuous"),
        "later": ("string", "categorical"),
    }
    rows = _rows(result)
    assert rows[1] == {"id": 1, "code": "00001", "ok": False, "tags": "[1]", "late": None, "later": None}
    assert rows[-2] == {"id": 60, "code": None, "ok": None, "tags": None, "late": 1.5, "later": None}
    assert rows[-1]["later"] == "x"


def test_jsonl_bad_lines_name_their_line(tmp_path: Path) -> None:
    source = _file(tmp_path, '{"a": 1}\n\n[1, 2]\n{"a": 2}\n{"a": \n', "data.jsonl")
    with pytest.raises(ImportFailed, match="row 3: the line is not a JSON object") as caught:
        _import(source)
    assert caught.value.column is None

    result = _import(source, ImportOptions(on_error="skip"))
    assert _rows(result) == [{"a": 1}, {"a": 2}]
    assert result.rejected_file is not None
    rejected = list(csv.DictReader(io.StringIO(result.rejected_file.read_text(encoding="utf-8"))))
    assert [(r["row"], r["text"]) for r in rejected] == [("3", "[1, 2]"), ("5", '{"a": ')]


def test_jsonl_without_an_object_first(tmp_path: Path) -> None:
    source = _file(tmp_path, 'oops\n{}\n{"a": 1}\n', "data.jsonl")
    with pytest.raises(ImportFailed, match="row 1: the line is not valid JSON"):
        _import(source)
    result = _import(source, ImportOptions(on_error="skip"))
    assert (_rows(result), result.rejected_count) == ([{"a": None}, {"a": 1}], 1)
    with pytest.raises(InvalidInput, match="no columns"):
        import_table(_file(tmp_path, "{}\n\n", "empty.jsonl"), tmp_path / "other", ImportOptions())
    keyless = _file(tmp_path, "{}\n" * 200 + '{"a": 1}\n', "late.jsonl")  # the keys come after a block
    assert _rows(import_table(keyless, tmp_path / "late", ImportOptions(), layout=SMALL)) == [
        {"a": None}
    ] * 200 + [{"a": 1}]


def _progress_never_called(_: float) -> None:  # pragma: no cover - a guard
    raise AssertionError


def test_an_unreadable_source_reports_before_any_progress(tmp_path: Path) -> None:
    missing: Callable[[float], None] = _progress_never_called
    with pytest.raises(InvalidInput, match="no such file"):
        import_table(tmp_path / "absent.csv", tmp_path / "table", ImportOptions(), progress=missing)
