"""Streaming column profiler for CSV and Parquet files: the engine of the ``data.profile`` job.

``profile_file`` reads the file a chunk at a time (``pyarrow.csv.open_csv`` /
``ParquetFile.iter_batches``) and folds each chunk into per-column sketches, so memory is
bounded by the chunk size and the sketch limits, never by the file size. It does no I/O
besides reading that one file.

Memory, concretely: CSV blocks are ``chunk_rows`` times the sampled row width, clamped to
64 KiB..4 MiB, and pyarrow's reader keeps up to ~32 blocks read ahead (so ≤ ~130 MiB of
text); Parquet reads about one row group (compressed) plus one decoded batch. Per column: up to
``max_exact_distinct`` (+ one chunk) exact counters, then fixed-size sketches (KMV 4096
hashes, 1024 heavy-hitter counters) and a quantile sketch of 4096 · log2(n / 4096) floats.

The profile::

    {"format": "csv" | "parquet", "rows": int, "columns": [
        {"name", "type": integer|float|boolean|string|datetime|date,
         "count" (non-null), "nulls", "non_finite" (NaN/±inf of float columns),
         "distinct", "distinct_approximate",
         "min", "max" (numbers, strings lexicographically, dates/datetimes as ISO 8601),
         "mean", "std" (sample, ddof=1), "quantiles": {"p01".."p99"}, "quantile_rank_error",
         "top_values": [{"value", "count"}], "top_values_approximate", "top_values_max_error",
         "histogram": {"edges", "counts"}}]}

Accuracy (see ``studio9.tables.sketches`` for the algorithms):

* ``distinct`` is exact up to ``max_exact_distinct``; past it, a KMV sketch estimate
  (k = 4096, relative standard error ≈ 1.6 %) flagged ``distinct_approximate``.
* ``top_values`` are exact while distinct values are counted exactly; past that they come
  from a Misra-Gries summary: each count is at most ``top_values_max_error`` below the truth.
* Quantiles and histograms come from a compactor sketch (capacity 4096): exact below 4096
  values, else ``quantile_rank_error`` is a guaranteed bound on the normalised rank error
  (≈ 0.1 % for a million values). Histogram counts always sum to ``count - non_finite``.
* mean/std are exact up to floating point. A statistic that does not apply to a type (a
  string's mean) is ``None``. Nested columns, and Parquet binary columns that are not
  UTF-8, are reported as ``string`` with count and nulls only.

CSV: types are inferred from the first block, then fixed. If a later block does not fit
(an integer column meets ``"abc"``), the profile restarts with that column widened to the
narrowest type that fits (int → float → string, date → timestamp → string), as often as
needed; progress never goes backwards while it re-reads. Empty cells, ``NA``, ``NULL``,
``NaN`` (pyarrow's default null spellings) are nulls, in string columns too.

Errors: unreadable input raises ``InvalidInput``; an exception from ``on_progress`` (the
job runtime cancelling) propagates unchanged and the file is closed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import structlog

from studio9.errors import InvalidInput
from studio9.tables.column_stats import ColumnProfile, ProfileLimits

__all__ = ["FileFormat", "profile_file"]

FileFormat = Literal["csv", "parquet"]

log = structlog.get_logger()

PARQUET_MAGIC: Final = b"PAR1"
_SUFFIXES: Final[Mapping[str, FileFormat]] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: Bytes sniffed at the start: the format's magic, and the CSV row width for the block size.
_SAMPLE_BYTES: Final = 1 << 20
#: CSV block bounds. pyarrow reads up to ~32 blocks ahead, so the block caps memory too.
_MIN_BLOCK: Final = 64 << 10
_MAX_BLOCK: Final = 4 << 20
_MAX_ROW_BLOCK: Final = 64 << 20
_CONVERSION = re.compile(r"column #(\d+).*conversion error to [^:]+: invalid value '(.*)'", re.DOTALL)


def profile_file(
    path: Path,
    *,
    file_format: FileFormat | None = None,
    on_progress: Callable[[float], None] | None = None,
    chunk_rows: int = 65_536,
    top_k: int = 10,
    histogram_bins: int = 20,
    max_exact_distinct: int = 100_000,
) -> dict[str, Any]:
    """Profile every column of a CSV or Parquet file in one streaming pass.

    Args:
        path: the file to read.
        file_format: ``None`` detects it: Parquet's magic bytes ``PAR1`` make it Parquet, a
            ``.parquet`` / ``.pq`` name without them is refused, anything else is read as CSV.
        on_progress: called after each chunk with a non-decreasing fraction, last with 1.0.
            It may raise to cancel; the exception propagates.
        chunk_rows: rows per chunk (for CSV, turned into a byte block size from a sample).
        top_k: how many most frequent values to report per column.
        histogram_bins: equal-width bins between a numeric column's min and max.
        max_exact_distinct: distinct values counted exactly per column before sketching.

    Returns:
        The JSON-serialisable profile described in this module's docstring.

    Raises:
        InvalidInput: the file is missing, empty, of an unknown format, or not readable
            as CSV (UTF-8) / Parquet; or a limit is not positive.
    """
    _require_positive(
        chunk_rows=chunk_rows,
        top_k=top_k,
        histogram_bins=histogram_bins,
        max_exact_distinct=max_exact_distinct,
    )
    head, size = _sniff(path)
    resolved = _resolve_format(path, head, file_format)
    limits = ProfileLimits(top_k=top_k, histogram_bins=histogram_bins, max_exact_distinct=max_exact_distinct)
    progress = _Progress(on_progress)
    if resolved == "parquet":
        rows, columns = _profile_parquet(path, chunk_rows, limits, progress)
    else:
        rows, columns = _profile_csv(path, _block_size(head, chunk_rows), size, limits, progress)
    profile = {"format": resolved, "rows": rows, "columns": [column.result() for column in columns]}
    log.debug("file_profiled", format=resolved, rows=rows, columns=len(columns), bytes=size)
    progress.report(1.0)
    return profile


class _Progress:
    """Forwards fractions clamped to [0, 1] and never below the last one sent.

    Exceptions from the callback are the job runtime's cancellation: they propagate.
    """

    def __init__(self, callback: Callable[[float], None] | None) -> None:
        self._callback = callback
        self._last = 0.0

    @property
    def last(self) -> float:
        return self._last

    def report(self, fraction: float) -> None:
        self._last = max(self._last, min(1.0, fraction))
        if self._callback is not None:
            self._callback(self._last)


def _require_positive(**limits: int) -> None:
    for name, value in limits.items():
        if value < 1:
            raise InvalidInput(f"{name} must be at least 1, not {value}", field=name)


def _sniff(path: Path) -> tuple[bytes, int]:
    """The first bytes of the file and its size; a missing or empty file is bad input."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(_SAMPLE_BYTES)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise InvalidInput(f"{path.name}: no such file", file=path.name) from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{path.name} is a directory, not a file", file=path.name) from exc
    if size == 0:
        raise InvalidInput(f"{path.name} is empty", file=path.name)
    return head, size


