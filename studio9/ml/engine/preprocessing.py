"""The preprocessing half of every model, and the rules a training frame must pass first.

``build_preprocessor(frame, features)`` returns this ``ColumnTransformer`` (exactly; a test
rebuilds it by hand), with the features grouped by their pandas dtype, each group in ``features``
order and left out when empty::

    ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), <integer, float, boolean columns>),
        ("categorical", Pipeline([("nan", SimpleImputer(strategy="constant", fill_value=MISSING_TEXT)),
                                  ("none", SimpleImputer(missing_values=None, strategy="constant",
                                                         fill_value=MISSING_TEXT)),
                                  ("impute", SimpleImputer(missing_values=MISSING_TEXT,
                                                           strategy="most_frequent")),
                                  ("encode", OneHotEncoder(handle_unknown="infrequent_if_exist",
                                                           max_categories=64, sparse_output=False))]),
         <string, categorical and other object columns>),
        ("datetime", Pipeline([("micros", ColumnTransformer([(<column>, FunctionTransformer(numpy.asarray,
                                   kw_args={"dtype": "datetime64[us]"}, feature_names_out="one-to-one"),
                                   [<column>]) for each column], verbose_feature_names_out=False)),
                               ("float", FunctionTransformer(numpy.asarray, kw_args={"dtype": "float64"},
                                                             feature_names_out="one-to-one")),
                               ("impute", SimpleImputer(missing_values=MISSING_MICROS, strategy="median")),
                               ("scale", StandardScaler())]), <timestamp and date columns>),
    ], remainder="drop")

Only scikit-learn and numpy are named, so a model file loads wherever those (and skops) are:
no Studio9 code is needed to score with it. Text: a missing cell is ``NaN`` or ``None`` (an object
column holds either), and scikit-learn's imputers take one marker each, so both are first marked
``MISSING_TEXT`` (a NUL-led text no table holds), which the most-frequent imputer then fills.
Times: each column is read by numpy as whole microseconds since 1970-01-01 UTC (naive times
count as UTC, aware ones are converted, a date is its midnight, finer units are floored, an ISO
8601 string is parsed, ``None`` is missing but a ``NaN`` among strings is refused), one column
at a time (a frame of mixed time dtypes would become objects, where numpy refuses pandas'
``NaT``); a missing time is numpy's ``NaT``, which is ``MISSING_MICROS`` as a float, and is
imputed like a missing number.

``text_columns(frame, names)`` (applied by the engine before the pipeline, in training and in
``predict_frame``) turns a text column holding anything but text into pandas' ``str`` dtype
(``str(value)``; missing stays missing): numbers in an object column, a categorical of numbers,
decimals, and pandas' ``string`` dtype (whose ``NA`` the encoders refuse). Online rows are text
already. Models trained before the pipeline named only scikit-learn and numpy hold
``FunctionTransformer(to_text)`` and ``FunctionTransformer(to_seconds)`` instead of the ``nan``/``none``
and ``micros``/``float`` steps; both functions stay here so that those files still load.

Column types are ``studio9.ml.engine.columns.column_type``'s (the tables context's types);
a column of a dtype models cannot use is refused by ``check_features``, whose rules follow.

``check_features(frame, spec)`` refuses, each with an ``InvalidInput`` naming the column: a target
that is not a column (the message lists up to 20 columns); a target null in every row; a target
with one distinct value (nulls left out); a target that is not a number, boolean or text; a
feature that is not a column, is the target, has an unusable dtype, or is null in every row; a
text feature with more than 1,000 distinct values and more distinct values than half the rows (an
identifier); a weight column that is missing, the target, not numeric, null, infinite or negative
somewhere, or zero everywhere; ``binary`` on a target without exactly 2 classes, ``multiclass``
with fewer than 3 or more than 1,000; ``regression`` on a non-numeric target; a class with a single
row (the stratified hold-out split needs 2). Rows whose target is null are not counted (``train``
drops them). ``task="auto"`` picks: a float target with more than 20 distinct values or a
non-integral value -> regression; else 2 distinct values -> binary; else at most 50 distinct
values -> multiclass; else a numeric target -> regression, and text -> refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, cast

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
)

from studio9.errors import InvalidInput
from studio9.ml.engine.columns import Kind, column_kind, column_type, python_scalar, target_values
from studio9.ml.engine.spec import Task, TrainSpec

__all__ = [
    "MISSING_MICROS",
    "MISSING_TEXT",
    "build_preprocessor",
    "categorical_columns",
    "check_features",
    "text_columns",
    "to_seconds",
    "to_text",
]

MAX_CATEGORIES: Final = 64
#: A text feature with more distinct values than this, and than half the rows, is an identifier.
MAX_IDENTIFIER_DISTINCT: Final = 1_000
#: ``task="auto"``: at most this many classes; a float target at most ``AUTO_MAX_FLOAT_CLASSES``.
AUTO_MAX_CLASSES: Final = 50
AUTO_MAX_FLOAT_CLASSES: Final = 20
MAX_CLASSES: Final = 1_000
MAX_LISTED_COLUMNS: Final = 20
#: A missing text cell, marked so (module doc); no table holds text starting with NUL.
MISSING_TEXT: Final = "\x00missing"
#: numpy's ``NaT`` (int64's minimum) as the ``float`` step makes it: how a missing time arrives.
MISSING_MICROS: Final = float(np.iinfo(np.int64).min)
_EPOCH_US: Final = np.datetime64(0, "us")


def to_text(X: Any) -> Any:
    """Text cells as ``str`` and missing cells as ``NaN``, in an object array: the text step of
    models trained before the ``nan``/``none`` steps (kept so that their files load)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    out = np.empty(frame.shape, dtype=object)
    for j in range(frame.shape[1]):
        values = frame.iloc[:, j].to_numpy(dtype=object, na_value=np.nan)
        missing = pd.isna(values)
        out[:, j] = [
            np.nan if gone else value if isinstance(value, str) else str(value)
            for value, gone in zip(values, missing, strict=True)
        ]
    return out


