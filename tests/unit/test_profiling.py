"""The streaming column profiler (``data.profile``'s engine) and the sketches behind it.

Every file is generated in ``tmp_path``; expected values come from plain Python over the
same data, never from the code under test.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import statistics
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from studio9.errors import InvalidInput
from studio9.tables.column_stats import QUANTILES
from studio9.tables.profiling import profile_file
from studio9.tables.sketches import DistinctSketch, HeavyHitters, QuantileSketch, mix64

N_SMALL = 200  # q·n is a whole number for every profile quantile: nearest rank is unambiguous


def _small_columns() -> dict[str, list[Any]]:
    """Six typed columns with nulls at known places; the top values have distinct counts."""
    rng = np.random.default_rng(7)
    start = datetime.datetime(2024, 1, 1, 8, 30)
    ints = [int(v) for v in rng.integers(-50, 50, N_SMALL)]
    return {
        "i": [None if k % 17 == 0 else v for k, v in enumerate(ints)],
        "f": [None if k % 11 == 0 else round(float(v), 3) for k, v in enumerate(rng.normal(10, 3, N_SMALL))],
        "b": [None if k % 13 == 0 else k % 3 == 0 for k in range(N_SMALL)],
        "s": [None if k % 19 == 0 else f"cat{min(k % 23, k % 7)}" for k in range(N_SMALL)],
        "ts": [None if k % 23 == 0 else start + datetime.timedelta(hours=k * 7) for k in range(N_SMALL)],
        "d": [
            None if k % 29 == 0 else datetime.date(2023, 1, 1) + datetime.timedelta(days=k % 40)
            for k in range(N_SMALL)
        ],
    }


def _write(
    tmp_path: Path, columns: dict[str, Any], file_format: str, name: str = "data", row_group_size: int = 64
) -> Path:
    table = pa.table(columns)
    path = tmp_path / f"{name}.{file_format}"
    if file_format == "csv":
        pcsv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=row_group_size)
    return path


def _column(profile: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in profile["columns"] if c["name"] == name)


def _nearest_rank(values: list[Any], q: float) -> Any:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


# -- exact statistics on small files ---------------------------------------------------------


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_small_file_stats_match_plain_python(tmp_path: Path, file_format: str) -> None:
    data = _small_columns()
    path = _write(tmp_path, data, file_format)

    profile = profile_file(path, chunk_rows=37)  # several Parquet chunks: exercises every merge

    assert profile["format"] == file_format
    assert profile["rows"] == N_SMALL
    json.dumps(profile, allow_nan=False)  # JSON-serialisable as is
    for name, raw in data.items():
        values = [v for v in raw if v is not None]
        column = _column(profile, name)
        counts = Counter(values)
        assert column["count"] == len(values), name
        assert column["nulls"] == N_SMALL - len(values), name
        assert column["distinct"] == len(counts), name
        assert column["distinct_approximate"] is False
        assert (column["min"], column["max"]) == (_iso(min(values)), _iso(max(values))), name
        expected_top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert column["top_values"] == [{"value": _iso(v), "count": c} for v, c in expected_top], name
        assert column["top_values_approximate"] is False


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_small_numeric_columns_have_exact_moments_quantiles_and_histogram(
    tmp_path: Path, file_format: str
) -> None:
    data = _small_columns()
    profile = profile_file(_write(tmp_path, data, file_format), chunk_rows=37, histogram_bins=8)

    for name in ("i", "f"):
        values = [v for v in data[name] if v is not None]
        column = _column(profile, name)
        assert column["mean"] == pytest.approx(statistics.fmean(values), rel=1e-12)
        assert column["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)  # sample std
        assert column["quantile_rank_error"] == 0.0
        assert column["quantiles"] == {key: _nearest_rank(values, q) for key, q in QUANTILES.items()}
        histogram = column["histogram"]
        assert len(histogram["edges"]) == 9
        assert len(histogram["counts"]) == 8
        assert histogram["edges"][0] == min(values)
        assert histogram["edges"][-1] == max(values)
        assert sum(histogram["counts"]) == len(values)
        inner_edges = histogram["edges"][1:-1]
        expected = Counter(sum(v >= e for e in inner_edges) for v in values)
        assert histogram["counts"] == [expected[b] for b in range(8)]
    assert _column(profile, "s")["mean"] is None
    assert _column(profile, "s")["histogram"] is None


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_column_types_are_inferred(tmp_path: Path, file_format: str) -> None:
    profile = profile_file(_write(tmp_path, _small_columns(), file_format))

    types = {c["name"]: c["type"] for c in profile["columns"]}
    assert types == {
        "i": "integer",
        "f": "float",
        "b": "boolean",
        "s": "string",
        "ts": "datetime",
        "d": "date",
    }
    assert _column(profile, "ts")["min"] == "2024-01-01T15:30:00"


def test_empty_cells_and_null_spellings_are_nulls_in_every_column(tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    path.write_text("n,s,t,e\n1,a,,\n,NA,2024-01-01,\n3,,NULL,\n")

    profile = profile_file(path)

    assert [(c["name"], c["type"], c["count"], c["nulls"]) for c in profile["columns"]] == [
        ("n", "integer", 2, 1),
        ("s", "string", 1, 2),
        ("t", "date", 1, 2),
        ("e", "string", 0, 3),
    ]
    empty = _column(profile, "e")
    assert (empty["distinct"], empty["min"], empty["top_values"]) == (0, None, [])


def test_float_nan_and_infinity_are_counted_apart_from_the_statistics(tmp_path: Path) -> None:
    path = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"x": [1.0, float("nan"), 3.0, float("inf"), None]}), path)

    column = _column(profile_file(path), "x")

    assert (column["count"], column["nulls"], column["non_finite"]) == (4, 1, 2)
    assert (column["min"], column["max"], column["mean"], column["distinct"]) == (1.0, 3.0, 2.0, 2)
    assert sum(column["histogram"]["counts"]) == 2


def test_a_later_block_that_does_not_fit_widens_the_column_and_rereads(tmp_path: Path) -> None:
    rows = [f"{k},{k},{k % 5}" for k in range(30_000)]
    path = tmp_path / "late.csv"
    path.write_text("a,b,c\n" + "\n".join([*rows, "abc,2.5,4"]) + "\n")
    seen: list[float] = []

    profile = profile_file(path, chunk_rows=1_000, on_progress=seen.append)

    a, b, c = profile["columns"]
    assert (a["type"], a["count"], a["max"]) == ("string", 30_001, "abc")
    assert (b["type"], b["count"], b["max"]) == ("float", 30_001, 29_999.0)
    assert c["type"] == "integer"
    assert profile["rows"] == 30_001
    assert seen == sorted(seen)
    assert seen[-1] == 1.0


def test_parquet_is_detected_by_magic_bytes_and_csv_by_extension(tmp_path: Path) -> None:
    parquet = tmp_path / "upload.bin"
    pq.write_table(pa.table({"x": [1, 2]}), parquet)
    csv = tmp_path / "upload.CSV"
    csv.write_text("x\n1\n")

    assert profile_file(parquet)["format"] == "parquet"
    assert profile_file(csv)["format"] == "csv"
    assert profile_file(parquet, file_format="parquet")["rows"] == 2


# -- a large file, streamed ------------------------------------------------------------------


def test_million_row_csv_streams_in_bounded_memory_with_bounded_errors(tmp_path: Path) -> None:
    n = 1_000_000
    rng = np.random.default_rng(1)
    x = rng.normal(100.0, 15.0, n)
    table = pa.table({"id": np.arange(n), "x": x, "cat": pa.array(rng.integers(0, 50, n)).cast(pa.string())})
    path = tmp_path / "big.csv"
    pcsv.write_csv(table, path)
    size = path.stat().st_size
    del table
    profile_file(_write(tmp_path, {"x": [1.0]}, "csv", "warm-up"))  # lazy imports outside the trace
    seen: list[float] = []
    arrow_bytes: list[int] = []

    def on_progress(fraction: float) -> None:
        seen.append(fraction)
        arrow_bytes.append(pa.total_allocated_bytes())

    tracemalloc.start()
    try:
        profile = profile_file(path, chunk_rows=4_000, max_exact_distinct=1_000, on_progress=on_progress)
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert profile["rows"] == n
    assert len(seen) > 100
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    # Python-side peak and arrow's buffers held between chunks: a fraction of the file
    assert python_peak < size / 4
    assert max(arrow_bytes) < size / 4

    ident, xs, cat = profile["columns"]
    assert ident["distinct_approximate"] is True
    assert ident["distinct"] == pytest.approx(n, rel=0.08)  # KMV k=4096: 5 standard errors
    assert (cat["distinct"], cat["distinct_approximate"]) == (50, False)
    assert xs["mean"] == pytest.approx(float(np.mean(x)), rel=1e-9)
    assert xs["std"] == pytest.approx(float(np.std(x, ddof=1)), rel=1e-9)
    bound = xs["quantile_rank_error"]
    assert 0.0 < bound < 0.01
    ordered = np.sort(x)
    for key, q in QUANTILES.items():
        true_rank = np.searchsorted(ordered, xs["quantiles"][key], side="right") / n
        assert abs(true_rank - q) <= bound + 1 / n, key
    assert sum(xs["histogram"]["counts"]) == n


# -- cancellation and bad input --------------------------------------------------------------


def _open_descriptors(path: Path) -> int:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc to see open files")
    target, count = str(path.resolve()), 0
    for fd in fds.iterdir():
        try:
            count += os.readlink(fd) == target
        except OSError:
            continue
    return count


class Cancelled(Exception):
    pass


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_on_progress_raising_stops_the_profile_and_closes_the_file(tmp_path: Path, file_format: str) -> None:
    n = 200_000
    path = _write(tmp_path, {"x": np.arange(n), "y": np.arange(n) % 7}, file_format, row_group_size=10_000)
    calls: list[float] = []
    open_while_running: list[int] = []

    def cancel_on_third(fraction: float) -> None:
        calls.append(fraction)
        open_while_running.append(_open_descriptors(path))
        if len(calls) == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        profile_file(path, chunk_rows=5_000, on_progress=cancel_on_third)

    assert len(calls) == 3
    assert calls[-1] < 1.0
    assert min(open_while_running) >= 1
    assert _open_descriptors(path) == 0


def _not_utf8(path: Path) -> None:
    path.write_bytes(b"name,city\n1,M\xfcnchen\n")


BAD_INPUTS: dict[str, tuple[str, Callable[[Path], Any], str]] = {
    "missing": ("gone.csv", lambda p: None, "no such file"),
    "empty": ("empty.csv", lambda p: p.write_bytes(b""), "is empty"),
    "directory": ("folder.csv", lambda p: p.mkdir(), "is a directory"),
    # A spreadsheet is not text: read as CSV (whatever the name says), it fails as not UTF-8.
    "unknown extension": ("data.xlsx", lambda p: p.write_bytes(b"PK\x03\x04\xff\xfe\n" * 300), "not UTF-8"),
    "not utf-8": ("latin1.csv", _not_utf8, "not UTF-8"),
    "random bytes": (
        "noise.csv",
        lambda p: p.write_bytes(bytes(range(256)) * 64),
        "not UTF-8|not a readable CSV",
    ),
    "ragged rows": ("ragged.csv", lambda p: p.write_text("a,b\n1,2\n1,2,3\n"), "not a readable CSV"),
    "fake parquet": ("fake.parquet", lambda p: p.write_text("a,b\n1,2\n"), "not a Parquet file"),
    "truncated parquet": ("cut.parquet", lambda p: p.write_bytes(b"PAR1" + b"\0" * 64), "Parquet"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_raises_invalid_input(tmp_path: Path, case: str) -> None:
    name, make, message = BAD_INPUTS[case]
    path = tmp_path / name
    make(path)

    with pytest.raises(InvalidInput, match=message) as raised:
        profile_file(path)
    assert raised.value.message.isprintable() and len(raised.value.message) < 400


def test_a_garbage_file_named_parquet_is_refused_as_not_parquet_without_echoing_its_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "export.parquet"
    path.write_bytes(b"\x00\x01garbage\xff\xfe\n" * 1000)

    with pytest.raises(InvalidInput, match=r"export\.parquet is not a Parquet file") as raised:
        profile_file(path)
    assert "garbage" not in raised.value.message


def test_a_binary_file_read_as_csv_fails_with_a_printable_message(tmp_path: Path) -> None:
    path = tmp_path / "blob.csv"
    path.write_bytes(b"a,b\n" + b"1,\x00\x07\x1b[31m\n" * 10 + b"1,2,3\n")

    with pytest.raises(InvalidInput) as raised:
        profile_file(path)
    assert raised.value.message.isprintable(), raised.value.message


def test_parquet_named_as_csv_and_bad_limits_raise_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"x": [1]}), path)

    with pytest.raises(InvalidInput, match="is a Parquet file, not CSV"):
        profile_file(path, file_format="csv")
    with pytest.raises(InvalidInput, match="chunk_rows must be at least 1"):
        profile_file(path, chunk_rows=0)


# -- approximate regimes and the sketches ----------------------------------------------------


def test_top_values_past_the_exact_limit_come_from_heavy_hitters_with_an_error_bound(tmp_path: Path) -> None:
    n = 60_000
    values = np.where(np.arange(n) % 4 == 0, -1, np.arange(n))  # -1 is a quarter of the rows
    path = tmp_path / "skew.parquet"
    pq.write_table(pa.table({"v": values}), path, row_group_size=5_000)

    column = _column(profile_file(path, chunk_rows=5_000, max_exact_distinct=500, top_k=3), "v")

    assert column["distinct_approximate"] is True
    assert column["top_values_approximate"] is True
    top = column["top_values"][0]
    assert top["value"] == -1
    assert n // 4 - column["top_values_max_error"] <= top["count"] <= n // 4
    assert column["top_values_max_error"] <= n / 1025


def test_quantile_sketch_is_exact_below_capacity_and_within_its_bound_above() -> None:
    rng = np.random.default_rng(3)
    small = rng.exponential(size=1_000)
    exact = QuantileSketch(capacity=4096)
    exact.add(small)
    assert exact.rank_error == 0.0
    assert exact.quantiles([0.5]) == [_nearest_rank(list(small), 0.5)]

    big = rng.exponential(size=300_000)
    sketch = QuantileSketch(capacity=512)
    for chunk in np.array_split(big, 37):
        sketch.add(chunk)
    ordered = np.sort(big)
    assert 0.0 < sketch.rank_error < 0.05
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        (answer,) = sketch.quantiles([q])
        assert abs(np.searchsorted(ordered, answer, side="right") / big.size - q) <= sketch.rank_error
    assert sum(sketch.histogram(np.linspace(0.0, float(ordered[-1]), 11))) == big.size


def test_quantile_sketches_merge_into_the_sketch_of_the_union() -> None:
    rng = np.random.default_rng(4)
    left, right = QuantileSketch(capacity=256, seed=1), QuantileSketch(capacity=256, seed=2)
    a, b = rng.uniform(0, 1, 50_000), rng.uniform(1, 2, 50_000)
    left.add(a)
    right.add(b)

    left.merge(right)

    assert left.count == 100_000
    (median,) = left.quantiles([0.5])
    assert (
        abs(np.searchsorted(np.sort(np.concatenate([a, b])), median, side="right") / 1e5 - 0.5)
        <= left.rank_error
    )


def test_distinct_sketch_is_exact_below_k_and_close_above() -> None:
    sketch = DistinctSketch(k=1024)
    sketch.add(mix64(np.arange(1_000, dtype=np.uint64)))
    sketch.add(mix64(np.arange(500, dtype=np.uint64)))  # repeats change nothing
    assert (sketch.is_exact, sketch.estimate()) == (True, 1_000)

    for start in range(0, 200_000, 10_000):
        sketch.add(mix64(np.arange(start, start + 10_000, dtype=np.uint64)))
    assert sketch.is_exact is False
    assert sketch.estimate() == pytest.approx(200_000, rel=5 / math.sqrt(1022))


def test_heavy_hitters_keep_every_value_above_the_error_bound() -> None:
    heavy = HeavyHitters(capacity=10)
    stream = [("hot", 500), ("warm", 200)] + [(f"cold{k}", 3) for k in range(300)]
    for start in range(0, len(stream), 40):
        heavy.add(stream[start : start + 40])

    counts = dict(heavy.items())
    total = sum(c for _, c in stream)
    assert heavy.max_error <= total / 11
    assert 500 - heavy.max_error <= counts["hot"] <= 500
    assert 200 - heavy.max_error <= counts["warm"] <= 200


def test_timestamps_are_counted_at_their_own_precision_and_rendered_in_iso(tmp_path: Path) -> None:
    path = tmp_path / "stamps.parquet"
    stamps = pa.array([0, 1, 1, 2_000], pa.timestamp("ns", "Europe/Paris"))
    pq.write_table(pa.table({"t": stamps}), path)

    column = _column(profile_file(path), "t")

    assert (column["type"], column["distinct"]) == ("datetime", 3)
    assert column["min"] == "1970-01-01T01:00:00+01:00"
    assert column["max"] == "1970-01-01T01:00:00.000002+01:00"
    assert column["top_values"][0]["count"] == 2
