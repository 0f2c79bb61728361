"""Reads of an imported table, over its Parquet part files: pages of rows, distinct values,
exports and column statistics.

``parts`` is the directory of an import (its ``part-*.parquet``, in name order) or the list of
part files in order. Every function streams: memory is a row group or a page, never the table.

* ``read_rows``: a page of rows (``studio9.tables.paging``: cursors, natural and column
  order) with a filter (``studio9.tables.filters``: the syntax).
* ``distinct_values``: a column's most frequent values (nulls left out), optionally only those
  whose text contains ``q`` (ignoring case); exact up to ``MAX_EXACT_DISTINCT`` distinct values,
  Misra-Gries counts past that (``approximate``).
* ``export``: the table as CSV (header line, ``,``, RFC 4180 quoting, nulls empty) or as one
  Parquet file (zstd), in chunks of bytes.
* ``column_stats``: the ``data.profile`` figures of every column (``studio9.tables.column_stats``)
  with 120-bin histograms, plus each column's variable type.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Final, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from studio9.errors import InvalidInput
from studio9.tables.column_stats import ColumnProfile, ProfileLimits
from studio9.tables.filters import parse_filter
from studio9.tables.paging import (
    Cursor,
    Order,
    decode_cursor,
    encode_cursor,
    natural_page,
    ordered_page,
)
from studio9.tables.parts import PartsArg, TableParts
from studio9.tables.sketches import HeavyHitters
from studio9.tables.values import ColumnSchema, DistinctValues, RowsPage, ValueCount

__all__ = ["HISTOGRAM_BINS", "MAX_LIMIT", "column_stats", "distinct_values", "export", "read_rows"]

MAX_LIMIT: Final = 1000
HISTOGRAM_BINS: Final = 120
MAX_EXACT_DISTINCT: Final = 100_000
EXPORT_CHUNK: Final = 1 << 20


def read_rows(
    parts: PartsArg,
    *,
    limit: int = 100,
    cursor: str | None = None,
    order: str | None = None,
    columns: Sequence[str] | None = None,
    filter: str | None = None,
) -> RowsPage:
    """One page of rows. ``order`` is ``column`` or ``column:asc|desc``; ``columns`` picks and
    orders the columns returned (all by default). ``InvalidInput`` names the bad argument."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    with TableParts(parts) as table:
        chosen = table.columns(columns)
        row_filter = parse_filter(filter, table.schema) if filter and filter.strip() else None
        filter_text = filter if row_filter is not None else None
        ordering = _order(order, table)
        after = decode_cursor(cursor, ordering, filter_text, table) if cursor else None
        if ordering is None:
            page, position = natural_page(table, chosen, row_filter, limit, after.position if after else 0)
            following = None if position is None else Cursor(position)
        else:
            page, following = ordered_page(table, chosen, row_filter, limit, ordering, after)
        next_cursor = None if following is None else encode_cursor(following, ordering, filter_text, table)
        return RowsPage(columns=tuple(chosen), rows=tuple(page.to_pylist()), next_cursor=next_cursor)


def _order(order: str | None, table: TableParts) -> Order | None:
    if order is None or not order.strip():
        return None
    name, _, direction = order.strip().rpartition(":") if ":" in order else (order.strip(), "", "asc")
    if direction.lower() not in ("asc", "desc"):
        name, direction = order.strip(), "asc"  # a column whose name holds a colon
    column = table.column(name, "order")
    if pa.types.is_nested(table.schema.field(column).type):
        raise InvalidInput(f"order: the column {column!r} cannot be ordered", field="order")
    return Order(column, direction.lower() == "desc")