def to_seconds(X: Any) -> Any:
    """Times as float seconds since 1970-01-01 UTC, missing as ``NaN`` (``pandas.to_datetime(utc=True)``,
    unreadable values missing, taken to whole microseconds): the time step of models trained before
    the ``micros`` step (kept so that their files load)."""
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(X)
    out = np.empty(frame.shape, dtype=np.float64)
    for j in range(frame.shape[1]):
        times = pd.to_datetime(frame.iloc[:, j], utc=True, errors="coerce")
        micros = times.dt.as_unit("us").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
        seconds = (micros - _EPOCH_US).astype(np.int64).astype(np.float64) / 1e6
        seconds[pd.isna(micros)] = np.nan
        out[:, j] = seconds
    return out


def _as_micros() -> FunctionTransformer:
    return FunctionTransformer(
        np.asarray, kw_args={"dtype": "datetime64[us]"}, feature_names_out="one-to-one"
    )


def build_preprocessor(frame: pd.DataFrame, features: Sequence[str]) -> Any:
    """The unfitted ``ColumnTransformer`` for ``features`` of ``frame`` (the recipe is the module doc)."""
    groups: dict[Kind, list[str]] = {"numeric": [], "categorical": [], "datetime": []}
    for name in features:
        kind = column_kind(frame[name])
        if kind is None:
            raise InvalidInput(f"feature {name!r} has dtype {frame[name].dtype}, which models cannot use")
        groups[kind].append(name)
    transformers = []
    if groups["numeric"]:
        numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        transformers.append(("numeric", numeric, groups["numeric"]))
    if groups["categorical"]:
        categorical = Pipeline(
            [
                ("nan", SimpleImputer(strategy="constant", fill_value=MISSING_TEXT)),
                ("none", SimpleImputer(missing_values=None, strategy="constant", fill_value=MISSING_TEXT)),
                ("impute", SimpleImputer(missing_values=MISSING_TEXT, strategy="most_frequent")),
                (
                    "encode",
                    OneHotEncoder(
                        handle_unknown="infrequent_if_exist",
                        max_categories=MAX_CATEGORIES,
                        sparse_output=False,
                    ),
                ),
            ]
        )
        transformers.append(("categorical", categorical, groups["categorical"]))
    if groups["datetime"]:
        # One column at a time: numpy reads each dtype natively (module doc).
        each = [(name, _as_micros(), [name]) for name in groups["datetime"]]
        times = Pipeline(
            [
                ("micros", ColumnTransformer(each, verbose_feature_names_out=False)),
                (
                    "float",
                    FunctionTransformer(
                        np.asarray, kw_args={"dtype": "float64"}, feature_names_out="one-to-one"
                    ),
                ),
                ("impute", SimpleImputer(missing_values=MISSING_MICROS, strategy="median")),
                ("scale", StandardScaler()),
            ]
        )
        transformers.append(("datetime", times, groups["datetime"]))
    return ColumnTransformer(transformers, remainder="drop")


