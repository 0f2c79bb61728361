"""Pages of a table's rows: opaque cursors, the natural order and the order of a column.

Natural order (no ``order``): the cursor holds the *position* of the next row to look at. The
footers map it to its row group (``TableParts``), so a page at any depth decodes only the row
groups it returns: a deep page costs what the first does (one 65,536-row group: ~10 ms for a
handful of columns). With a filter, a page decodes row groups from the cursor on until it has
``limit`` matches or has looked at ``MAX_SCAN_ROWS`` rows; it may then hold fewer rows and still
carry a cursor, which goes on from where it stopped.

Column order (``order="col"`` or ``"col:desc"``): keyset paging on ``(value, position)``; nulls
(and a float's NaN) come last in both directions, in natural order. Each page reads the order
column (and the filter's) of the *whole* table, keeping the best ``limit + 1`` keys per row group
(``select_k``), then decodes the row groups holding the chosen rows: O(rows) per page in time,
O(limit) in memory. Fine up to a few million rows; beyond, use SQL (a sorted derived table).

A cursor is URL-safe base64 of a short JSON array; it carries a digest of the query (order,
filter, the table's size and columns), so a cursor from another query or table is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from typing import Any, Final

import attrs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from studio9.errors import InvalidInput
from studio9.tables.filters import RowFilter
from studio9.tables.parts import RowGroup, TableParts

__all__ = [
    "MAX_SCAN_ROWS",
    "Cursor",
    "Order",
    "decode_cursor",
    "encode_cursor",
    "natural_page",
    "ordered_page",
]

MAX_SCAN_ROWS: Final = 2_000_000
MAX_CURSOR: Final = 16_384
_POSITION: Final = "\x00position"  # never a column's name: names hold no control characters
_KEY: Final = "\x00key"


@attrs.frozen
class Order:
    column: str
    descending: bool


@attrs.frozen
class Cursor:
    """Where the next page starts: a position (natural order), or the last row's key."""

    position: int
    null: bool = False
    key: Any = None


def _digest(order: Order | None, row_filter: str | None, table: TableParts) -> str:
    facts = [order and [order.column, order.descending], row_filter, table.total_rows, table.names]
    return hashlib.blake2b(json.dumps(facts).encode(), digest_size=6).hexdigest()


def encode_cursor(cursor: Cursor, order: Order | None, row_filter: str | None, table: TableParts) -> str:
    fields: list[Any] = [1, _digest(order, row_filter, table), cursor.position]
    if order is not None:
        fields += [int(cursor.null), cursor.key]
    return base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str, order: Order | None, row_filter: str | None, table: TableParts) -> Cursor:
    """The cursor of ``text``; ``InvalidInput`` (field ``cursor``) unless this query made it."""
    bad = InvalidInput("cursor is not a cursor of this query: start again without it", field="cursor")
    if len(text) > MAX_CURSOR:
        raise bad
    try:
        fields = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error):
        raise bad from None
    size = 5 if order is not None else 3
    if (
        not isinstance(fields, list)
        or len(fields) != size
        or fields[:2] != [1, _digest(order, row_filter, table)]
    ):
        raise bad
    position = fields[2]
    if not isinstance(position, int) or isinstance(position, bool) or not 0 <= position <= table.total_rows:
        raise bad
    if order is None:
        return Cursor(position)
    null, key = fields[3], fields[4]
    if null not in (0, 1) or not isinstance(key, int | float | str | None) or (null == 0) == (key is None):
        raise bad
    return Cursor(position, bool(null), key)


def _with_positions(table: pa.Table, first: int) -> pa.Table:
    return table.append_column(_POSITION, pa.array(np.arange(first, first + table.num_rows, dtype=np.int64)))


def natural_page(
    table: TableParts, columns: Sequence[str], row_filter: RowFilter | None, limit: int, position: int
) -> tuple[pa.Table, int | None]:
    """Up to ``limit`` rows from ``position`` on, and the next position (``None`` at the end)."""
    pieces: list[pa.Table] = []
    wanted, scanned, end = limit, 0, position
    needed = list(dict.fromkeys([*columns, *(row_filter.columns if row_filter else ())]))
    for group in table.from_position(position):
        if group.rows == 0 or group.first + group.rows <= position:
            continue
        offset = max(0, position - group.first)
        if row_filter is None:
            rows = table.read(group, columns).slice(offset, wanted)
            end = group.first + offset + rows.num_rows
        else:
            found = _with_positions(table.read(group, needed).slice(offset), group.first + offset)
            rows = found.filter(row_filter.expression).slice(0, wanted)
            scanned += group.rows - offset
            end = rows[_POSITION][-1].as_py() + 1 if rows.num_rows == wanted else group.first + group.rows
            rows = rows.select(list(columns))
        pieces.append(rows)
        wanted -= rows.num_rows
        if wanted == 0 or scanned >= MAX_SCAN_ROWS:
            break
    page = pa.concat_tables(pieces) if pieces else table.schema.empty_table().select(list(columns))
    return page, (end if end < table.total_rows else None)