def distinct_values(parts: PartsArg, column: str, q: str | None = None, limit: int = 50) -> DistinctValues:
    """The ``limit`` most frequent values of ``column`` (see the module doc)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    with TableParts(parts) as table:
        name = table.column(column, "column")
        exact: dict[Hashable, int] | None = {}
        heavy = HeavyHitters(max(1024, limit))
        for batch in table.batches([name]):
            values = batch.column(0).drop_null()
            if q:
                text = values if pa.types.is_string(values.type) else values.cast(pa.string())
                values = values.filter(pc.match_substring(text, pattern=q, ignore_case=True))
            counted = pc.value_counts(values)
            uniques, counts = counted.field("values"), counted.field("counts").to_numpy()
            if exact is not None:
                for value, count in zip(uniques.to_pylist(), counts.tolist(), strict=True):
                    exact[value] = exact.get(value, 0) + count
                if len(exact) > MAX_EXACT_DISTINCT:
                    heavy.add(exact.items())
                    exact = None
                continue
            keep, cut = HeavyHitters.cut(counts, heavy.capacity)
            survivors = uniques.take(pa.array(keep, type=pa.int64())).to_pylist()
            heavy.add(zip(survivors, (counts[keep] - cut).tolist(), strict=True), error=cut)
        items = list(exact.items()) if exact is not None else heavy.items()
        items.sort(key=lambda item: (-item[1], str(item[0])))
        return DistinctValues(
            column=name,
            values=tuple(ValueCount(value, count) for value, count in items[:limit]),
            approximate=exact is None,
            max_error=0 if exact is not None else heavy.max_error,
        )


def export(parts: PartsArg, format: Literal["csv", "parquet"]) -> Iterator[bytes]:
    """The table as ``format``, in chunks of about ``EXPORT_CHUNK`` bytes."""
    if format not in ("csv", "parquet"):
        raise InvalidInput(f"format must be 'csv' or 'parquet', not {format!r}", field="format")
    table = TableParts(parts)  # checked now, before the caller starts a response
    return _csv(table) if format == "csv" else _parquet(table)


def _csv(table: TableParts) -> Iterator[bytes]:
    with table:
        buffer = io.BytesIO()
        header = True
        for batch in table.batches(table.names):
            pcsv.write_csv(batch, buffer, write_options=pcsv.WriteOptions(include_header=header))
            header = False
            if buffer.tell() >= EXPORT_CHUNK:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        if header:  # no rows: the header line alone
            pcsv.write_csv(table.schema.empty_table(), buffer)
        if buffer.tell():
            yield buffer.getvalue()


class _Chunks(io.RawIOBase):
    """A write-only file that keeps what is written until it is taken."""

    def __init__(self) -> None:
        self.pending: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.pending.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.pending = b"".join(self.pending), []
        return data


def _parquet(table: TableParts) -> Iterator[bytes]:
    with table:
        if len(table.paths) == 1:  # already one zstd Parquet file: send it as it is
            with table.paths[0].open("rb") as handle:
                while data := handle.read(EXPORT_CHUNK):
                    yield data
            return
        sink = _Chunks()
        writer = pq.ParquetWriter(sink, table.schema, compression="zstd")
        try:
            for group in table.groups:
                writer.write_table(table.read(group, table.names))
                if data := sink.take():
                    yield data
        finally:
            writer.close()
        yield sink.take()


def column_stats(
    parts: PartsArg, schema: Sequence[ColumnSchema], *, progress: Callable[[float], None] | None = None
) -> dict[str, Any]:
    """``{"rows", "columns": [profile + "variable_type"]}``: the ``data.profile`` figures of each
    column of ``schema`` (in its order), with ``HISTOGRAM_BINS``-bin histograms."""
    with TableParts(parts) as table:
        names = [table.column(column.name, "schema") for column in schema]
        limits = ProfileLimits(histogram_bins=HISTOGRAM_BINS)
        profiles = [ColumnProfile(name, table.schema.field(name).type, limits) for name in names]
        rows = 0
        for batch in table.batches(names):
            for profile, values in zip(profiles, batch.columns, strict=True):
                profile.update(values)
            rows += batch.num_rows
            if progress is not None:
                progress(rows / table.total_rows)
        if progress is not None:
            progress(1.0)
        columns = [
            {**profile.result(), "variable_type": column.variable_type}
            for profile, column in zip(profiles, schema, strict=True)
        ]
        return {"rows": rows, "columns": columns}
