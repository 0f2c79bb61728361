"""Train a model on a pandas frame, and score rows with it: the engine's entry points.

``train(frame, spec)`` runs, in order: ``check_features`` (``preprocessing``); drops the rows
whose target is null (counted in ``warnings``); splits off the hold-out rows; searches the
candidates (``search``); refits the winner on all training rows; measures it (``metrics``) on
the training rows and the hold-out rows; and computes permutation importance.

The hold-out split, exactly (a test rebuilds it): over the rows with a target, in frame order,
``train_test_split(rows, test_size=holdout_fraction, random_state=seed, stratify=y)``
(``stratify=None`` for regression). The training rows keep the order it returns (row order
changes what a random forest learns); ``holdout_index`` lists the hold-out rows' positions in
``frame`` in that order too. A ``holdout`` frame replaces the split (its null-target rows dropped),
and ``holdout_fraction=0`` with no ``holdout`` frame means no hold-out metrics.

Permutation importance (``sklearn.inspection.permutation_importance``) uses the search's primary
metric, ``n_repeats=5, random_state=seed``, on at most 2,000 of the hold-out rows, or without them
of the training rows (``numpy.random.default_rng(seed).choice``, sorted), per original feature column.

``predict_frame`` is the one function that scores rows, for batch scoring, evaluation and online
prediction alike: ``{"prediction": [...]}`` and, for classification, ``{"probability_<class>":
[...]}`` per class (the label is the most probable class, the first of equals).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Literal

import attrs
import numpy as np
import pandas as pd
from joblib import parallel_config
from sklearn.exceptions import ConvergenceWarning
from sklearn.inspection import permutation_importance
from sklearn.model_selection import train_test_split

from studio9.errors import InvalidInput
from studio9.ml.engine.candidates import candidate_list
from studio9.ml.engine.columns import column_kind, input_schema, python_scalar, target_values
from studio9.ml.engine.errors import Cancelled
from studio9.ml.engine.fast import compile_scorer
from studio9.ml.engine.metrics import class_labels, classification_metrics, regression_metrics
from studio9.ml.engine.preprocessing import categorical_columns, check_features, text_columns
from studio9.ml.engine.search import (
    PRIMARY_METRIC,
    Steps,
    make_pipeline,
    primary_score,
    run_search,
    search_fits,
)
from studio9.ml.engine.spec import Progress, Task, TrainSpec

__all__ = ["Cancelled", "TrainResult", "evaluate", "predict_frame", "train"]

IMPORTANCE_ROWS: Final = 2_000
IMPORTANCE_REPEATS: Final = 5
MAX_WARNINGS: Final = 10


@attrs.frozen(kw_only=True)
class TrainResult:
    """A trained model and what was learnt on the way (all but ``pipeline`` JSON-able).

    ``metrics``: ``{"train": ..., "holdout": ...}`` (no ``holdout`` without hold-out rows);
    ``metric``: the search's primary metric (higher is better); ``leaderboard``: the search's rows,
    best first; ``importance``: ``[{"feature", "mean", "std"}]``, the largest mean first;
    ``stopped``: ``"time_budget"`` when the budget cut the search short."""

    pipeline: Any
    task: Task
    target: str
    features: tuple[str, ...]
    classes: tuple[Any, ...] | None
    algorithm: str
    params: dict[str, Any]
    metric: str
    leaderboard: list[dict[str, Any]]
    metrics: dict[str, Any]
    importance: list[dict[str, Any]]
    warnings: tuple[str, ...]
    stopped: Literal["time_budget"] | None
    holdout_index: list[int] | None
    input_schema: list[dict[str, Any]]
    #: Per split (``train``, ``holdout``): the positions of the rows measured (null targets left
    #: out) in the frame they came from (the hold-out frame's, when one was given), and their
    #: ``predict_frame`` columns, in that order: what the scored tables hold.
    scored: dict[str, tuple[Any, dict[str, list[Any]]]] = attrs.field(factory=dict)


@attrs.frozen
class _Rows:
    frame: Any
    y: Any
    weights: Any


def _rows(frame: Any, features: Sequence[str], spec: TrainSpec, where: str) -> tuple[_Rows, Any, int]:
    """The rows of ``frame`` with a target: features, target, weights; and their positions."""
    for name in (*features, spec.target, *([spec.weight_column] if spec.weight_column else [])):
        if name not in frame.columns:
            raise InvalidInput(f"the {where} has no column {name!r}")
    kept = frame[spec.target].notna().to_numpy()
    positions = np.flatnonzero(kept)
    if len(positions) == 0:
        raise InvalidInput(f"the {where} has no row with a target {spec.target!r}")
    chosen = frame.iloc[positions]
    weights = None
    if spec.weight_column is not None:
        weights = chosen[spec.weight_column].to_numpy(dtype=np.float64, na_value=np.nan)
        if not (np.isfinite(weights).all() and (weights >= 0).all()):
            raise InvalidInput(
                f"weight column {spec.weight_column!r} of the {where} has null or negative values"
            )
    X = chosen[list(features)].reset_index(drop=True)
    X = text_columns(X, [name for name in features if column_kind(X[name]) == "categorical"])
    return _Rows(X, target_values(chosen[spec.target]), weights), positions, len(frame) - len(positions)


def _take(rows: _Rows, index: Any) -> _Rows:
    weights = None if rows.weights is None else rows.weights[index]
    return _Rows(rows.frame.iloc[index].reset_index(drop=True), rows.y[index], weights)


def _split(rows: _Rows, spec: TrainSpec, task: Task) -> tuple[Any, Any]:
    """Indices into ``rows`` of the training and hold-out rows (the module doc's split)."""
    n = len(rows.y)
    test = math.ceil(spec.holdout_fraction * n)
    classes = 0 if task == "regression" else len(np.unique(rows.y))
    if test < max(classes, 1) or n - test < max(classes, 1):
        raise InvalidInput(
            f"a hold-out fraction of {spec.holdout_fraction} leaves {test} of {n} rows for hold-out; "
            f"it needs at least {max(classes, 1)} on each side: change holdout_fraction (0: no hold-out)"
        )
    stratify = None if task == "regression" else rows.y
    train, held = train_test_split(
        np.arange(n), test_size=spec.holdout_fraction, random_state=spec.seed, stratify=stratify
    )
    return train, held


def _check_folds(rows: _Rows, spec: TrainSpec, task: Task) -> None:
    folds = spec.search.cv_folds
    if len(rows.y) < folds:
        raise InvalidInput(f"only {len(rows.y)} training rows: {folds}-fold cross-validation needs {folds}")
    if task != "regression":
        uniques, counts = np.unique(rows.y, return_counts=True)
        if counts.min() < folds:
            rare = python_scalar(uniques[np.argmin(counts)])
            raise InvalidInput(
                f"class {rare!r} of target {spec.target!r} has {counts.min()} training rows; "
                f"{folds}-fold cross-validation needs {folds} of each class: lower search.cv_folds",
                field="search",
            )


@contextmanager
def _sklearn_warnings(notes: list[str]) -> Iterator[None]:
    """Turns scikit-learn's convergence and user warnings into ``notes`` (deduplicated); other
    warnings go on as usual."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        yield
    seen = set(notes)
    for item in caught:
        if issubclass(item.category, ConvergenceWarning | UserWarning):
            text = " ".join(str(item.message).split())[:300]
            note = f"scikit-learn warned: {text}"
            if note not in seen and len(seen) < MAX_WARNINGS:
                seen.add(note)
                notes.append(note)
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)


def train(
    frame: pd.DataFrame,
    spec: TrainSpec,
    *,
    holdout: pd.DataFrame | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] | None = None,
) -> TrainResult:
    """Trains ``spec`` on ``frame`` (see the module doc). Raises ``InvalidInput`` for a frame that
    breaks a rule and ``Cancelled`` when ``should_stop()`` answers true before a fit."""
    features, task, classes = check_features(frame, spec)
    notes: list[str] = []
    everything, positions, dropped = _rows(frame, features, spec, "table")
    if dropped:
        notes.append(f"{dropped} rows whose target {spec.target!r} is null were left out")
    held: _Rows | None = None
    holdout_index: list[int] | None = None
    #: Where each split's rows are in the frame they came from (``frame`` or ``holdout``).
    at: dict[str, Any] = {"train": positions}
    if holdout is not None:
        training = everything
        held, at["holdout"], held_dropped = _rows(holdout, features, spec, "hold-out table")
        _check_target(held, task, classes, spec.target)
        if held_dropped:
            notes.append(f"{held_dropped} hold-out rows whose target is null were left out")
    elif spec.holdout_fraction > 0:
        train_at, held_at = _split(everything, spec, task)
        training, held = _take(everything, train_at), _take(everything, held_at)
        holdout_index = [int(p) for p in positions[held_at]]
        at = {"train": positions[train_at], "holdout": positions[held_at]}
    else:
        training = everything
    _check_folds(training, spec, task)
    candidates = candidate_list(spec, task)
    steps = Steps(
        search_fits(spec, len(candidates)) + 1,
        progress=progress,
        should_stop=should_stop,
        clock=clock or time.monotonic,
        time_budget_s=spec.time_budget_s,
    )
    with _sklearn_warnings(notes):
        outcome = run_search(
            training.frame, training.y, training.weights, features, candidates, spec, task, steps
        )
        steps.may_fit(budget=False)
        pipeline = make_pipeline(training.frame, features, outcome.best, task, spec.seed)
        fit_params = {} if training.weights is None else {"model__sample_weight": training.weights}
        pipeline.fit(training.frame, training.y, **fit_params)
        steps.fitted(f"refit {outcome.best.algorithm} on {len(training.y)} training rows", last=True)
        metrics: dict[str, Any] = {}
        scored: dict[str, tuple[Any, dict[str, list[Any]]]] = {}
        for split, rows in (("train", training), ("holdout", held)):
            if rows is not None:
                metrics[split], predictions = _measure(pipeline, task, classes, rows)
                scored[split] = (at[split], predictions)
        steps.may_fit(budget=False)  # a last chance to cancel before the importance's predictions
        # At most IMPORTANCE_ROWS rows: each feature is shuffled and scored n_repeats times (on
        # 40,000 hold-out rows that took longer than the whole search; on 5,000, a tenth of it:
        # benchmarks/ml.py), and 2,000 rows rank 30 features as well.
        shuffled = _sampled(held if held is not None else training, spec.seed)
        importance = _importance(pipeline, shuffled, features, spec)
    if outcome.stopped:
        complete = sum(row.status == "complete" for row in outcome.rows)
        notes.append(
            f"the time budget of {spec.time_budget_s} s ran out after {complete} complete candidates"
        )
    if not outcome.scored:
        notes.append(
            f"no candidate finished cross-validation in the time budget; the first, "
            f"{outcome.best.describe()}, was fitted without a score"
        )
    return TrainResult(
        pipeline=pipeline,
        task=task,
        target=spec.target,
        features=features,
        classes=classes,
        algorithm=outcome.best.algorithm,
        params=dict(outcome.best.params),
        metric=PRIMARY_METRIC[task],
        leaderboard=[row.to_json() for row in outcome.rows],
        metrics=metrics,
        importance=importance,
        warnings=tuple(notes),
        stopped=outcome.stopped,
        holdout_index=holdout_index,
        input_schema=input_schema(training.frame, features),
        scored=scored,
    )


def _sampled(rows: _Rows, seed: int) -> _Rows:
    if len(rows.y) <= IMPORTANCE_ROWS:
        return rows
    picked = np.sort(np.random.default_rng(seed).choice(len(rows.y), IMPORTANCE_ROWS, replace=False))
    return _take(rows, picked)


def _importance(pipeline: Any, rows: _Rows, features: Sequence[str], spec: TrainSpec) -> list[dict[str, Any]]:
    # The compiled scorer where it reproduces the pipeline exactly on these very rows (checked
    # by compiling against them): 150 predictions without scikit-learn's per-call checks. Its
    # transform is row by row, so shuffling a column shuffles its output the same way.
    estimator = compile_scorer(pipeline, rows.frame) or pipeline
    with parallel_config(backend="threading"):  # threads: the pipeline is not copied to processes
        found = permutation_importance(
            estimator,
            rows.frame,
            rows.y,
            scoring=primary_score,
            n_repeats=IMPORTANCE_REPEATS,
            random_state=spec.seed,
            sample_weight=rows.weights,
            n_jobs=spec.n_jobs,
        )
    items = [
        {"feature": name, "mean": _finite(mean), "std": _finite(std)}
        for name, mean, std in zip(features, found.importances_mean, found.importances_std, strict=True)
    ]
    return sorted(items, key=lambda item: -item["mean"] if item["mean"] is not None else math.inf)


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _predict(pipeline: Any, task: Task, frame: Any) -> tuple[Any, Any]:
    """``(predictions, probabilities)`` as arrays: values for regression (no probabilities), else
    the most probable class per row and the probabilities in ``pipeline.classes_`` order."""
    present = frame.keys() if isinstance(frame, Mapping) else frame.columns
    names = list(getattr(pipeline, "feature_names_in_", present))
    for name in names:
        if name not in present:
            raise InvalidInput(f"column {name!r} is missing", field=name)
    # A mapping of columns (what the compiled scorer reads) is passed as it is.
    data = frame if isinstance(frame, Mapping) else text_columns(frame[names], categorical_columns(pipeline))
    if task == "regression":
        if len(data) == 0:
            return np.empty(0, dtype=np.float64), None
        return np.asarray(pipeline.predict(data), dtype=np.float64), None
    classes = pipeline.classes_
    if len(data) == 0:
        return classes[:0], np.empty((0, len(classes)), dtype=np.float64)
    proba = np.asarray(pipeline.predict_proba(data), dtype=np.float64)
    return classes[np.argmax(proba, axis=1)], proba


def predict_frame(
    pipeline: Any, task: Task, classes: Sequence[Any] | None, frame: pd.DataFrame
) -> dict[str, list[Any]]:
    """``{"prediction": [...]}`` plus ``{"probability_<class>": [...]}`` per class for
    classification, as Python values. ``frame`` needs the model's features (others are ignored;
    a missing one: ``InvalidInput`` naming it). ``classes`` name the probability columns (None:
    the model's own)."""
    pred, proba = _predict(pipeline, task, frame)
    return _columns(pipeline, classes, pred, proba)


def _columns(pipeline: Any, classes: Sequence[Any] | None, pred: Any, proba: Any) -> dict[str, list[Any]]:
    if proba is None:
        return {"prediction": pred.tolist()}
    names = list(classes) if classes is not None else [python_scalar(c) for c in pipeline.classes_]
    out: dict[str, list[Any]] = {"prediction": [python_scalar(v) for v in pred]}
    for j, name in enumerate(names):
        out[f"probability_{name}"] = proba[:, j].tolist()
    return out


def _measure(
    pipeline: Any, task: Task, classes: Sequence[Any] | None, rows: _Rows
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """The metrics of ``rows``, and their predictions as ``predict_frame`` gives them (the scored
    tables reuse them: predicting 160,000 rows again took seconds)."""
    pred, proba = _predict(pipeline, task, rows.frame)
    scored = _columns(pipeline, classes, pred, proba)
    if task == "regression":
        return regression_metrics(rows.y, pred, rows.weights), scored
    names = classes if classes is not None else [python_scalar(c) for c in pipeline.classes_]
    return classification_metrics(rows.y, proba, names, rows.weights), scored


def _check_target(rows: _Rows, task: Task, classes: Sequence[Any] | None, target: str) -> None:
    """Refuses targets the model cannot be measured on: text for regression, unseen classes."""
    if task == "regression":
        if rows.y.dtype.kind not in "iuf":
            raise InvalidInput(f"target {target!r} must be numeric to measure a regression model")
        return
    if classes is None:
        return
    unseen = ~np.isin(rows.y, class_labels(classes, rows.y))
    if unseen.any():
        value = python_scalar(rows.y[unseen][0])
        raise InvalidInput(f"target {target!r} has values the model never saw, such as {value!r}")


def evaluate(
    pipeline: Any,
    task: Task,
    classes: Sequence[Any] | None,
    frame: pd.DataFrame,
    target: str,
    weight_column: str | None = None,
) -> dict[str, Any]:
    """The metrics of the model on ``frame``'s rows that have a ``target`` (``metrics``' dicts);
    ``InvalidInput`` for a missing column, a non-numeric regression target or an unseen class."""
    others = [c for c in frame.columns if c not in (target, weight_column)]
    features = list(getattr(pipeline, "feature_names_in_", others))
    spec = TrainSpec(target=target, weight_column=weight_column, holdout_fraction=0)
    rows, _, _ = _rows(frame, features, spec, "table")
    if classes is None and task != "regression":
        classes = [python_scalar(c) for c in pipeline.classes_]
    _check_target(rows, task, classes, target)
    return _measure(pipeline, task, classes, rows)[0]
