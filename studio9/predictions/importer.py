"""Streaming, validating import of a prediction file (CSV or Parquet) into a prediction sink.

``import_predictions`` reads the file a chunk at a time with pyarrow (CSV: every column as
text; Parquet: ``iter_batches``) in a worker thread, checks and reshapes each chunk into a
``PredictionBatch`` and streams them into ``PredictionSink.load``, which stages them and swaps
them in atomically. Memory is bounded by the chunk size (CSV: pyarrow's read-ahead of a few
dozen 256 KiB blocks; Parquet: about one row group), never by the file.

Columns: ``item_key`` and ``label`` are required (non-empty text, at most 1024 bytes);
``confidence`` is optional (a number 0..1, empty = null); ``probabilities`` is optional (a
JSON object, as text or a Parquet struct/map); every other column goes, by name, into the
row's ``extra`` JSON object (CSV values stay text). Row numbers count data rows from 1 (the
header is not a row); a CSV row that does not split into the header's columns is numbered
from its line (exact unless an earlier value spans lines).

Errors: a malformed row raises ``MalformedPredictions`` (row number and reason) and nothing
is loaded; with ``on_error="skip"`` the good rows are loaded and the bad ones returned in
``ImportResult.rejected`` (at most ``max_rejected``; more fails the import). A file that is
unreadable, of the wrong format or lacks a required column raises ``InvalidInput``, and so
does a CSV row longer than a block (256 KiB), in either mode. An exception from
``on_progress`` (the job being cancelled) propagates, and nothing is loaded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncGenerator, Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import anyio
import anyio.to_thread
import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import structlog

from studio9.errors import InvalidInput
from studio9.predictions.arrow import ARROW_POOL, BATCH_SCHEMA
from studio9.predictions.checks import REQUIRED, check_columns
from studio9.predictions.domain import (
    ImportMeta,
    ImportResult,
    MalformedPredictions,
    PredictionBatch,
    RejectedRow,
)
from studio9.predictions.ports import PredictionSink

__all__ = ["FileFormat", "OnError", "import_predictions"]

FileFormat = Literal["csv", "parquet"]
OnError = Literal["fail", "skip"]

log = structlog.get_logger()

#: Share of the progress bar for reading; the sink's final swap takes the rest.
_READ_SHARE: Final = 0.95
#: CSV block: pyarrow reads a few dozen ahead (memory), and a row may not be longer.
_BLOCK: Final = 256 << 10


async def import_predictions(
    sink: PredictionSink,
    path: Path,
    meta: ImportMeta,
    *,
    file_format: FileFormat | None = None,
    on_error: OnError = "fail",
    on_progress: Callable[[float], None] | None = None,
    chunk_rows: int = 8_192,
    max_rejected: int = 10_000,
) -> ImportResult:
    """Load ``path`` into ``sink`` as the import ``meta`` (replacing any earlier one of its key).

    Args:
        file_format: ``None`` detects it: Parquet magic bytes ``PAR1``, else CSV.
        on_error: ``"fail"`` (nothing is loaded on the first bad row) or ``"skip"``.
        on_progress: called from a worker thread with non-decreasing fractions, last 1.0.
        chunk_rows: about how many rows each batch holds.
        max_rejected: in skip mode, more rejected rows than this fail the import.

    Raises:
        MalformedPredictions: a bad row, in fail mode.
        InvalidInput: the file cannot be read as a prediction file, or too many rejects.
        BackendUnavailable: from the sink.
    """
    if on_error not in ("fail", "skip"):
        raise InvalidInput(f"on_error must be 'fail' or 'skip', not {on_error!r}", field="on_error")
    if chunk_rows < 1 or max_rejected < 0:
        raise InvalidInput("chunk_rows must be positive and max_rejected not negative")
    reader = _Reader(path, file_format, on_error, max_rejected, on_progress)
    async with contextlib.aclosing(_in_threads(reader.batches(chunk_rows))) as batches:
        loaded = await sink.load(batches, meta)
    reader.report(1.0)
    log.info(
        "predictions_imported",
        import_id=meta.import_id,
        model_id=meta.model_id,
        rows=loaded.rows,
        rejected=len(reader.rejected),
        replaced=loaded.replaced,
    )
    return ImportResult(
        import_id=meta.import_id,
        key=meta.key,
        rows=loaded.rows,
        replaced=loaded.replaced,
        rejected=tuple(reader.rejected),
    )


async def _in_threads(
    batches: Generator[PredictionBatch, None, None],
) -> AsyncGenerator[PredictionBatch, None]:
    """The batches, each read and checked in a worker thread while the sink writes the one before
    (two batches in flight at most); the event loop never parses."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="predictions-import") as reader:
        pending = reader.submit(next, batches, None)
        try:
            while (batch := await asyncio.wrap_future(pending)) is not None:
                pending = reader.submit(next, batches, None)
                yield batch
        finally:
            with anyio.CancelScope(shield=True):  # the reader must stop before the file closes
                await anyio.to_thread.run_sync(concurrent.futures.wait, [pending])
            batches.close()


