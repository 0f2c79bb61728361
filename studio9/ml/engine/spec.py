"""What a training run should do: ``TrainSpec`` and its ``SearchSpec``, validated on construction.

Loads nothing but attrs, so a job can validate its parameters before it loads scikit-learn. Every
invalid value raises ``studio9.errors.InvalidInput`` naming the field.

Algorithms (``ALGORITHMS``), each with a classification and a regression estimator:

* ``linear``: ``LogisticRegression`` / ``Ridge``;
* ``elastic_net``: ``LogisticRegression(solver="saga", l1_ratio=0.5)`` (scikit-learn 1.8 deprecated
  ``penalty="elasticnet"``: a ``l1_ratio`` strictly between 0 and 1 means the same) / ``ElasticNet``;
* ``random_forest``, ``hist_gradient_boosting``, ``extra_trees``: the scikit-learn ensembles.

The default is ``DEFAULT_ALGORITHMS``: a linear model, a random forest and gradient boosting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

import attrs

from studio9.errors import InvalidInput

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHMS",
    "Progress",
    "SearchMethod",
    "SearchSpec",
    "Task",
    "TaskOption",
    "TrainSpec",
]

Task = Literal["regression", "binary", "multiclass"]
TaskOption = Literal["auto", "regression", "binary", "multiclass"]
SearchMethod = Literal["none", "random", "halving"]

ALGORITHMS: Final = ("linear", "elastic_net", "random_forest", "hist_gradient_boosting", "extra_trees")
DEFAULT_ALGORITHMS: Final = ("linear", "random_forest", "hist_gradient_boosting")
TASK_OPTIONS: Final = ("auto", "regression", "binary", "multiclass")
SEARCH_METHODS: Final = ("none", "random", "halving")


def _between(low: float, high: float, *, high_inclusive: bool = True) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: float | None) -> None:
        if value is None:
            return
        ok = low <= value <= high if high_inclusive else low <= value < high
        if isinstance(value, bool) or not ok:
            upper = "<=" if high_inclusive else "<"
            raise InvalidInput(
                f"{attribute.name} must be between {low} and {high} ({low} <= value {upper} {high}), "
                f"not {value!r}",
                field=attribute.name,
            )

    return check


def _one_of(allowed: tuple[str, ...]) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in allowed:
            raise InvalidInput(
                f"{attribute.name} {value!r} is not one of {', '.join(allowed)}", field=attribute.name
            )

    return check


def _names(value: Iterable[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # a lone name, not its characters
        return (value,)
    return tuple(value)


def _search(value: SearchSpec | Mapping[str, Any] | None) -> SearchSpec:
    if value is None:
        return SearchSpec()
    if isinstance(value, SearchSpec):
        return value
    unknown = sorted(set(value) - {"method", "n_candidates", "cv_folds"})
    if unknown:
        raise InvalidInput(f"search has no field {unknown[0]!r}", field="search")
    return SearchSpec(**value)


@attrs.frozen(kw_only=True)
class SearchSpec:
    """How candidates are searched: ``none`` (each algorithm with its defaults), ``random``
    (``n_candidates`` sampled parameter sets spread over the algorithms, plus each default) or
    ``halving`` (the same candidates, successive halving by a factor of 3 on growing row samples);
    each candidate is scored by ``cv_folds``-fold cross-validation."""

    method: SearchMethod = attrs.field(default="random", validator=_one_of(SEARCH_METHODS))
    n_candidates: int = attrs.field(default=8, validator=_between(1, 500))
    cv_folds: int = attrs.field(default=3, validator=_between(2, 20))


@attrs.frozen(kw_only=True)
class TrainSpec:
    """One training run. ``features`` None: every column but the target and the weight column;
    ``algorithms`` None: ``DEFAULT_ALGORITHMS``; ``time_budget_s`` None: no limit;
    ``holdout_fraction`` 0: no hold-out split (ignored when a hold-out frame is given);
    ``n_jobs``: the cross-validation folds of a candidate fitted in parallel (1: one at a time)."""

    target: str = attrs.field()
    features: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    task: TaskOption = attrs.field(default="auto", validator=_one_of(TASK_OPTIONS))
    algorithms: tuple[str, ...] | None = attrs.field(default=None, converter=_names)
    search: SearchSpec = attrs.field(factory=SearchSpec, converter=_search)
    time_budget_s: float | None = attrs.field(default=None)
    holdout_fraction: float = attrs.field(default=0.2, validator=_between(0.0, 0.9, high_inclusive=False))
    weight_column: str | None = None
    seed: int = attrs.field(default=0, validator=_between(0, 2**32 - 1))
    n_jobs: int = attrs.field(default=1)

    @target.validator
    def _check_target(self, _: attrs.Attribute[str], value: str) -> None:
        if not isinstance(value, str) or not value:
            raise InvalidInput("target must name a column", field="target")

    @features.validator
    def _check_features(self, _: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
        if value is None:
            return
        if not value:
            raise InvalidInput(
                "features is empty: name at least one column, or leave it out", field="features"
            )
        _no_repeats(value, "features")

    @algorithms.validator
    def _check_algorithms(self, _: attrs.Attribute[Any], value: tuple[str, ...] | None) -> None:
        if value is None:
            return
        if not value:
            raise InvalidInput("algorithms is empty: name at least one, or leave it out", field="algorithms")
        for name in value:
            if name not in ALGORITHMS:
                raise InvalidInput(
                    f"unknown algorithm {name!r}; the known ones are {', '.join(ALGORITHMS)}",
                    field="algorithms",
                )
        _no_repeats(value, "algorithms")

    @time_budget_s.validator
    def _check_budget(self, _: attrs.Attribute[Any], value: float | None) -> None:
        if value is not None and (isinstance(value, bool) or not value > 0):
            raise InvalidInput(f"time_budget_s must be a positive number of seconds, not {value!r}")

    @n_jobs.validator
    def _check_jobs(self, _: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not (value >= 1 or value == -1):
            raise InvalidInput(f"n_jobs must be a positive number of workers or -1 (all CPUs), not {value!r}")

    @property
    def algorithm_names(self) -> tuple[str, ...]:
        """The algorithms to try, defaults resolved."""
        return self.algorithms if self.algorithms is not None else DEFAULT_ALGORITHMS


def _no_repeats(names: tuple[str, ...], field: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"{field} names {name!r} twice", field=field)
        seen.add(name)


@attrs.frozen
class Progress:
    """How far a run is: ``done`` of ``total`` fits, and what was fitted last."""

    done: int
    total: int
    message: str
