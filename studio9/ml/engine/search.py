"""The candidate search, fit by fit, so that progress, cancel and the time budget act between fits.

Scoring: every candidate is cross-validated on the training rows with ``StratifiedKFold``
(classification) or ``KFold`` (regression), ``shuffle=True, random_state=seed``; the same folds for
every candidate. A fold fits ``clone(Pipeline([("preprocess", build_preprocessor(...)),
("model", estimator.set_params(**params))]))`` on its training part (weights as
``model__sample_weight``) and scores its validation part (weighted too) with the task's primary
metric, higher is better: ``neg_rmse`` (minus the RMSE) for regression, ``roc_auc`` of the
positive class for binary, ``f1_macro`` (of the most probable class) for multiclass. A candidate's
score is the mean over folds; a fold whose score is undefined (a binary fold with one class) is
NaN and ranks the candidate last.

Before each fit ``should_stop()`` is asked (true: ``Cancelled``) and the time budget is checked
against ``clock()``; once it is spent no fit starts: a candidate with some folds is
``incomplete``, one with none ``skipped``, and the best ``complete`` candidate wins. When none is
complete the first candidate wins unscored (``SearchOutcome.scored`` is false). ``progress`` hears
``Progress(done, total, "<algorithm> candidate i/n fold k/K")`` after each fit; ``total`` counts
the final refit, which ``training`` reports.

Halving (``method="halving"``): rounds on growing row samples; a round scores its candidates on
``ceil(rows / 3 ** rounds_left)`` rows (at least enough that the rarest class fills the folds),
the last on all rows, and the top third (rounded up) go on; rounds go on while more than 3
candidates remain, and the best of the last round wins. Samples are drawn with
``train_test_split(train_size=..., random_state=seed, stratify=y)`` (no ``stratify`` for
regression). Its leaderboard has a row per candidate and round, the latest round first.

``n_jobs > 1`` fits a candidate's folds in parallel threads (joblib); cancel and the budget are then
checked once per candidate. The results are the same as with ``n_jobs=1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Final, Literal

import attrs
import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import f1_score, roc_auc_score, root_mean_squared_error
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline

from studio9.ml.engine.candidates import Candidate, make_estimator
from studio9.ml.engine.errors import Cancelled
from studio9.ml.engine.preprocessing import build_preprocessor
from studio9.ml.engine.spec import Progress, Task, TrainSpec

__all__ = ["PRIMARY_METRIC", "Row", "SearchOutcome", "Steps", "make_pipeline", "primary_score", "run_search"]

PRIMARY_METRIC: Final[dict[str, str]] = {
    "regression": "neg_rmse",
    "binary": "roc_auc",
    "multiclass": "f1_macro",
}
HALVING_FACTOR: Final = 3
MIN_HALVING_ROWS: Final = 100
Status = Literal["complete", "incomplete", "skipped"]
_RANK: Final = {"complete": 0, "incomplete": 1, "skipped": 2}


class Steps:
    """Counts fits for ``progress``, asks ``should_stop`` and keeps the time budget."""

    def __init__(
        self,
        total: int,
        *,
        progress: Callable[[Progress], None] | None,
        should_stop: Callable[[], bool] | None,
        clock: Callable[[], float],
        time_budget_s: float | None,
    ) -> None:
        self.total, self.done = total, 0
        self.clock = clock
        self._progress = progress
        self._should_stop = should_stop
        self._deadline = None if time_budget_s is None else clock() + time_budget_s
        self.spent = False

    def may_fit(self, *, budget: bool = True) -> bool:
        """Before a fit: raises ``Cancelled`` when asked to stop; false once the budget is spent."""
        if self._should_stop is not None and self._should_stop():
            raise Cancelled("training was cancelled")
        if budget and not self.spent and self._deadline is not None and self.clock() >= self._deadline:
            self.spent = True
        return not (budget and self.spent)

    def fitted(self, message: str, *, last: bool = False) -> None:
        """After a fit (``last``: the final one, whatever was skipped before it)."""
        self.done = self.total if last else self.done + 1
        if self._progress is not None:
            self._progress(Progress(self.done, self.total, message))


@attrs.frozen(kw_only=True)
class Row:
    """A leaderboard row: a candidate's cross-validation (in halving, in one round)."""

    algorithm: str
    params: dict[str, Any]
    mean_score: float | None
    std_score: float | None
    fit_seconds: float
    status: Status
    folds_done: int
    #: The score of each fold done, in fold order (None: undefined, as ``mean_score``).
    fold_scores: tuple[float | None, ...] = ()
    round: int | None = None
    n_rows: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The row as the result's leaderboard lists it (``round``/``n_rows`` only in halving)."""
        row = attrs.asdict(self)
        row["fold_scores"] = list(self.fold_scores)
        if self.round is None:
            del row["round"], row["n_rows"]
        return row

    @property
    def sort_score(self) -> float:
        """The score to rank by: undefined ranks last."""
        return self.mean_score if self.mean_score is not None else -math.inf