@attrs.define
class _Reader:
    """Reads one file into checked batches; collects rejected rows in skip mode; reports progress
    (clamped to [0, 1], never going back)."""

    path: Path
    format: FileFormat | None
    on_error: OnError
    max_rejected: int
    on_progress: Callable[[float], None] | None
    rejected: list[RejectedRow] = attrs.Factory(list)
    next_row: int = 1
    done: float = 0.0

    def report(self, fraction: float) -> None:
        self.done = max(self.done, min(1.0, fraction))
        if self.on_progress is not None:
            self.on_progress(self.done)

    def batches(self, chunk_rows: int) -> Generator[PredictionBatch, None, None]:
        head = _head(self.path)
        is_parquet = head.startswith(b"PAR1")
        if self.format not in (None, "csv", "parquet"):
            raise InvalidInput(f"unknown format {self.format!r}: expected 'csv' or 'parquet'", field="format")
        if self.format == "csv" and is_parquet:
            raise InvalidInput(f"{self.path.name} is a Parquet file, not CSV", field="format")
        if self.format is None and not is_parquet and self.path.suffix.lower() in (".parquet", ".pq"):
            raise InvalidInput(
                f"{self.path.name} is not a Parquet file: it does not start with Parquet's magic bytes"
            )
        if self.format == "parquet" or (self.format is None and is_parquet):
            raw = _parquet(self.path, chunk_rows)
        else:
            raw = _csv(self.path, chunk_rows)
        with contextlib.closing(raw):
            for chunk, invalid, fraction in raw:
                batch = self._check(chunk, invalid)
                self.report(fraction * _READ_SHARE)
                if batch.num_rows:
                    yield batch
        # The last look for a cancel before the sink swaps the rows in: after it, the import is
        # committed whatever happens (a cancel during the swap finds the import loaded).
        self.report(self.done)

    def _check(self, chunk: pa.RecordBatch, invalid: list[tuple[int, str, str]]) -> PredictionBatch:
        start, count = self.next_row, chunk.num_rows + len(invalid)
        self.next_row += count
        numbers = np.arange(start, start + count, dtype=np.int64)
        lost = sorted({line - 1 for line, _, _ in invalid if start <= line - 1 < start + count})
        if len(lost) != len(invalid):  # values spanning lines moved them: number them last
            lost = list(range(start + chunk.num_rows, start + count))
        if lost:
            numbers = np.setdiff1d(numbers, lost, assume_unique=True)
        problems: dict[int, str] = {}
        columns = check_columns(chunk, problems)
        failed = sorted(problems)
        if self.on_error == "fail" and (invalid or failed):
            bad = [(row, reason) for row, (_, reason, _) in zip(lost, invalid, strict=True)]
            bad += [(int(numbers[index]), problems[index]) for index in failed[:1]]
            raise MalformedPredictions(*min(bad))
        names = chunk.schema.names
        unsplit = zip(lost, invalid, strict=True)
        rejected = [RejectedRow(row, reason, {"_text": text}) for row, (_, reason, text) in unsplit]
        for index in failed:
            values = {name: chunk.column(j)[index].as_py() for j, name in enumerate(names)}
            rejected.append(RejectedRow(int(numbers[index]), problems[index], values))
        for row in sorted(rejected, key=lambda rejected_row: rejected_row.row):
            self._reject(row)
        data = pa.record_batch([pa.array(numbers), *columns], schema=BATCH_SCHEMA)
        if failed:
            keep = np.ones(chunk.num_rows, dtype=bool)
            keep[failed] = False
            data = pc.filter(data, pa.array(keep), memory_pool=ARROW_POOL)
        return PredictionBatch(data)

    def _reject(self, row: RejectedRow) -> None:
        if len(self.rejected) >= self.max_rejected:
            raise InvalidInput(f"more than {self.max_rejected} rows were rejected; nothing was loaded")
        self.rejected.append(row)


# -- files ------------------------------------------------------------------------------------