def _resolve_format(path: Path, head: bytes, requested: FileFormat | None) -> FileFormat:
    is_parquet = head.startswith(PARQUET_MAGIC)
    if requested is None:
        if is_parquet:
            return "parquet"
        if _SUFFIXES.get(path.suffix.lower()) == "parquet":
            raise InvalidInput(
                f"{path.name} is not a Parquet file: it does not start with Parquet's magic bytes",
                file=path.name,
            )
        return "csv"  # whatever the name says: CSV is what text files without a format usually are
    if requested not in ("csv", "parquet"):
        raise InvalidInput(f"unknown file format {requested!r}: expected 'csv' or 'parquet'", field="format")
    if requested == "csv" and is_parquet:
        raise InvalidInput(f"{path.name} is a Parquet file, not CSV", file=path.name)
    return requested


def _fold(batch: pa.RecordBatch, columns: list[ColumnProfile], progress: _Progress, reached: float) -> int:
    """Fold one batch into the sketches, reporting after every column on the way to ``reached``:
    one column of a batch is at most a few tenths of a second of work (the switch from exact
    counts to sketches included), while a wide batch can take seconds, and a cancel or a
    progress bar should not wait for it."""
    start, width = progress.last, len(columns)
    for done, (column, values) in enumerate(zip(columns, batch.columns, strict=True), start=1):
        column.update(values)
        progress.report(start + (reached - start) * done / width)
    if not columns:
        progress.report(reached)
    return int(batch.num_rows)


