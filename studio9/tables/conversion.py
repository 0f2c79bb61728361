"""Column types of the table engine: inference from text, casts that name the rows that do not fit.

Every column type has one Arrow type (``ARROW_TYPES``). Text (CSV cells, JSON Lines values) is
converted with ``pyarrow.compute.cast`` after trimming white space, and inference uses the very
same casts, so what inference accepts the import accepts.

Inference (``infer``), on a sample (the first block of a file), ignoring nulls: the first of
integer, float, boolean (``true``/``false``, any case), date (``YYYY-MM-DD``), timestamp
(ISO 8601 without a zone), timestamp with a zone (stored in UTC) that every sampled value casts
to; string otherwise, and when the sample has no value at all. A JSON string value is never
inferred a number or a boolean (``"00123"`` stays text).

Variable type (``variable_type``): string and boolean columns are categorical; float, date and
timestamp columns continuous; an integer column is categorical when its sample holds at most
``CATEGORICAL_MAX`` distinct values and each appears at least twice on average (codes, ratings,
flags), else continuous.

Widening (``wider``, ``join``): when a later block has a value that the *inferred* type does not
take, the column becomes the narrowest wider type that takes it: integer → float → string,
date → timestamp → timestamp with a zone → string, anything else → string (the import then
reads the file again). A declared type never widens: the value fails the import (or is
rejected).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from studio9.errors import InvalidInput
from studio9.tables.profiling import printable
from studio9.tables.values import ColumnType, VariableType

__all__ = [
    "ARROW_TYPES",
    "CATEGORICAL_MAX",
    "Converted",
    "column_type_of",
    "convert",
    "infer",
    "join",
    "variable_type",
    "wider",
]

TIMESTAMP: Final = pa.timestamp("us")
TIMESTAMP_UTC: Final = pa.timestamp("us", "UTC")
ARROW_TYPES: Final[dict[ColumnType, pa.DataType]] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": TIMESTAMP,
}
CATEGORICAL_MAX: Final = 10
_NUMERIC_OR_BOOL: Final = frozenset({pa.int64(), pa.float64(), pa.bool_()})
_INFERENCE: Final = (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), TIMESTAMP, TIMESTAMP_UTC)
_JOINS: Final = (
    ({pa.int64(), pa.float64()}, pa.float64()),
    ({pa.date32(), TIMESTAMP}, TIMESTAMP),
    ({pa.date32(), TIMESTAMP_UTC}, TIMESTAMP_UTC),
)
_CAST_ERRORS: Final = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


def column_type_of(arrow_type: pa.DataType) -> ColumnType:
    """The column type of one of ``ARROW_TYPES`` (or any timestamp)."""
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    for name, candidate in ARROW_TYPES.items():
        if candidate == arrow_type:
            return name
    raise ValueError(f"not a table column type: {arrow_type}")


def arrow_type_for_source(arrow_type: pa.DataType, column: str) -> pa.DataType:
    """The table type a typed source column (Parquet) maps to; nested types are refused."""
    t = pa.types
    if t.is_dictionary(arrow_type):
        return arrow_type_for_source(arrow_type.value_type, column)
    if t.is_integer(arrow_type):
        return pa.int64()
    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return pa.float64()
    if t.is_boolean(arrow_type):
        return pa.bool_()
    if t.is_date(arrow_type):
        return pa.date32()
    if t.is_timestamp(arrow_type):
        return TIMESTAMP_UTC if arrow_type.tz is not None else TIMESTAMP
    if t.is_nested(arrow_type):
        raise InvalidInput(f"column {column!r} has the nested type {arrow_type}, which tables do not support")
    return pa.string()  # text, binary (checked as UTF-8), null, times, durations


def infer(sample: pa.Array, *, quoted: bool = False) -> pa.DataType:
    """The narrowest type every non-null value of a text sample casts to (see the module doc)."""
    values = _trimmed(sample.drop_null())
    if len(values) == 0:
        return pa.string()
    for candidate in _INFERENCE:
        if quoted and candidate in _NUMERIC_OR_BOOL:
            continue
        try:
            values.cast(candidate)
        except _CAST_ERRORS:
            continue
        return candidate
    return pa.string()


def variable_type(column_type: ColumnType, sample: pa.Array | None) -> VariableType:
    """Continuous or categorical, by the rule in the module doc; ``sample`` is typed values."""
    if column_type in ("string", "boolean"):
        return "categorical"
    if column_type != "integer" or sample is None:
        return "continuous"
    values = sample.drop_null()
    distinct = len(pc.unique(values))
    return "categorical" if 0 < distinct <= CATEGORICAL_MAX and len(values) >= 2 * distinct else "continuous"


def wider(current: pa.DataType, values: pa.Array) -> pa.DataType:
    """The narrowest type above ``current`` that every value of ``values`` casts to."""
    for candidate in _widenings(current):
        if candidate == pa.string():
            return candidate
        try:
            _cast(values.drop_null(), candidate)
        except _CAST_ERRORS:
            continue
        return candidate
    return pa.string()


def join(one: pa.DataType, other: pa.DataType) -> pa.DataType:
    """The narrowest type that holds the values of both (what two blocks' widenings agree on)."""
    if one == other:
        return one
    for pair, joined in _JOINS:
        if {one, other} <= pair:
            return joined
    return pa.string()


def _widenings(current: pa.DataType) -> tuple[pa.DataType, ...]:
    if current == pa.int64():
        return (pa.float64(), pa.string())
    if current == pa.date32():
        return (TIMESTAMP, TIMESTAMP_UTC, pa.string())
    return (pa.string(),)


class Converted:
    """A column cast to its type: ``values`` (null where a value did not fit) and the positions
    and reasons of the values that did not fit."""

    __slots__ = ("bad", "values")

    def __init__(self, values: pa.Array, bad: dict[int, str]) -> None:
        self.values = values
        self.bad = bad


def convert(values: pa.Array, target: pa.DataType, *, first_only: bool = False) -> Converted:
    """``values`` cast to ``target``; a value that does not fit is reported, not raised.

    Text is trimmed before a cast to a non-text type; binary must be UTF-8. ``first_only``
    stops at the first misfit (a failing import needs no more), else every one is found.
    """
    try:
        return Converted(_cast(values, target), {})
    except _CAST_ERRORS:
        pass
    bad = _locate(values, lambda part: _fits(part, target), first_only=first_only)
    reasons = {index: _reason(values[index], target) for index in bad}
    keep = np.ones(len(values), dtype=bool)
    keep[bad] = False
    kept = pc.if_else(pa.array(keep), values, pa.scalar(None, type=values.type))
    try:
        return Converted(_cast(kept, target), reasons)
    except _CAST_ERRORS:  # first_only found one misfit; the caller fails on it, the rest is moot
        return Converted(pa.nulls(len(values), type=target), reasons)


def _cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    source = values.type
    if source == target:
        return values
    if (pa.types.is_string(source) or pa.types.is_large_string(source)) and target != pa.string():
        values = _trimmed(values)
    elif pa.types.is_timestamp(source) and pa.types.is_timestamp(target):
        return values.cast(target, safe=False)  # nanoseconds are truncated to microseconds
    return values.cast(target)


def _trimmed(values: pa.Array) -> pa.Array:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return pc.utf8_trim_whitespace(values)
    return values


def _fits(values: pa.Array, target: pa.DataType) -> bool:
    try:
        _cast(values, target)
    except _CAST_ERRORS:
        return False
    return True


def _locate(values: pa.Array, fits: Callable[[pa.Array], bool], *, first_only: bool) -> list[int]:
    """Positions of the values that do not fit, by bisection: O(misfits · log n) casts, each
    vectorised, instead of one cast per value."""
    bad: list[int] = []
    stack = [(0, len(values))]
    while stack:
        start, length = stack.pop()
        if length == 0 or fits(values.slice(start, length)):
            continue
        if length == 1:
            bad.append(start)
            if first_only:
                break
            continue
        half = length // 2
        stack += [(start + half, length - half), (start, half)]  # the left half is popped first
    return sorted(bad)


def _reason(value: pa.Scalar, target: pa.DataType) -> str:
    raw = value.as_py()
    if isinstance(raw, bytes):
        return "the value is not valid UTF-8 text" if target == pa.string() else "the value is not text"
    shown = printable(str(raw), 80)
    names = {"integer": "an integer", "float": "a number", "boolean": "a boolean (true/false)"}
    if pa.types.is_timestamp(target) and target.tz is not None:
        kind = "a timestamp with a time zone"
    elif pa.types.is_timestamp(target):
        kind = "a timestamp without a time zone"
    else:
        name = column_type_of(target)
        kind = names.get(name, f"a {name}")
    return f"{shown!r} is not {kind}"


def storable_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with the types a table column has: DuckDB's decimals (``sum`` of integers is a
    HUGEINT, a ``DECIMAL(38,0)`` in Arrow) become 64-bit integers when they have no fraction and
    floats otherwise, as a user reading an integer sum expects."""

    def storable(arrow_type: pa.DataType) -> pa.DataType:
        if pa.types.is_decimal(arrow_type):
            return pa.int64() if arrow_type.scale == 0 else pa.float64()
        return arrow_type

    return pa.schema([field.with_type(storable(field.type)) for field in schema])


def stored_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch cast to ``schema`` (``storable_schema``). Raises InvalidInput naming the column
    whose value does not fit a 64-bit integer."""
    if batch.schema.equals(schema):
        return batch
    try:
        return batch.cast(schema, safe=True)
    except pa.ArrowInvalid:
        for field, column in zip(schema, batch.columns, strict=True):
            try:
                column.cast(field.type, safe=True)
            except pa.ArrowInvalid:
                raise InvalidInput(
                    f"column {field.name!r} has a value beyond a 64-bit integer; cast it to DOUBLE",
                    field="sql",
                ) from None
        raise
