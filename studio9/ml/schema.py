"""A model's input schema, and the rows of an online prediction checked against it and made a frame.

A model version stores its input schema as ``[{"name", "type", "nullable"}, ...]``
(``ColumnSpec.to_json``): one entry per feature, in the order the model was trained on, with the
tables context's column types ``integer``, ``float``, ``boolean``, ``string``, ``timestamp`` and
``date``; ``nullable`` says the training rows held a null there.

``rows_to_frame(schema, rows)`` turns ``{"rows": [{...}, ...]}`` into the frame ``predict`` takes.
The rules, each broken one an ``InvalidInput`` naming the first offending row (0-based, as in
``rows[3]``) and column:

- 1 to ``MAX_ROWS`` rows, each a JSON object;
- every schema column present in every row (``rows[3]: column 'age' is missing``); other keys are
  ignored, so a client may send whole records and a model that uses fewer columns still answers;
- ``integer``: an int, or a float with no fractional part; ``float``: an int or a float (never a
  boolean); ``boolean``: true or false only; ``string``: a string only (a number is refused rather
  than guessed); ``timestamp``: an ISO 8601 string (``2024-05-01T12:30:00``, a date alone is its
  midnight, an offset or ``Z`` is converted to UTC) or a ``datetime``; ``date``: an ISO 8601 date
  string (``2024-05-01``) or a ``date``;
- null (``None``) where the column is ``nullable``, and in ``integer`` and ``float`` columns always:
  the model imputes a missing number the same way whether or not training saw one.

The frame has the schema's columns in order and these dtypes: ``float64`` for integers, floats and
booleans (1.0/0.0; the model scales all three as numbers, so a number is what it sees), ``object``
for strings (null: ``NaN``, as pandas' ``str`` columns give it), ``datetime64[us]`` for timestamps
(UTC, naive; null: ``NaT``) and ``object`` holding ``datetime.date`` for dates (as pyarrow gives
``date32``). The preprocessing of ``studio9.ml.engine`` reads these exactly as it reads the columns
of a training table, so a row predicted online gets the batch scoring answer.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Literal, get_args

import attrs

from studio9.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLUMN_TYPES",
    "MAX_ROWS",
    "ColumnSpec",
    "ColumnType",
    "rows_to_columns",
    "rows_to_frame",
    "schema_from_json",
    "schema_of",
    "schema_to_json",
]

ColumnType = Literal["integer", "float", "boolean", "string", "timestamp", "date"]
COLUMN_TYPES: Final = frozenset(get_args(ColumnType))
#: The most rows one online prediction takes; larger sets are a batch scoring job.
MAX_ROWS: Final = 10_000
#: Null is taken in these columns even when training saw none: the model imputes them.
IMPUTED_TYPES: Final = frozenset({"integer", "float"})

_BAD: Final = object()  # what a converter returns for a value of the wrong type
_EXPECTED: Final[dict[str, str]] = {
    "integer": "an integer",
    "float": "a number",
    "boolean": "true or false",
    "string": "a string",
    "timestamp": "an ISO 8601 timestamp",
    "date": "an ISO 8601 date",
}


def _check_type(instance: Any, attribute: Any, value: Any) -> None:
    if value not in COLUMN_TYPES:
        raise InvalidInput(
            f"column type {value!r} is not one of {', '.join(sorted(COLUMN_TYPES))}", field="type"
        )


@attrs.frozen
class ColumnSpec:
    """One input column of a model: its name, its type, and whether training saw a null in it."""

    name: str
    type: ColumnType = attrs.field(validator=_check_type)
    nullable: bool

    def to_json(self) -> dict[str, Any]:
        """The column as stored in a model version's ``input_schema``."""
        return {"name": self.name, "type": self.type, "nullable": self.nullable}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnSpec:
        """The column of a stored ``{"name", "type", "nullable"}`` object."""
        name, kind, nullable = data.get("name"), data.get("type"), data.get("nullable", True)
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"an input schema column needs a name, got {name!r}", field="name")
        if not isinstance(nullable, bool):
            raise InvalidInput(f"column {name!r}: nullable must be true or false", field="nullable")
        return cls(name, kind, nullable)  # type: ignore[arg-type]  # the validator checks it


def schema_to_json(schema: Sequence[ColumnSpec]) -> list[dict[str, Any]]:
    """The ``input_schema`` list of a model version's content."""
    return [column.to_json() for column in schema]


def schema_from_json(data: Sequence[Mapping[str, Any]]) -> tuple[ColumnSpec, ...]:
    """The columns of a stored ``input_schema`` list (names must be distinct)."""
    schema = tuple(ColumnSpec.from_json(item) for item in data)
    names = [column.name for column in schema]
    if len(set(names)) != len(names):
        raise InvalidInput("the input schema names a column twice", field="input_schema")
    return schema


def schema_of(frame: pd.DataFrame, features: Sequence[str]) -> tuple[ColumnSpec, ...]:
    """The input schema of ``features`` of a training frame, typed the way the training engine types
    them (``studio9.ml.engine.columns.column_type``); ``nullable``: a null occurs in ``frame``."""
    from studio9.ml.engine.columns import column_type

    schema = []
    for name in features:
        if name not in frame.columns:
            raise InvalidInput(f"feature {name!r} is not a column of the table", field="features")
        column = frame[name]
        kind = column_type(column)
        if kind is None:
            raise InvalidInput(f"feature {name!r} has dtype {column.dtype}, which models cannot use")
        schema.append(ColumnSpec(name, kind, bool(column.isna().any())))
    return tuple(schema)