def _keys(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Order keys: ints, floats (NaN as null) or strings, comparable with a cursor's JSON key."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    kind = values.type
    if pa.types.is_floating(kind):
        values = values.cast(pa.float64())
        return pc.if_else(pc.is_nan(values), pa.scalar(None, pa.float64()), values)
    if pa.types.is_date32(kind):
        return values.view(pa.int32()).cast(pa.int64())
    if pa.types.is_timestamp(kind) or pa.types.is_date64(kind):
        return values.view(pa.int64())
    if pa.types.is_boolean(kind) or pa.types.is_integer(kind):
        return values.cast(pa.int64())
    return values.cast(pa.string())


def ordered_page(
    table: TableParts,
    columns: Sequence[str],
    row_filter: RowFilter | None,
    limit: int,
    order: Order,
    after: Cursor | None,
) -> tuple[pa.Table, Cursor | None]:
    """Up to ``limit`` rows after ``after`` in ``order``, and the cursor of the next page."""
    direction = "descending" if order.descending else "ascending"
    sort_keys = [(_KEY, direction), (_POSITION, "ascending")]
    best = pa.table({_KEY: pa.array([], type=_key_type(table, order)), _POSITION: pa.array([], pa.int64())})
    nulls: list[int] = []
    needed = list(dict.fromkeys([order.column, *(row_filter.columns if row_filter else ())]))
    for group in table.groups:
        if group.rows == 0:
            continue
        found = _with_positions(table.read(group, needed), group.first)
        if row_filter is not None:
            found = found.filter(row_filter.expression)
        keys, positions = _keys(found[order.column]), found[_POSITION].combine_chunks()
        candidates = pa.table({_KEY: keys, _POSITION: positions})
        valid = pc.is_valid(keys)
        if after is None or not after.null:
            chosen = candidates.filter(_beyond(valid, keys, positions, order, after))
            merged = pa.concat_tables([best, chosen])
            best = merged.take(pc.select_k_unstable(merged, k=limit + 1, sort_keys=sort_keys))
        if len(nulls) <= limit:
            missing = pc.invert(valid)
            if after is not None and after.null:
                missing = pc.and_(missing, pc.greater(positions, after.position))
            nulls += positions.filter(missing).to_pylist()[: limit + 1 - len(nulls)]
    best = best.take(pc.sort_indices(best, sort_keys=sort_keys))
    chosen_keys = [(False, key, position) for key, position in zip(*best.to_pydict().values(), strict=True)]
    chosen_keys += [(True, None, position) for position in nulls]
    more = len(chosen_keys) > limit
    chosen_keys = chosen_keys[:limit]
    page = _fetch(table, columns, [position for _, _, position in chosen_keys])
    if not more:
        return page, None
    null, key, position = chosen_keys[-1]
    return page, Cursor(position, null, key)


def _key_type(table: TableParts, order: Order) -> pa.DataType:
    return _keys(table.schema.empty_table()[order.column]).type


def _beyond(
    valid: pa.Array, keys: pa.Array, positions: pa.Array, order: Order, after: Cursor | None
) -> pa.Array:
    """Which non-null keys come after the cursor's ``(key, position)``."""
    if after is None:
        return valid
    key = pa.scalar(after.key).cast(keys.type)
    past = pc.less(keys, key) if order.descending else pc.greater(keys, key)
    tie = pc.and_(pc.equal(keys, key), pc.greater(positions, after.position))
    return pc.and_(valid, pc.fill_null(pc.or_(past, tie), False))


def _fetch(table: TableParts, columns: Sequence[str], positions: list[int]) -> pa.Table:
    """The rows at ``positions``, in that order, decoding each row group involved once."""
    if not positions:
        return table.schema.empty_table().select(list(columns))
    by_group: dict[RowGroup, list[int]] = {}
    for position in sorted(positions):
        group = next(table.from_position(position))
        while group.first + group.rows <= position:  # empty row groups share a first position
            group = table.groups[table.groups.index(group) + 1]
        by_group.setdefault(group, []).append(position)
    pieces, order = [], []
    for group, wanted in by_group.items():
        rows = table.read(group, columns).take(pa.array([p - group.first for p in wanted], type=pa.int64()))
        pieces.append(rows)
        order += wanted
    fetched = pa.concat_tables(pieces)
    at = {position: index for index, position in enumerate(order)}
    return fetched.take(pa.array([at[p] for p in positions], type=pa.int64()))