@attrs.frozen(kw_only=True)
class SearchOutcome:
    """The leaderboard (best first), the winner, whether it was scored, and why the search stopped."""

    rows: tuple[Row, ...]
    best: Candidate
    scored: bool
    stopped: Literal["time_budget"] | None


def make_pipeline(frame: Any, features: Sequence[str], candidate: Candidate, task: Task, seed: int) -> Any:
    """The unfitted pipeline of ``candidate``: ``[("preprocess", ...), ("model", ...)]``."""
    model = make_estimator(candidate.algorithm, task, seed).set_params(**candidate.params)
    return Pipeline([("preprocess", build_preprocessor(frame, features)), ("model", model)])


def primary_score(pipeline: Any, X: Any, y: Any, sample_weight: Any = None) -> float:
    """The task's primary metric of a fitted pipeline on ``X, y`` (module doc); a scikit-learn
    scorer's signature, so permutation importance uses it too. The task is read off the model."""
    if not hasattr(pipeline, "predict_proba"):
        return -float(root_mean_squared_error(y, pipeline.predict(X), sample_weight=sample_weight))
    proba = pipeline.predict_proba(X)
    classes = pipeline.classes_
    if len(classes) == 2:
        positive = np.asarray(y) == classes[1]
        if positive.all() or not positive.any():
            return math.nan
        return float(roc_auc_score(positive, proba[:, 1], sample_weight=sample_weight))
    pred = classes[np.argmax(proba, axis=1)]
    return float(
        f1_score(y, pred, labels=classes, average="macro", sample_weight=sample_weight, zero_division=0)
    )


@attrs.frozen
class _Data:
    """Rows to cross-validate on, and their folds (the same for every candidate)."""

    frame: Any
    y: Any
    weights: Any
    folds: list[tuple[Any, Any]]


def _data(frame: Any, y: Any, weights: Any, spec: TrainSpec, task: Task) -> _Data:
    splitter = _splitter(task, spec.search.cv_folds, spec.seed)
    return _Data(frame, y, weights, list(splitter.split(frame, y)))


def _fit_fold(
    template: Any, data: _Data, fold: tuple[Any, Any], clock: Callable[[], float]
) -> tuple[float, float]:
    train, valid = fold
    model = clone(template)
    fit_params = {} if data.weights is None else {"model__sample_weight": data.weights[train]}
    started = clock()
    model.fit(data.frame.iloc[train], data.y[train], **fit_params)
    seconds = clock() - started
    weights = None if data.weights is None else data.weights[valid]
    return primary_score(model, data.frame.iloc[valid], data.y[valid], weights), seconds


def _splitter(task: Task, folds: int, seed: int) -> Any:
    if task == "regression":
        return KFold(n_splits=folds, shuffle=True, random_state=seed)
    return StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)


class _Search:
    def __init__(self, spec: TrainSpec, task: Task, features: Sequence[str], steps: Steps) -> None:
        self.spec, self.task, self.features, self.steps = spec, task, features, steps

    def evaluate(self, candidate: Candidate, position: str, data: _Data, **where: Any) -> Row:
        """Cross-validates one candidate on ``data`` (a row of the leaderboard)."""
        folds = data.folds
        template = make_pipeline(data.frame, self.features, candidate, self.task, self.spec.seed)
        prefix = f"round {where['round'] + 1}: " if where else ""
        scores: list[float] = []
        seconds = 0.0
        messages = [
            f"{prefix}{candidate.algorithm} candidate {position} fold {k}/{len(folds)}"
            for k in range(1, len(folds) + 1)
        ]
        if self.spec.n_jobs != 1:
            if self.steps.may_fit():
                results = Parallel(n_jobs=self.spec.n_jobs, prefer="threads")(
                    delayed(_fit_fold)(template, data, fold, self.steps.clock) for fold in folds
                )
                for (score, took), message in zip(results, messages, strict=True):
                    scores.append(score)
                    seconds += took
                    self.steps.fitted(message)
        else:
            for fold, message in zip(folds, messages, strict=True):
                if not self.steps.may_fit():
                    break
                score, took = _fit_fold(template, data, fold, self.steps.clock)
                scores.append(score)
                seconds += took
                self.steps.fitted(message)
        status: Status = "complete" if len(scores) == len(folds) else "incomplete" if scores else "skipped"
        mean = float(np.mean(scores)) if scores else math.nan
        std = float(np.std(scores)) if scores else math.nan
        return Row(
            algorithm=candidate.algorithm,
            params=dict(candidate.params),
            mean_score=mean if math.isfinite(mean) else None,
            std_score=std if math.isfinite(std) else None,
            fit_seconds=seconds,
            status=status,
            folds_done=len(scores),
            fold_scores=tuple(score if math.isfinite(score) else None for score in scores),
            **where,
        )