# One chunk: its rows, the CSV rows that did not split (line, reason, text), progress 0..1.
_Chunks = Generator[tuple[pa.RecordBatch, list[tuple[int, str, str]], float], None, None]


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            head = handle.read(1 << 16)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidInput(f"{path.name}: no such file", file=path.name) from exc
    if not head:
        raise InvalidInput(f"{path.name} is empty", file=path.name)
    return head


def _check_header(names: Sequence[str], path: Path) -> None:
    if duplicates := sorted({name for name in names if list(names).count(name) > 1}):
        raise InvalidInput(f"{path.name} repeats columns {duplicates}", file=path.name)
    if missing := [name for name in REQUIRED if name not in names]:
        raise InvalidInput(f"{path.name} lacks the required columns {missing}", file=path.name)


def _csv(path: Path, chunk_rows: int) -> _Chunks:
    """Blocks of ``_BLOCK`` bytes (pyarrow reads a few dozen ahead: that bounds memory), joined
    into chunks of about ``chunk_rows`` rows; every column is read as text."""
    invalid: list[tuple[int, str, str]] = []

    def on_invalid(row: Any) -> str:
        reason = f"expected {row.expected_columns} columns, got {row.actual_columns} (line {row.number})"
        invalid.append((int(row.number or 0), reason, str(row.text)))
        return "skip"

    read = pcsv.ReadOptions(block_size=_BLOCK, use_threads=False)
    parse = pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid)
    with _csv_reader(path, read, parse) as (_, first):  # the header, from a reader of its own
        names = first.schema.names
    _check_header(names, path)
    invalid.clear()
    types = dict.fromkeys(names, pa.string())
    text = pcsv.ConvertOptions(
        column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    with _csv_reader(path, read, parse, text) as (source, csv):
        size, pending = max(1, source.size()), []
        while True:
            try:
                pending.append(csv.read_next_batch())
            except StopIteration:
                break
            except pa.ArrowException as exc:
                raise _csv_error(exc, path) from exc
            if (count := sum(chunk.num_rows for chunk in pending)) < chunk_rows:
                continue
            joined, done = _joined(pending), source.tell() / size
            if invalid:  # kept whole: the rows that did not split are numbered within it
                yield joined, invalid[:], done
                pending, invalid[:] = [], []
                continue
            cut = count - count % chunk_rows
            for start in range(0, cut, chunk_rows):
                yield joined.slice(start, chunk_rows), [], done
            pending = [joined.slice(cut)] if cut < count else []
        if pending or invalid:
            yield _joined(pending, csv.schema), invalid[:], 1.0


@contextlib.contextmanager
def _csv_reader(path: Path, read: Any, parse: Any, convert: Any = None) -> Iterator[tuple[Any, Any]]:
    with pa.OSFile(str(path), memory_pool=ARROW_POOL) as source:
        try:
            reader = pcsv.open_csv(
                source,
                read_options=read,
                parse_options=parse,
                convert_options=convert,
                memory_pool=ARROW_POOL,
            )
        except pa.ArrowException as exc:
            raise _csv_error(exc, path) from exc
        with contextlib.closing(reader):
            yield source, reader


def _joined(chunks: list[pa.RecordBatch], schema: pa.Schema | None = None) -> pa.RecordBatch:
    if not chunks:
        return pa.RecordBatch.from_pylist([], schema=schema)
    if len(chunks) == 1:
        return chunks[0]
    return pa.Table.from_batches(chunks).combine_chunks(memory_pool=ARROW_POOL).to_batches()[0]


def _csv_error(exc: Exception, path: Path) -> InvalidInput:
    message = str(exc)
    if "straddl" in message:
        return InvalidInput(f"{path.name} has a row longer than {_BLOCK >> 10} KiB", file=path.name)
    if "Empty CSV" in message:
        return InvalidInput(f"{path.name} has no header line", file=path.name)
    return InvalidInput(f"{path.name} is not a readable CSV file: {message}", file=path.name)


def _parquet(path: Path, chunk_rows: int) -> _Chunks:
    with pa.OSFile(str(path), memory_pool=ARROW_POOL) as source:
        try:
            parquet = pq.ParquetFile(source)
            _check_header(parquet.schema_arrow.names, path)
            total, rows = max(1, int(parquet.metadata.num_rows)), 0
            batches = parquet.iter_batches(batch_size=chunk_rows)
            for chunk in batches:
                rows += chunk.num_rows
                yield chunk, [], rows / total
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {exc}", file=path.name) from exc
