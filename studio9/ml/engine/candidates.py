"""The estimators of each algorithm and task, their search spaces, and the candidates of a run.

``make_estimator(algorithm, task, seed)`` is scikit-learn's estimator with its defaults, but for
``random_state=seed`` (every one of them has it) and, since the defaults stop short on many
tables, ``max_iter=1000`` for ``LogisticRegression`` and 5000 for ``ElasticNet``; the elastic-net
classifier is ``LogisticRegression(solver="saga", l1_ratio=0.5, max_iter=1000)``. ``SPACES``
holds the parameter distributions sampled by the random and halving searches: small ranges
around the defaults that matter most.

``candidate_list(spec, task)``: method ``none`` gives one candidate per algorithm with default
parameters; ``random`` and ``halving`` give each algorithm's default first, then
``n_candidates`` sampled parameter sets dealt round-robin over the algorithms (the first
``n_candidates % len(algorithms)`` algorithms get one more), interleaved in that order. Each
algorithm samples with ``ParameterSampler(random_state=seed + its index in ALGORITHMS)``, so a seed
always gives the same list. Defaults first means a short time budget still tries every algorithm.
"""

from __future__ import annotations

from typing import Any, Final

import attrs
from scipy.stats import loguniform, randint, uniform
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import ElasticNet, LogisticRegression, Ridge
from sklearn.model_selection import ParameterSampler

from studio9.ml.engine.columns import python_scalar
from studio9.ml.engine.spec import ALGORITHMS, Task, TrainSpec

__all__ = ["SPACES", "Candidate", "candidate_list", "make_estimator"]

LINEAR_MAX_ITER: Final = 1_000
ELASTIC_NET_L1_RATIO: Final = 0.5

_TREES: Final = {
    "n_estimators": randint(50, 301),
    "max_depth": [None, 6, 8, 10, 12, 16, 20],
    "min_samples_leaf": randint(1, 11),
    "max_features": ["sqrt", 0.5, 1.0],
}
_BOOSTING: Final = {
    "learning_rate": loguniform(0.03, 0.3),
    "max_leaf_nodes": randint(15, 64),
    "l2_regularization": uniform(0.0, 1.0),
    "min_samples_leaf": randint(5, 51),
}
#: (algorithm, "classification" | "regression") -> parameter distributions.
SPACES: Final[dict[tuple[str, str], dict[str, Any]]] = {
    ("linear", "classification"): {"C": loguniform(1e-3, 1e3)},
    ("linear", "regression"): {"alpha": loguniform(1e-3, 1e3)},
    ("elastic_net", "classification"): {"C": loguniform(1e-3, 1e3), "l1_ratio": uniform(0.05, 0.9)},
    ("elastic_net", "regression"): {"alpha": loguniform(1e-4, 1e1), "l1_ratio": uniform(0.05, 0.9)},
    ("random_forest", "classification"): _TREES,
    ("random_forest", "regression"): _TREES,
    ("extra_trees", "classification"): _TREES,
    ("extra_trees", "regression"): _TREES,
    ("hist_gradient_boosting", "classification"): _BOOSTING,
    ("hist_gradient_boosting", "regression"): _BOOSTING,
}


@attrs.frozen
class Candidate:
    """An algorithm with the parameters it overrides (empty: its defaults); JSON-able values."""

    algorithm: str
    params: dict[str, Any] = attrs.field(factory=dict)

    def describe(self) -> str:
        """``random_forest (defaults)`` or ``random_forest (max_depth=6, n_estimators=120)``."""
        inside = ", ".join(f"{k}={v!r}" for k, v in sorted(self.params.items())) or "defaults"
        return f"{self.algorithm} ({inside})"


def _family(task: Task) -> str:
    return "regression" if task == "regression" else "classification"


def make_estimator(algorithm: str, task: Task, seed: int) -> Any:
    """The unfitted estimator of ``algorithm`` for ``task`` (see the module doc)."""
    classify = task != "regression"
    if algorithm == "linear":
        if classify:
            return LogisticRegression(max_iter=LINEAR_MAX_ITER, random_state=seed)
        return Ridge(random_state=seed)
    if algorithm == "elastic_net":
        if classify:
            # scikit-learn 1.8 deprecated penalty="elasticnet": 0 < l1_ratio < 1 says it
            return LogisticRegression(
                solver="saga", l1_ratio=ELASTIC_NET_L1_RATIO, max_iter=LINEAR_MAX_ITER, random_state=seed
            )
        return ElasticNet(max_iter=LINEAR_MAX_ITER * 5, random_state=seed)
    if algorithm == "random_forest":
        return (RandomForestClassifier if classify else RandomForestRegressor)(random_state=seed)
    if algorithm == "extra_trees":
        return (ExtraTreesClassifier if classify else ExtraTreesRegressor)(random_state=seed)
    if algorithm == "hist_gradient_boosting":
        model = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
        return model(random_state=seed)
    raise ValueError(f"unknown algorithm {algorithm!r}")  # TrainSpec refuses it first


def _sampled(algorithm: str, task: Task, count: int, seed: int) -> list[Candidate]:
    if count == 0:
        return []
    space = SPACES[(algorithm, _family(task))]
    state = (seed + ALGORITHMS.index(algorithm)) % 2**32
    return [
        Candidate(algorithm, {k: python_scalar(v) for k, v in sorted(params.items())})
        for params in ParameterSampler(space, n_iter=count, random_state=state)
    ]


def candidate_list(spec: TrainSpec, task: Task) -> list[Candidate]:
    """The candidates of a run, in the order they are tried (see the module doc)."""
    algorithms = spec.algorithm_names
    defaults = [Candidate(a) for a in algorithms]
    if spec.search.method == "none":
        return defaults
    total, k = spec.search.n_candidates, len(algorithms)
    per = [total // k + (1 if i < total % k else 0) for i in range(k)]
    samples = [_sampled(a, task, n, spec.seed) for a, n in zip(algorithms, per, strict=True)]
    dealt = [s[i] for i in range(max(per)) for s in samples if i < len(s)]
    return defaults + dealt
