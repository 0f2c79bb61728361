"""Column types of a training frame, the way the tables context names them, and target values.

``column_type`` maps a pandas column to ``integer``, ``float``, ``boolean``, ``string``,
``timestamp`` or ``date`` (the tables context's types; an ``object`` column is a timestamp or a
date when its first non-null value is a ``datetime``/``date``, else a string; a categorical is a
string), or None for dtypes models cannot use (durations, periods, intervals, complex numbers).
``column_kind`` groups those types for the preprocessor: numeric, categorical, datetime.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

__all__ = [
    "ColumnType",
    "Kind",
    "column_kind",
    "column_type",
    "input_schema",
    "python_scalar",
    "target_values",
]

ColumnType = Literal["integer", "float", "boolean", "string", "timestamp", "date"]
Kind = Literal["numeric", "categorical", "datetime"]
_KINDS: Final[dict[str, Kind]] = {
    "integer": "numeric",
    "float": "numeric",
    "boolean": "numeric",
    "string": "categorical",
    "timestamp": "datetime",
    "date": "datetime",
}


def column_type(series: pd.Series) -> ColumnType | None:
    """The Studio9 type of a pandas column, or None when models cannot use its dtype."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return "boolean"
    if ptypes.is_integer_dtype(dtype):
        return "integer"
    if ptypes.is_float_dtype(dtype):
        return "float"
    if ptypes.is_datetime64_any_dtype(dtype):
        # pyarrow's date32/date64 pass as datetime-like; their name tells them apart
        arrow_date = isinstance(dtype, pd.ArrowDtype) and str(dtype).startswith("date")
        return "date" if arrow_date else "timestamp"
    if isinstance(dtype, pd.CategoricalDtype) or (
        ptypes.is_string_dtype(dtype) and not ptypes.is_object_dtype(dtype)
    ):
        return "string"
    if ptypes.is_object_dtype(dtype):
        first = series.first_valid_index()
        value = None if first is None else series.loc[first]
        if isinstance(value, dt.datetime):  # before date: a datetime is a date too
            return "timestamp"
        if isinstance(value, dt.date):
            return "date"
        return "string"
    return None


def column_kind(series: pd.Series) -> Kind | None:
    """How the preprocessor treats a column: ``numeric``, ``categorical``, ``datetime``, or None."""
    kind = column_type(series)
    return None if kind is None else _KINDS[kind]


def input_schema(frame: pd.DataFrame, features: Sequence[str]) -> list[dict[str, Any]]:
    """``[{"name", "type", "nullable"}]`` of the features; ``nullable``: the column holds a null
    in ``frame`` (the training rows). Prediction imputes nulls in any column all the same."""
    schema = []
    for name in features:
        column = frame[name]
        schema.append({"name": name, "type": column_type(column), "nullable": bool(column.isna().any())})
    return schema


def target_values(series: pd.Series) -> Any:
    """A target column without nulls as a numpy array scikit-learn takes as ``y``: bool, int64,
    float64, or object (text; a categorical's values)."""
    dtype = series.dtype
    if ptypes.is_bool_dtype(dtype):
        return series.to_numpy(dtype=bool)
    if ptypes.is_integer_dtype(dtype):
        return series.to_numpy(dtype=np.int64)
    if ptypes.is_float_dtype(dtype):
        return series.to_numpy(dtype=np.float64)
    return series.to_numpy(dtype=object)


def python_scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (``numpy.int64(3)`` -> ``3``); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value