def categorical_columns(pipeline: Any) -> list[str]:
    """The text columns of a fitted Studio9 pipeline (its ``categorical`` block); none for others."""
    steps = getattr(pipeline, "steps", None)
    for name, _, columns in getattr(steps[0][1], "transformers_", []) if steps else []:
        if name == "categorical" and isinstance(columns, list):
            return columns
    return []


def text_columns(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` with those of ``names`` that hold anything but text in pandas' ``str`` dtype (module doc)."""
    changed = {name: frame[name].astype("str") for name in names if not _plain_text(frame[name])}
    if not changed:
        return frame
    out = frame.copy(deep=False)
    for name, column in changed.items():
        out[name] = column
    return out


def _plain_text(column: pd.Series) -> bool:
    """Text the encoders take as it is: ``str`` values, missing as ``None`` or ``NaN``."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.na_value is not pd.NA
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.api.types.infer_dtype(dtype.categories, skipna=True) in ("string", "empty")
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    return False


def _listing(names: Sequence[Any]) -> str:
    shown = ", ".join(repr(n) for n in names[:MAX_LISTED_COLUMNS])
    more = len(names) - MAX_LISTED_COLUMNS
    return f"{shown} and {more} more" if more > 0 else shown


def check_features(
    frame: pd.DataFrame, spec: TrainSpec
) -> tuple[tuple[str, ...], Task, tuple[Any, ...] | None]:
    """``(features, task, classes)`` for training ``spec`` on ``frame``, or the ``InvalidInput`` of
    the first rule it breaks (the rules are in the module doc). ``classes``: the sorted distinct
    target values as Python scalars, None for regression."""
    target = spec.target
    columns = list(frame.columns)
    if target not in frame.columns:
        raise InvalidInput(
            f"target {target!r} is not a column of the table; its columns are {_listing(columns)}",
            field="target",
        )
    features = spec.features or tuple(c for c in columns if c not in (target, spec.weight_column))
    for name in features:
        if name not in frame.columns:
            raise InvalidInput(f"feature {name!r} is not a column of the table", field="features")
        if name == target:
            raise InvalidInput(f"the target {target!r} cannot also be a feature", field="features")
    if not features:
        raise InvalidInput(f"the table has no column to learn {target!r} from", field="features")
    kept = frame[target].notna().to_numpy()
    rows = int(kept.sum())
    if rows == 0:
        raise InvalidInput(f"target {target!r} is null in every row: no rows are left to train on")
    everything = rows == len(frame)

    def column(name: str) -> pd.Series:
        return frame[name] if everything else frame[name][kept]

    if spec.weight_column is not None:
        _check_weights(column, columns, spec.weight_column, target)
    for name in features:
        _check_feature(column(name), name, rows)
    task, classes = _target_task(column(target), target, spec.task)
    return tuple(features), task, classes


def _check_weights(column: Any, columns: list[Any], weight: str, target: str) -> None:
    if weight not in columns:
        raise InvalidInput(f"weight column {weight!r} is not a column of the table", field="weight_column")
    if weight == target:
        raise InvalidInput(f"the target {target!r} cannot also be the weight column", field="weight_column")
    weights = column(weight)
    kind = column_type(weights)
    if kind not in ("integer", "float"):
        raise InvalidInput(
            f"weight column {weight!r} must be numeric, not {kind or weights.dtype}", field="weight_column"
        )
    values = weights.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        raise InvalidInput(f"weight column {weight!r} has null or infinite values", field="weight_column")
    if (values < 0).any():
        raise InvalidInput(f"weight column {weight!r} has negative values", field="weight_column")
    if not (values > 0).any():
        raise InvalidInput(f"weight column {weight!r} is zero in every row", field="weight_column")


def _check_feature(values: pd.Series, name: str, rows: int) -> None:
    kind = column_type(values)
    if kind is None:
        raise InvalidInput(
            f"feature {name!r} has dtype {values.dtype}, which models cannot use; "
            "leave it out with `features`",
            field="features",
        )
    if values.isna().all():
        raise InvalidInput(
            f"feature {name!r} is null in every row; leave it out with `features`", field="features"
        )
    # nunique on this one column only, and only when it could exceed the limit
    if kind == "string" and rows > MAX_IDENTIFIER_DISTINCT:
        distinct = int(values.nunique())
        if distinct > MAX_IDENTIFIER_DISTINCT and distinct > rows / 2:
            raise InvalidInput(
                f"feature {name!r} has {distinct} distinct values in {rows} rows: it looks like an "
                "identifier, not a feature; leave it out with `features`",
                field="features",
            )


def _target_task(values: pd.Series, target: str, requested: str) -> tuple[Task, tuple[Any, ...] | None]:
    kind = column_type(values)
    if kind not in ("integer", "float", "boolean", "string"):
        raise InvalidInput(
            f"target {target!r} is a {kind or values.dtype} column; a target must be a number, "
            "a boolean or text",
            field="target",
        )
    y = target_values(values)
    if kind == "float" and not np.isfinite(y).all():
        raise InvalidInput(f"target {target!r} has infinite values", field="target")
    distinct = int(values.nunique())
    if distinct == 1:
        raise InvalidInput(
            f"target {target!r} has the single value {python_scalar(y[0])!r} in every row: "
            "there is nothing to learn",
            field="target",
        )
    numeric = kind in ("integer", "float")
    task = _auto_task(y, kind, distinct, target) if requested == "auto" else cast("Task", requested)
    if task == "regression":
        if not numeric:
            raise InvalidInput(f"regression needs a numeric target; {target!r} is {kind}", field="task")
        return task, None
    if task == "binary" and distinct != 2:
        raise InvalidInput(
            f"task binary needs a target with 2 classes; {target!r} has {distinct}", field="task"
        )
    if task == "multiclass" and not 3 <= distinct <= MAX_CLASSES:
        raise InvalidInput(
            f"task multiclass needs 3 to {MAX_CLASSES} classes; {target!r} has {distinct}"
            + (": use binary" if distinct == 2 else ""),
            field="task",
        )
    try:
        uniques, counts = np.unique(y, return_counts=True)
    except TypeError as exc:
        raise InvalidInput(f"target {target!r} mixes values of different types", field="target") from exc
    lonely = uniques[counts < 2]
    if len(lonely):
        raise InvalidInput(
            f"class {python_scalar(lonely[0])!r} of target {target!r} has a single row; "
            "each class needs at least 2",
            field="target",
        )
    return task, tuple(python_scalar(v) for v in uniques)


def _auto_task(y: Any, kind: str, distinct: int, target: str) -> Task:
    if kind == "float" and (distinct > AUTO_MAX_FLOAT_CLASSES or not (y == np.floor(y)).all()):
        return "regression"
    if distinct == 2:
        return "binary"
    if distinct <= AUTO_MAX_CLASSES:
        return "multiclass"
    if kind in ("integer", "float"):
        return "regression"
    raise InvalidInput(
        f"target {target!r} has {distinct} distinct text values, too many to be classes for task auto "
        f"(at most {AUTO_MAX_CLASSES}); set task to multiclass to train on them anyway",
        field="target",
    )