# -- Parquet --------------------------------------------------------------------------------


def _profile_parquet(
    path: Path, chunk_rows: int, limits: ProfileLimits, progress: _Progress
) -> tuple[int, list[ColumnProfile]]:
    """One pass over the row groups; progress is rows read / rows in the footer."""
    with pa.OSFile(str(path)) as source:
        try:
            parquet = pq.ParquetFile(source)
            total = int(parquet.metadata.num_rows)
            columns = [ColumnProfile(field.name, field.type, limits) for field in parquet.schema_arrow]
            batches = parquet.iter_batches(batch_size=chunk_rows)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}", file=path.name) from exc
        rows = 0
        for batch in _parquet_batches(batches, path):
            rows += _fold(batch, columns, progress, (rows + batch.num_rows) / total if total else 1.0)
        return rows, columns


def _parquet_batches(batches: Iterator[pa.RecordBatch], path: Path) -> Iterator[pa.RecordBatch]:
    """The reader's batches, with decoding errors (corrupt pages, truncation) as InvalidInput."""
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}", file=path.name) from exc
        yield batch


# -- CSV ------------------------------------------------------------------------------------


@attrs.frozen
class _CsvPlan:
    """How to read the CSV: block size and the column types forced after a failed pass."""

    block_size: int
    column_types: Mapping[str, pa.DataType] = attrs.field(factory=dict)


class _Restart(Exception):
    """A pass hit something the plan did not foresee; read again with ``plan``."""

    def __init__(self, plan: _CsvPlan, reason: str) -> None:
        super().__init__(reason)
        self.plan = plan
        self.reason = reason


def _block_size(head: bytes, chunk_rows: int) -> int:
    """Bytes per block for about ``chunk_rows`` rows, judged from the sample's line widths."""
    lines = head.split(b"\n")
    row_bytes = len(head) / max(1, len(lines) - 1) if len(lines) > 1 else len(head)
    widest = max(len(line) for line in lines)
    return min(_MAX_BLOCK, max(_MIN_BLOCK, round(chunk_rows * row_bytes), 4 * widest))


def _profile_csv(
    path: Path, block_size: int, size: int, limits: ProfileLimits, progress: _Progress
) -> tuple[int, list[ColumnProfile]]:
    """Read passes until one completes; each restart widens a column or grows the block.

    Both only ever move up a finite ladder, so the number of passes is bounded.
    """
    plan = _CsvPlan(block_size)
    while True:
        try:
            return _csv_pass(path, size, plan, limits, progress)
        except _Restart as restart:
            log.info("csv_profile_restarted", file=path.name, reason=restart.reason)
            plan = restart.plan


def _csv_pass(
    path: Path, size: int, plan: _CsvPlan, limits: ProfileLimits, progress: _Progress
) -> tuple[int, list[ColumnProfile]]:
    """One pass; progress is bytes consumed (one batch per block, capped by the file position)."""
    with pa.OSFile(str(path)) as source:
        reader = _open_csv(source, plan, path)
        try:
            _reject_binary(reader.schema, path)
            columns = [ColumnProfile(field.name, field.type, limits) for field in reader.schema]
            rows = 0
            for blocks, batch in enumerate(_csv_batches(reader, plan, path), start=1):
                rows += _fold(batch, columns, progress, min(blocks * plan.block_size, source.tell()) / size)
            return rows, columns
        finally:
            reader.close()