def rows_to_frame(schema: Sequence[ColumnSpec], rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The frame of ``rows`` for ``predict``, checked against ``schema`` (rules and dtypes: module doc).

    Errors name the first offending row by its 0-based position: ``rows[2].age: expected a
    number, got 'abc'``.
    """
    plan, columns = _checked(schema, rows)
    return _frame(plan, columns, len(rows))


def rows_to_columns(schema: Sequence[ColumnSpec], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``rows_to_frame``'s columns as numpy arrays by name, without the frame (what the compiled
    scorer reads: building a DataFrame would cost more than scoring a row)."""
    plan, columns = _checked(schema, rows)
    return dict(zip(plan.names, _arrays(plan, columns, len(rows)), strict=True))


def _checked(
    schema: Sequence[ColumnSpec], rows: Sequence[Mapping[str, Any]]
) -> tuple[_Plan, list[list[Any]]]:
    given: Any = rows  # a JSON body: anything may come
    if isinstance(given, str | bytes) or not isinstance(given, Sequence):
        raise InvalidInput("rows must be a list of objects, one per row to predict", field="rows")
    if not rows:
        raise InvalidInput("rows is empty: send at least one row to predict", field="rows")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(
            f"{len(rows):,} rows is more than the {MAX_ROWS:,} one prediction takes; "
            "score larger sets with a batch scoring job",
            field="rows",
        )
    plan = _plan(tuple(schema))
    columns: list[list[Any]] = [[] for _ in plan.names]
    for i, row in enumerate(rows):
        if type(row) is not dict and not isinstance(row, Mapping):
            raise InvalidInput(f"rows[{i}]: expected an object, got {_shown(row)}", field="rows")
        for values, (name, convert, nullable, kind, null) in zip(columns, plan.checks, strict=True):
            value = row.get(name, _BAD)
            if value is None:
                if not nullable:
                    raise InvalidInput(
                        f"rows[{i}]{_path(name)}: expected {_EXPECTED[kind]}, got null", field="rows"
                    )
                values.append(null)
                continue
            if value is _BAD:
                raise InvalidInput(f"rows[{i}]: column {name!r} is missing", field="rows")
            converted = convert(value)
            if converted is _BAD:
                raise InvalidInput(
                    f"rows[{i}]{_path(name)}: expected {_EXPECTED[kind]}, got {_shown(value)}", field="rows"
                )
            values.append(converted)
    return plan, columns


@attrs.frozen
class _Plan:
    """What ``rows_to_frame`` needs of a schema, computed once per schema (``_plan`` caches it)."""

    names: tuple[str, ...]
    # (name, converter, null accepted, type, what a null becomes) per column
    checks: tuple[tuple[str, Callable[[Any], Any], bool, str, Any], ...]
    dtypes: tuple[str, ...]
    index: Any  # the frame's column index


@lru_cache(maxsize=256)
def _plan(schema: tuple[ColumnSpec, ...]) -> _Plan:
    import pandas as pd

    names = tuple(column.name for column in schema)
    checks = tuple(
        (c.name, _CONVERTERS[c.type], c.nullable or c.type in IMPUTED_TYPES, c.type, _NULLS[c.type])
        for c in schema
    )
    dtypes = tuple(_DTYPES[c.type] for c in schema)
    # An object index: pandas' str inference of the names would cost as much as the rest.
    return _Plan(names, checks, dtypes, pd.Index(list(names), dtype=object))


def _arrays(plan: _Plan, columns: list[list[Any]], length: int) -> list[Any]:
    import numpy as np

    arrays = []
    for values, dtype in zip(columns, plan.dtypes, strict=True):
        if dtype == "object":
            array = np.empty(length, dtype=object)  # filled, not built: no type inference
            array[:] = values
            arrays.append(array)
        else:
            arrays.append(np.array(values, dtype=dtype))
    return arrays


def _frame(plan: _Plan, columns: list[list[Any]], length: int) -> pd.DataFrame:
    import pandas as pd

    arrays = _arrays(plan, columns, length)
    index = pd.RangeIndex(length)
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is not None:
        # pandas' own column-wise constructor: a tenth of the cost of DataFrame(dict), which
        # re-infers every column (objects holding strings would turn into ``str``).
        frame: pd.DataFrame = from_arrays(arrays, columns=plan.index, index=index, verify_integrity=False)
        return frame
    return pd.DataFrame(  # pragma: no cover - only if a pandas release drops _from_arrays
        {name: pd.Series(a, index=index, dtype=a.dtype) for name, a in zip(plan.names, arrays, strict=True)}
    )


def _integer(value: Any) -> Any:
    kind = type(value)
    if kind is int:
        return _as_float(value)
    if kind is float:
        return value if value.is_integer() else _BAD
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return _BAD
    number = _as_float(value)
    return number if number is _BAD or float(number).is_integer() else _BAD


def _float(value: Any) -> Any:
    kind = type(value)
    if kind is float:
        return value
    if kind is int or (not isinstance(value, bool) and isinstance(value, numbers.Real)):
        return _as_float(value)
    return _BAD


def _as_float(value: Any) -> Any:
    try:
        return float(value)
    except (OverflowError, ValueError):
        return _BAD


def _boolean(value: Any) -> Any:
    return (1.0 if value else 0.0) if type(value) is bool else _BAD


def _string(value: Any) -> Any:
    return value if isinstance(value, str) else _BAD


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return _BAD
    elif not isinstance(value, dt.datetime):
        return _BAD
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _date(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return _BAD
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    return _BAD


_CONVERTERS: Final[dict[str, Callable[[Any], Any]]] = {
    "integer": _integer,
    "float": _float,
    "boolean": _boolean,
    "string": _string,
    "timestamp": _timestamp,
    "date": _date,
}
_DTYPES: Final[dict[str, str]] = {
    "integer": "float64",
    "float": "float64",
    "boolean": "float64",
    "string": "object",
    "timestamp": "datetime64[us]",
    "date": "object",
}
_NULLS: Final[dict[str, Any]] = {
    "integer": math.nan,
    "float": math.nan,
    "boolean": math.nan,
    "string": math.nan,  # as in pandas' str columns
    "timestamp": None,  # numpy makes it NaT
    "date": None,  # as in pyarrow's date32 columns
}


def _path(name: str) -> str:
    """``.age`` for a plain name, ``["unit price"]`` for any other."""
    return f".{name}" if name.isidentifier() else f"[{name!r}]"


def _shown(value: Any) -> str:
    """A value as the message shows it: JSON words for literals, a short repr for text."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, numbers.Number):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"
