"""Readers of a source file for the import: CSV, JSON Lines and Parquet, a chunk at a time.

Each reader yields ``Chunk``s (``studio9.tables.chunks``): a record batch of the source's columns
under the table's column names, the data row number of each of its rows, the rows that did not
even parse, and the share of the file read so far. Memory is a few blocks, never the file.

* CSV: ``pyarrow.csv.open_csv`` (one thread: only then does pyarrow number the rows it cannot
  split), every column read as *binary* so that the UTF-8 check and the casts are ours and can
  name rows. Rows are records: a value spanning lines is one row; blank lines are no row.
* JSON Lines: ``studio9.tables.jsonl``.
* Parquet: ``ParquetFile.iter_batches``, one row group at a time, typed as stored.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from studio9.errors import InvalidInput
from studio9.tables.chunks import MAX_BLOCK, NO_ROWS, BadRow, Chunk, Retry, RowNumbers
from studio9.tables.jsonl import read_jsonl
from studio9.tables.profiling import printable
from studio9.tables.values import ImportOptions, SourceFormat, column_names

__all__ = ["BadRow", "Chunk", "Retry", "detect_format", "read_source"]

PARQUET_MAGIC: Final = b"PAR1"
PARQUET_BATCH: Final = 65_536


def detect_format(path: Path, requested: SourceFormat | None) -> SourceFormat:
    """The source's format; a missing, empty or mislabelled file is bad input."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
        raise InvalidInput(f"{path.name}: no such file", file=path.name) from exc
    if not head:
        raise InvalidInput(f"{path.name} is empty (0 bytes): there is nothing to import", file=path.name)
    is_parquet = head == PARQUET_MAGIC
    if requested == "parquet" or (requested is None and path.suffix.lower() in (".parquet", ".pq")):
        if not is_parquet:
            raise InvalidInput(f"{path.name} is not a Parquet file (no Parquet magic bytes)", file=path.name)
        return "parquet"
    if requested is None:
        if is_parquet:
            return "parquet"
        return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"
    if is_parquet:
        raise InvalidInput(f"{path.name} is a Parquet file, not {requested}", file=path.name)
    return requested


def read_source(
    path: Path, file_format: SourceFormat, options: ImportOptions, *, block_size: int, keys: Sequence[str]
) -> Iterator[Chunk]:
    """The chunks of ``path``; raises ``InvalidInput`` for unreadable input, ``Retry`` to go again."""
    if file_format == "parquet":
        return _parquet(path)
    if file_format == "jsonl":
        return read_jsonl(path, options, block_size, keys)
    return _csv(path, options, block_size)


# -- CSV --------------------------------------------------------------------------------------


def _arrow_encoding(encoding: str) -> str:
    return "utf8" if codecs.lookup(encoding).name == "utf-8" else encoding


def _csv_options(options: ImportOptions, block_size: int, on_invalid: Any = None) -> tuple[Any, Any]:
    read = pcsv.ReadOptions(
        block_size=block_size,
        use_threads=False,
        encoding=_arrow_encoding(options.encoding),
        autogenerate_column_names=not options.header,
    )
    parse = pcsv.ParseOptions(
        delimiter=options.delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
    )
    return read, parse


def _csv_header(path: Path, options: ImportOptions, block_size: int) -> list[str]:
    """The header's names as pyarrow parses them (``f0``… without a header)."""
    read, parse = _csv_options(options, block_size, lambda _: "skip")
    with pa.OSFile(str(path)) as source:
        try:
            reader = pcsv.open_csv(source, read_options=read, parse_options=parse)
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            raise _csv_error(exc, path, options, block_size) from exc
        try:
            return list(reader.schema.names)
        except UnicodeDecodeError:  # pyarrow decodes the header's bytes when asked for the names
            raise InvalidInput(
                f"{path.name}: the header line is not valid {options.encoding} text", field="encoding"
            ) from None
        finally:
            reader.close()


def _table_names(raw: list[str], options: ImportOptions, path: Path) -> list[str]:
    if options.header or not options.columns:
        return column_names(raw) if options.header else [f"column_{i}" for i in range(1, len(raw) + 1)]
    if len(options.columns) != len(raw):
        raise InvalidInput(
            f"{path.name} has {len(raw)} columns but {len(options.columns)} are declared: without a "
            "header, columns must name every column in order",
            field="columns",
        )
    return [column.name for column in options.columns]