def _ranked(rows: list[Row]) -> list[int]:
    """Positions of ``rows``, best first: complete before incomplete before skipped, then by score."""
    return sorted(range(len(rows)), key=lambda i: (_RANK[rows[i].status], -rows[i].sort_score))


def halving_rounds(candidates: int) -> list[int]:
    """How many candidates each halving round scores: 11 -> [11, 4, 2]."""
    sizes = [candidates]
    while sizes[-1] > HALVING_FACTOR:
        sizes.append(math.ceil(sizes[-1] / HALVING_FACTOR))
    return sizes


def search_fits(spec: TrainSpec, candidates: int) -> int:
    """How many cross-validation fits the search of ``candidates`` candidates makes at most."""
    count = sum(halving_rounds(candidates)) if spec.search.method == "halving" else candidates
    return count * spec.search.cv_folds


def run_search(
    frame: Any,
    y: Any,
    weights: Any,
    features: Sequence[str],
    candidates: Sequence[Candidate],
    spec: TrainSpec,
    task: Task,
    steps: Steps,
) -> SearchOutcome:
    """Scores ``candidates`` on the training rows ``frame``/``y``/``weights`` (see the module doc)."""
    search = _Search(spec, task, features, steps)
    data = _data(frame, y, weights, spec, task)
    if spec.search.method == "halving":
        return _halving(search, data, list(candidates))
    n = len(candidates)
    rows = [search.evaluate(c, f"{i}/{n}", data) for i, c in enumerate(candidates, start=1)]
    order = _ranked(rows)
    best = order[0]
    scored = rows[best].status == "complete"
    return SearchOutcome(
        rows=tuple(rows[i] for i in order),
        best=candidates[best] if scored else candidates[0],
        scored=scored,
        stopped="time_budget" if steps.spent else None,
    )


def _sample(data: _Data, size: int, spec: TrainSpec, task: Task) -> _Data:
    n = len(data.y)
    if size >= n:
        return data
    stratify = None if task == "regression" else data.y
    try:
        picked, _ = train_test_split(np.arange(n), train_size=size, random_state=spec.seed, stratify=stratify)
    except ValueError:  # too few rows of a class to stratify: use them all
        return data
    weights = None if data.weights is None else data.weights[picked]
    return _data(data.frame.iloc[picked], data.y[picked], weights, spec, task)


def _halving(search: _Search, data: _Data, candidates: list[Candidate]) -> SearchOutcome:
    spec, task = search.spec, search.task
    sizes = halving_rounds(len(candidates))
    n = len(data.y)
    folds = spec.search.cv_folds
    floor = max(MIN_HALVING_ROWS, 2 * folds)
    if task != "regression":
        _, counts = np.unique(data.y, return_counts=True)
        floor = max(floor, math.ceil(folds * n / counts.min()) + len(counts))
    alive = list(range(len(candidates)))
    rows: list[Row] = []
    best_row: Row | None = None
    best = 0
    for r in range(len(sizes)):
        size = min(n, max(floor, math.ceil(n / HALVING_FACTOR ** (len(sizes) - 1 - r))))
        sample = _sample(data, size, spec, task)
        here = [
            search.evaluate(candidates[c], f"{i}/{len(alive)}", sample, round=r, n_rows=len(sample.y))
            for i, c in enumerate(alive, start=1)
        ]
        rows.extend(here)
        order = _ranked(here)
        if here[order[0]].status == "complete":
            best_row, best = here[order[0]], alive[order[0]]
        if search.steps.spent:
            break
        alive = [alive[i] for i in order[: math.ceil(len(alive) / HALVING_FACTOR)]]
    final = sorted(
        range(len(rows)),
        key=lambda i: (-(rows[i].round or 0), _RANK[rows[i].status], -rows[i].sort_score),
    )
    return SearchOutcome(
        rows=tuple(rows[i] for i in final),
        best=candidates[best],
        scored=best_row is not None,
        stopped="time_budget" if search.steps.spent else None,
    )