def _open_csv(source: pa.NativeFile, plan: _CsvPlan, path: Path) -> Any:
    read = pcsv.ReadOptions(block_size=plan.block_size, use_threads=False)
    parse = pcsv.ParseOptions(newlines_in_values=True)
    convert = pcsv.ConvertOptions(column_types=dict(plan.column_types), strings_can_be_null=True)
    try:
        return pcsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowException as exc:
        raise _csv_failure(exc, plan, None, path) from exc


def _csv_batches(reader: Any, plan: _CsvPlan, path: Path) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowException as exc:
            raise _csv_failure(exc, plan, reader.schema, path) from exc
        yield batch


def _reject_binary(schema: pa.Schema, path: Path) -> None:
    """pyarrow types a column it cannot decode as UTF-8 as binary: that file is not text."""
    try:
        schema.names  # noqa: B018 - decoding the header's names is the check
    except UnicodeDecodeError:  # pyarrow keeps the header's bytes; reading a name decodes them
        raise InvalidInput(f"{path.name} is not UTF-8 text (its header line)", file=path.name) from None
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            raise InvalidInput(
                f"{path.name} is not UTF-8 text (column {field.name!r})", file=path.name, column=field.name
            )


def printable(text: str, limit: int = 300) -> str:
    """``text`` fit to show a user: what is not printable escaped, at most ``limit`` characters.
    pyarrow quotes the offending row in its errors, and a binary file's "row" is raw bytes."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit + 1])
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _csv_failure(exc: Exception, plan: _CsvPlan, schema: pa.Schema | None, path: Path) -> Exception:
    """What a pyarrow CSV error means for us: a restart with a wider plan, or bad input."""
    raw = str(exc)
    message = printable(raw)
    if "straddl" in raw:  # a row longer than the block
        if plan.block_size >= _MAX_ROW_BLOCK:
            return InvalidInput(
                f"{path.name} has a row longer than {_MAX_ROW_BLOCK >> 20} MiB", file=path.name
            )
        bigger = min(plan.block_size * 4, _MAX_ROW_BLOCK)
        return _Restart(
            attrs.evolve(plan, block_size=bigger), f"a row is longer than {plan.block_size} bytes"
        )
    conversion = _CONVERSION.search(raw)
    if conversion is not None and schema is not None:
        field = schema.field(int(conversion[1]))
        wider = _wider_type(field.type, conversion[2])
        if wider is not None:
            types = {**plan.column_types, field.name: wider}
            return _Restart(attrs.evolve(plan, column_types=types), f"{field.name!r}: {field.type} → {wider}")
    if "UTF8" in message or "UTF-8" in message:
        return InvalidInput(f"{path.name} is not UTF-8 text: {message}", file=path.name)
    if "Empty CSV" in message:
        return InvalidInput(f"{path.name} has no complete header line", file=path.name)
    return InvalidInput(f"{path.name} is not a readable CSV file: {message}", file=path.name)


def _wider_type(current: pa.DataType, value: str) -> pa.DataType | None:
    """The narrowest type above ``current`` that can hold ``value``; ``None`` at the top."""
    for candidate in _widenings(current):
        try:
            pa.array([value]).cast(candidate)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return candidate
    return None


def _widenings(current: pa.DataType) -> tuple[pa.DataType, ...]:
    types = pa.types
    timestamps = (pa.timestamp("s"), pa.timestamp("ns"))
    if types.is_null(current):
        return (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), *timestamps, pa.string())
    if types.is_integer(current):
        return (pa.float64(), pa.string())
    if types.is_date(current):
        return (*timestamps, pa.string())
    if types.is_timestamp(current) and current.unit != "ns":
        return (pa.timestamp("ns", current.tz), pa.string())
    if types.is_string(current) or types.is_large_string(current):
        return ()
    return (pa.string(),)