def _csv(path: Path, options: ImportOptions, block_size: int) -> Iterator[Chunk]:
    raw = _csv_header(path, options, block_size)
    names = _table_names(raw, options, path)
    pending: list[tuple[int, int, int, str]] = []  # (row, expected, actual, text)
    header_rows = 1 if options.header else 0

    def on_invalid(row: Any) -> str:
        number = -1 if row.number is None else int(row.number) - header_rows
        pending.append((number, int(row.expected_columns), int(row.actual_columns), str(row.text)))
        return "skip"

    read, parse = _csv_options(options, block_size, on_invalid)
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(raw, pa.binary()),
        null_values=list(options.null_values),
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )
    with pa.OSFile(str(path)) as source:
        size = max(1, source.size())
        try:
            reader = pcsv.open_csv(source, read_options=read, parse_options=parse, convert_options=convert)
        except (pa.ArrowException, UnicodeDecodeError) as exc:
            raise _csv_error(exc, path, options, block_size) from exc
        try:
            start, blocks = 1, 0
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowException, UnicodeDecodeError) as exc:
                    raise _csv_error(exc, path, options, block_size) from exc
                blocks += 1
                batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
                # pyarrow parses a block ahead: the ragged rows reported so far may lie further on.
                rows, invalid, start = _numbered(start, batch.num_rows, pending, names)
                yield Chunk(batch, rows, invalid, min(blocks * block_size, source.tell()) / size)
            if pending or blocks == 0:  # ragged rows after the last good one; or a header alone
                empty = pa.RecordBatch.from_pylist([], schema=pa.schema([(n, pa.binary()) for n in names]))
                _, invalid, _ = _numbered(start, 0, pending, names)
                yield Chunk(empty, NO_ROWS, invalid, 1.0)
        finally:
            reader.close()


def _numbered(
    start: int, count: int, pending: list[tuple[int, int, int, str]], names: list[str]
) -> tuple[RowNumbers, list[BadRow], int]:
    """Row numbers of a batch of ``count`` good rows from ``start``, and the ragged rows among
    them (taken out of ``pending``); returns the next batch's start too."""
    pending.sort()
    end, mine = start + count, []
    while pending and (pending[0][0] < end or count == 0):
        number, expected, actual, text = pending.pop(0)
        mine.append((number if number >= start else end, expected, actual, text))
        end += 1
    numbers = np.arange(start, end, dtype=np.int64)
    if mine:
        numbers = np.setdiff1d(numbers, [m[0] for m in mine], assume_unique=True)
    return numbers, [_ragged(*m, names) for m in mine], end


def _ragged(row: int, expected: int, actual: int, text: str, names: list[str]) -> BadRow:
    values = "value" if actual == 1 else "values"
    if actual < expected:
        missing = names[actual]
        reason = (
            f"the row has {actual} {values} where {expected} columns are expected ({missing!r} is missing)"
        )
        return BadRow(row, missing, reason, text)
    reason = f"the row has {actual} {values} where {expected} columns are expected"
    return BadRow(row, None, f"{reason} (extra values after {names[-1]!r})", text)


def _csv_error(exc: Exception, path: Path, options: ImportOptions, block_size: int) -> Exception:
    message = printable(str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return InvalidInput(f"{path.name} is not valid {options.encoding} text: {message}", field="encoding")
    if "straddl" in message:  # a row longer than the block
        if block_size >= MAX_BLOCK:
            return InvalidInput(f"{path.name} has a row longer than {MAX_BLOCK >> 20} MiB", file=path.name)
        return Retry(f"a row is longer than {block_size} bytes", block_size=min(MAX_BLOCK, block_size * 4))
    if "Empty CSV" in message:
        return InvalidInput(f"{path.name} has no header line", file=path.name)
    return InvalidInput(f"{path.name} is not a readable CSV file: {message}", file=path.name)


# -- Parquet ----------------------------------------------------------------------------------


def _parquet(path: Path) -> Iterator[Chunk]:
    with pa.OSFile(str(path)) as source:
        try:
            parquet = pq.ParquetFile(source)
            total = max(1, int(parquet.metadata.num_rows))
            names = column_names(parquet.schema_arrow.names)
            batches = parquet.iter_batches(batch_size=PARQUET_BATCH)
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInput(f"{path.name} is not a readable Parquet file: {printable(str(exc))}") from exc
        start = 1
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                if start == 1:  # no rows: the schema alone
                    batch = pa.RecordBatch.from_pylist([], schema=parquet.schema_arrow)
                    yield Chunk(pa.RecordBatch.from_arrays(batch.columns, names=names), NO_ROWS, [], 1.0)
                return
            except (pa.ArrowException, OSError) as exc:
                raise InvalidInput(
                    f"{path.name} is not a readable Parquet file: {printable(str(exc))}"
                ) from exc
            batch = pa.RecordBatch.from_arrays(batch.columns, names=names)
            rows = np.arange(start, start + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            yield Chunk(batch, rows, [], (start - 1) / total)
