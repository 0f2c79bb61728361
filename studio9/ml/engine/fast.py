"""A compiled scorer for online prediction: Studio9's fitted preprocessing done in plain numpy.

For a request of a few rows, scikit-learn's own checks dominate: the fitted ``ColumnTransformer``
of ``preprocessing.build_preprocessor`` takes about 5 ms to transform ONE row (column selection,
input validation in every step), the model itself under 1 ms. ``compile_scorer`` reads the
fitted statistics out of that recipe, or out of the one models made before it (the imputers'
fill values, the scalers' means and scales, the encoder's output column of each category) and
applies them with the same floating-point operations, in the same order, as scikit-learn does:
``x[missing] = fill``, ``x -= mean``, ``x /= scale``; one-hot columns set to 1.0 where the
encoder sets them.

It is only ever used when it gives exactly the pipeline's answer: compiling checks the
pipeline's shape (anything but the recipe, an imported model say, is not compiled) and then
transforms probe rows (every known category, an unknown one, missing values, numbers, times)
both ways, and keeps the scorer only if the two matrices are equal bit for bit. ``predict``
and ``predict_proba`` then call the fitted final estimator on the compiled matrix, so a
prediction is the pipeline's prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, TypeAlias

import attrs
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from studio9.ml.engine.preprocessing import MISSING_MICROS

__all__ = ["FastClassifier", "FastScorer", "compile_scorer", "probe_rows"]

_EPOCH_US: Final = np.datetime64(0, "us")
#: A pandas DataFrame, or its columns by name as numpy arrays (``schema.rows_to_columns``).
Columns: TypeAlias = Any


@attrs.frozen
class _Scaled:
    """A numeric or datetime block: impute with ``fill``, then ``(x - mean) / scale``. Times are
    ``micros`` (the recipe's float microseconds, missing: ``MISSING_MICROS``) or, in models made
    before it, ``seconds`` (``preprocessing.to_seconds``, missing: ``NaN``)."""

    columns: tuple[str, ...]
    fill: Any
    mean: Any
    scale: Any
    times: Literal["micros", "seconds"] | None

    def transform(self, frame: Columns) -> Any:
        if self.times == "micros":
            x = np.column_stack([_micros(frame[c]) for c in self.columns])
            missing = x == MISSING_MICROS
        else:
            read = _seconds if self.times == "seconds" else _numbers
            x = np.column_stack([read(frame[c]) for c in self.columns])
            missing = np.isnan(x)
        if missing.any():
            x[missing] = np.take(self.fill, np.nonzero(missing)[1])
        x -= self.mean
        x /= self.scale
        return x


@attrs.frozen
class _OneHot:
    """A text block: missing cells get ``fill``; each column's category -> its output column."""

    columns: tuple[str, ...]
    fill: tuple[str, ...]
    #: Per input column: category -> output column (within the block), and the column an
    #: unknown category goes to (the infrequent one), or None (all zeros).
    index: tuple[Mapping[str, int], ...]
    unknown: tuple[int | None, ...]
    width: int

    def transform(self, frame: Columns) -> Any:
        out = np.zeros((_length(frame), self.width), dtype=np.float64)
        for j, name in enumerate(self.columns):
            column = frame[name]
            values = (
                column if isinstance(column, np.ndarray) else column.to_numpy(dtype=object, na_value=np.nan)
            )
            for i, value in enumerate(values):
                text = self.fill[j] if _missing(value) else value if isinstance(value, str) else str(value)
                column = self.index[j].get(text, self.unknown[j])
                if column is not None:
                    out[i, column] = 1.0
        return out


@attrs.frozen
class FastScorer:
    """Quacks like the fitted pipeline of a regressor for ``predict_frame`` and the scorers:
    ``feature_names_in_`` and ``predict`` (``FastClassifier`` adds ``classes_`` and
    ``predict_proba``: whether a model has them is how scikit-learn's helpers tell the task)."""

    feature_names_in_: Any
    blocks: tuple[_Scaled | _OneHot, ...]
    estimator: Any

    def fit(self, X: Any, y: Any = None) -> FastScorer:
        """Not trainable: it is compiled from a fitted pipeline. (Defined because scikit-learn's
        ``permutation_importance`` takes only objects with a ``fit``.)"""
        raise NotImplementedError("a compiled scorer is made from a fitted pipeline, not fitted")

    def transform(self, frame: Columns) -> Any:
        return np.hstack([block.transform(frame) for block in self.blocks])

    def predict(self, frame: Columns) -> Any:
        return self.estimator.predict(self.transform(frame))


@attrs.frozen
class FastClassifier(FastScorer):
    @property
    def classes_(self) -> Any:
        return self.estimator.classes_

    def predict_proba(self, frame: Columns) -> Any:
        return self.estimator.predict_proba(self.transform(frame))


def compile_scorer(pipeline: Any, probes: pd.DataFrame) -> FastScorer | None:
    """The compiled scorer of ``pipeline``, or None when it is not Studio9's recipe or does not
    reproduce the pipeline's matrix exactly on ``probes`` (rows as ``rows_to_frame`` makes them)."""
    try:
        scorer = _compiled(pipeline)
        if scorer is None:
            return None
        expected = pipeline[0].transform(probes[list(scorer.feature_names_in_)])
        got = scorer.transform(probes)
    except Exception:  # anything unexpected: the pipeline itself stays the scorer
        return None
    if expected.shape != got.shape or expected.dtype != got.dtype or not np.array_equal(expected, got):
        return None
    return scorer


def probe_rows(pipeline: Any, schema: Mapping[str, tuple[str, bool]]) -> list[dict[str, Any]]:
    """Rows that visit every known category of the pipeline's encoder, an unknown one, missing
    values (where ``schema``, column -> (type, nullable), allows them), and ordinary numbers,
    booleans and times (for ``compile_scorer``'s check)."""
    step = pipeline[0]
    categories: dict[str, list[str]] = {}
    for name, transformer, columns in step.transformers_:
        if name == "categorical":
            for column, known in zip(columns, _known(transformer), strict=True):
                categories[column] = known
    count = max([len(c) for c in categories.values()] + [1]) + 3
    rows: list[dict[str, Any]] = []
    for i in range(count):
        row: dict[str, Any] = {}
        for name, _, columns in step.transformers_:
            for column in columns if isinstance(columns, list) else []:
                kind, nullable = schema.get(column, ("float", True))
                if name == "numeric":
                    number: Any = (
                        i % 2 == 0 if kind == "boolean" else i - 2 if kind == "integer" else i * 1.5 - 2.0
                    )
                    row[column] = None if i % 4 == 1 and (nullable or kind != "boolean") else number
                elif name == "categorical":
                    known = categories[column]
                    gone = i == count - 2 and nullable
                    row[column] = None if gone else "\x00unknown" if i == count - 1 else known[i % len(known)]
                elif name == "datetime":
                    gone = i % 4 == 2 and nullable
                    day = f"2024-0{1 + i % 9}-1{i % 10}"
                    row[column] = None if gone else day if kind == "date" else f"{day}T12:3{i % 10}:00"
        rows.append(row)
    return rows


#: The steps of each block, in the recipe and in models made before it (``preprocessing``).
_NUMERIC: Final = ["impute", "scale"]
_TIMES: Final[dict[tuple[str, ...], Literal["micros", "seconds"]]] = {
    ("micros", "float", "impute", "scale"): "micros",
    ("seconds", "impute", "scale"): "seconds",
}
_TEXT: Final = (["nan", "none", "impute", "encode"], ["text", "impute", "encode"])


def _compiled(pipeline: Any) -> FastScorer | None:
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 2:
        return None
    step, estimator = pipeline.steps[0][1], pipeline.steps[1][1]
    if not isinstance(step, ColumnTransformer) or getattr(step, "sparse_output_", False):
        return None
    blocks: list[_Scaled | _OneHot] = []
    for name, transformer, columns in step.transformers_:
        if name == "remainder" and transformer == "drop":
            continue
        if not isinstance(transformer, Pipeline) or not isinstance(columns, list):
            return None
        steps = transformer.named_steps
        times = _TIMES.get(tuple(steps)) if name == "datetime" else None
        if (name == "numeric" and list(steps) == _NUMERIC) or times is not None:
            imputer, scaler = steps["impute"], steps["scale"]
            if imputer.strategy != "median" or not (scaler.with_mean and scaler.with_std):
                return None
            if times == "micros" and not _reads_micros(steps["micros"], columns):
                return None
            blocks.append(
                _Scaled(
                    tuple(columns),
                    np.asarray(imputer.statistics_, dtype=np.float64),
                    np.asarray(scaler.mean_, dtype=np.float64),
                    np.asarray(scaler.scale_, dtype=np.float64),
                    times=times,
                )
            )
        elif name == "categorical" and list(steps) in _TEXT:
            blocks.append(_one_hot(columns, transformer))
        else:
            return None
    names = np.asarray([c for block in blocks for c in block.columns], dtype=object)
    kind = FastClassifier if hasattr(estimator, "predict_proba") else FastScorer
    return kind(feature_names_in_=names, blocks=tuple(blocks), estimator=estimator)


def _reads_micros(step: Any, columns: Sequence[str]) -> bool:
    """The ``micros`` step reads each column alone, in order (what ``_micros`` repeats)."""
    return isinstance(step, ColumnTransformer) and [
        (selected, getattr(t, "func", None), getattr(t, "kw_args", None))
        for _, t, selected in step.transformers_
        if t != "drop"
    ] == [([c], np.asarray, {"dtype": "datetime64[us]"}) for c in columns]


def _known(block: Any) -> list[list[str]]:
    """Per input column, the categories of a text block's encoder, as text."""
    return [[str(c) for c in known] for known in block.named_steps["encode"].categories_]


def _one_hot(columns: Sequence[str], block: Any) -> _OneHot:
    """Each category's output column, read from the fitted block itself: transforming a column's
    known categories and an unknown one (never missing, so the imputers pass them) shows where
    each lands. A missing cell gets the most-frequent imputer's fill."""
    steps = block.named_steps
    known = _known(block)
    index: list[dict[str, int]] = []
    unknown: list[int | None] = []
    offset = 0
    probe_width = max(len(c) for c in known) + 1
    grid = np.empty((probe_width, len(columns)), dtype=object)
    for j, cells in enumerate(known):
        grid[:, j] = ([*cells, "\x00unknown"] * probe_width)[:probe_width]
    encoded = block.transform(pd.DataFrame(grid, columns=list(columns)))
    widths = [len(names) for names in _names_per_column(steps["encode"], len(columns))]
    for j, cells in enumerate(known):
        part = encoded[:, offset : offset + widths[j]]
        mapping = {c: offset + int(np.argmax(part[i])) for i, c in enumerate(cells) if part[i].any()}
        lost = part[len(cells)] if len(cells) < probe_width else None
        index.append(mapping)
        unknown.append(None if lost is None or not lost.any() else offset + int(np.argmax(lost)))
        offset += widths[j]
    fill = tuple(str(v) for v in steps["impute"].statistics_)
    return _OneHot(tuple(columns), fill, tuple(index), tuple(unknown), offset)


def _names_per_column(encoder: Any, count: int) -> list[list[str]]:
    names = list(encoder.get_feature_names_out([f"c{j}" for j in range(count)]))
    return [[n for n in names if n.startswith(f"c{j}_")] for j in range(count)]


def _length(frame: Columns) -> int:
    return len(next(iter(frame.values()))) if isinstance(frame, Mapping) else len(frame)


def _numbers(column: Any) -> Any:
    if isinstance(column, np.ndarray):
        return column.astype(np.float64)  # a copy: the block changes it in place
    return column.to_numpy(dtype=np.float64, na_value=np.nan)


def _micros(column: Any) -> Any:
    """The recipe's ``micros`` and ``float`` steps on one column: numpy reads it (module doc of
    ``preprocessing``); a missing time comes out as ``MISSING_MICROS``."""
    if not isinstance(column, np.ndarray):
        column = column.to_frame()  # as the pipeline's step sees it: a one-column frame
    return np.asarray(np.asarray(column, dtype="datetime64[us]"), dtype="float64").reshape(-1)


def _seconds(column: Any) -> Any:
    """``preprocessing.to_seconds`` (models made before ``micros``) of one column, fast for the
    ``datetime64`` columns that ``rows_to_frame`` makes; any other column goes through
    ``to_seconds`` itself."""
    if column.dtype.kind != "M" or getattr(column.dtype, "tz", None) is not None:
        from studio9.ml.engine.preprocessing import to_seconds

        return to_seconds(pd.DataFrame({"t": column}))[:, 0]
    micros = np.asarray(column, dtype="datetime64[us]")
    seconds = (micros - _EPOCH_US).astype(np.int64).astype(np.float64) / 1e6
    seconds[np.isnat(micros)] = np.nan
    return seconds


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA
