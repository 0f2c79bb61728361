"""The ML training engine on small frames: the spec, candidates, the preprocessor, the search loop
(progress, cancel, time budget, halving), reproducibility, scoring, metrics and every rule
``check_features`` enforces."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs
import numpy as np
import pandas as pd
import pytest

from studio9.errors import InvalidInput
from studio9.ml.engine.candidates import candidate_list
from studio9.ml.engine.errors import Cancelled
from studio9.ml.engine.metrics import classification_metrics, regression_metrics
from studio9.ml.engine.preprocessing import build_preprocessor, check_features, to_seconds, to_text
from studio9.ml.engine.spec import ALGORITHMS, Progress, SearchSpec, TrainSpec
from studio9.ml.engine.training import evaluate, predict_frame, train

FAST = SearchSpec(method="none")


def _frame(n: int = 150, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    city = rng.choice(["paris", "rome", "oslo"], size=n)
    noise = rng.normal(scale=0.7, size=n)
    return pd.DataFrame(
        {
            "x": x,
            "city": pd.Series(city, dtype="str"),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 500, n), unit="D"),
            "amount": 3 * x + (city == "rome") + noise,
            "label": np.where(x + (city == "paris") + noise > 0.4, "yes", "no"),
        }
    )


def _spec(**kw: Any) -> TrainSpec:
    defaults: dict[str, Any] = {"target": "label", "algorithms": ("linear",), "search": FAST, "seed": 3}
    return TrainSpec(**{**defaults, **kw})


def _without_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "fit_seconds"} for row in rows]


# -- the spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"search": {"cv_folds": 1}}, "cv_folds"),
        ({"search": {"cv_folds": 21}}, "cv_folds"),
        ({"search": {"n_candidates": 0}}, "n_candidates"),
        ({"search": {"n_candidates": 501}}, "n_candidates"),
        ({"search": {"method": "grid"}}, "method"),
        ({"holdout_fraction": 0.9}, "holdout_fraction"),
        ({"holdout_fraction": -0.1}, "holdout_fraction"),
        ({"task": "ranking"}, "task"),
        ({"time_budget_s": 0}, "time_budget_s"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"features": ()}, "features"),
        ({"features": ("a", "a")}, "features"),
    ],
)
def test_the_spec_refuses_bad_values(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput, match=field):
        TrainSpec(target="y", **kwargs)


def test_an_unknown_algorithm_is_named_with_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        TrainSpec(target="y", algorithms=("linear", "xgboost"))
    assert "'xgboost'" in caught.value.message
    assert all(name in caught.value.message for name in ALGORITHMS)


def test_spec_defaults() -> None:
    spec = TrainSpec(target="y", search={"method": "halving"})
    assert spec.search == SearchSpec(method="halving", n_candidates=8, cv_folds=3)
    assert spec.algorithm_names == ("linear", "random_forest", "hist_gradient_boosting")
    assert spec.holdout_fraction == 0.2


# -- candidates ----------------------------------------------------------------------------------


def test_candidates_none_gives_each_algorithm_its_defaults() -> None:
    spec = TrainSpec(target="y", algorithms=("linear", "extra_trees"), search=FAST)
    assert [(c.algorithm, c.params) for c in candidate_list(spec, "binary")] == [
        ("linear", {}),
        ("extra_trees", {}),
    ]


def test_random_candidates_are_dealt_round_robin_and_reproducible() -> None:
    spec = TrainSpec(target="y", search=SearchSpec(n_candidates=7), seed=5)
    got = candidate_list(spec, "regression")
    names = [c.algorithm for c in got]
    assert names == [
        *("linear", "random_forest", "hist_gradient_boosting"),  # the defaults
        *("linear", "random_forest", "hist_gradient_boosting") * 2,
        "linear",
    ]
    assert [c.params for c in got[:3]] == [{}, {}, {}]
    assert all(c.params for c in got[3:])
    assert set(got[3].params) == {"alpha"}
    assert 50 <= got[4].params["n_estimators"] <= 300
    assert 0.03 <= got[5].params["learning_rate"] <= 0.3
    json.dumps([c.params for c in got])  # plain Python values
    assert candidate_list(spec, "regression") == got
    assert (
        candidate_list(TrainSpec(target="y", search=SearchSpec(n_candidates=7), seed=6), "regression") != got
    )


# -- preprocessing ----------------------------------------------------------------------------------


def test_the_preprocessor_groups_columns_by_type() -> None:
    frame = _frame().assign(flag=True, day=dt.date(2020, 1, 2), n=pd.array([1, None] * 75, dtype="Int64"))
    features = ["x", "city", "when", "flag", "day", "n"]
    transformer = build_preprocessor(frame, features)
    assert [(name, cols) for name, _, cols in transformer.transformers] == [
        ("numeric", ["x", "flag", "n"]),
        ("categorical", ["city"]),
        ("datetime", ["when", "day"]),
    ]
    out = transformer.fit_transform(frame[features])
    assert out.shape == (150, 3 + 3 + 2)
    assert not np.isnan(out).any()


def test_to_text_treats_none_and_nan_alike() -> None:
    got = to_text(pd.DataFrame({"a": pd.Series(["x", None, np.nan, 3], dtype=object)}))
    assert got[0, 0] == "x"
    assert np.isnan(got[1, 0])
    assert np.isnan(got[2, 0])
    assert got[3, 0] == "3"


def test_to_seconds_ignores_resolution_and_reads_zones() -> None:
    naive = pd.Series(pd.to_datetime(["1970-01-02 00:00:01", None]))
    assert to_seconds(pd.DataFrame({"t": naive}))[0, 0] == 86401.0
    assert np.isnan(to_seconds(pd.DataFrame({"t": naive}))[1, 0])
    for unit in ("s", "ms", "us", "ns"):
        assert to_seconds(pd.DataFrame({"t": naive.dt.as_unit(unit)}))[0, 0] == 86401.0
    aware = pd.Series(pd.to_datetime(["1970-01-02 01:00:01+01:00"]))
    assert to_seconds(pd.DataFrame({"t": aware}))[0, 0] == 86401.0
    assert to_seconds(pd.DataFrame({"t": [dt.date(1970, 1, 2)]}))[0, 0] == 86400.0


# -- the search loop ----------------------------------------------------------------------------------


def test_progress_counts_every_fit_and_the_refit() -> None:
    events: list[Progress] = []
    result = train(_frame(), _spec(algorithms=("linear", "random_forest")), progress=events.append)
    assert [e.done for e in events] == list(range(1, 8))
    assert {e.total for e in events} == {7}
    assert events[0].message == "linear candidate 1/2 fold 1/3"
    assert events[5].message == "random_forest candidate 2/2 fold 3/3"
    assert events[6].message.startswith(f"refit {result.algorithm}")
    assert [row["status"] for row in result.leaderboard] == ["complete", "complete"]
    assert result.leaderboard[0]["mean_score"] >= result.leaderboard[1]["mean_score"]
    assert result.algorithm == result.leaderboard[0]["algorithm"]
    assert result.metric == "roc_auc"


def test_cancel_stops_between_fits() -> None:
    events: list[Progress] = []
    asked = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Cancelled):
        train(
            _frame(),
            _spec(algorithms=("linear", "random_forest")),
            progress=events.append,
            should_stop=should_stop,
        )
    assert [e.done for e in events] == [1, 2]


class FakeClock:
    """Time moves one second per finished fit, and only then."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def tick(self, _: Progress) -> None:
        self.now += 1.0


def test_the_time_budget_keeps_the_best_complete_candidate() -> None:
    clock = FakeClock()
    spec = _spec(algorithms=("random_forest", "linear", "extra_trees"), time_budget_s=4.5)
    result = train(_frame(), spec, progress=clock.tick, clock=clock)
    # fits start at t = 0..4; at t = 5 the budget is spent
    assert result.stopped == "time_budget"
    statuses = {row["algorithm"]: (row["status"], row["folds_done"]) for row in result.leaderboard}
    assert statuses == {
        "random_forest": ("complete", 3),
        "linear": ("incomplete", 2),
        "extra_trees": ("skipped", 0),
    }
    assert result.algorithm == "random_forest"
    assert result.leaderboard[0]["algorithm"] == "random_forest"
    assert any("time budget" in w for w in result.warnings)


def test_without_a_complete_candidate_the_first_is_refit_anyway() -> None:
    clock = FakeClock()
    spec = _spec(algorithms=("linear", "random_forest"), time_budget_s=1.5)
    result = train(_frame(), spec, progress=clock.tick, clock=clock)
    assert result.stopped == "time_budget"
    assert result.algorithm == "linear"
    assert [row["status"] for row in result.leaderboard] == ["incomplete", "skipped"]
    assert any("without a score" in w for w in result.warnings)
    assert result.metrics["holdout"]["n_rows"] == 30


def test_halving_narrows_the_candidates_round_by_round() -> None:
    events: list[Progress] = []
    spec = _spec(
        target="amount",
        algorithms=("linear", "elastic_net"),
        search=SearchSpec(method="halving", n_candidates=8),
    )
    result = train(_frame(400), spec, progress=events.append)
    # 10 candidates: rounds of 10, 4 and 2, each 3 folds, then the refit
    assert events[-1].done == events[-1].total == (10 + 4 + 2) * 3 + 1
    assert [(row["round"], row["n_rows"]) for row in result.leaderboard] == (
        [(2, 320)] * 2 + [(1, 107)] * 4 + [(0, 100)] * 10  # 320 / 3, and at least 100 rows
    )
    assert all(row["status"] == "complete" for row in result.leaderboard)
    survivors = {(row["algorithm"], str(row["params"])) for row in result.leaderboard[:2]}
    top_of_round_1 = {(row["algorithm"], str(row["params"])) for row in result.leaderboard[2:4]}
    assert survivors == top_of_round_1
    best = result.leaderboard[0]
    assert (result.algorithm, result.params) == (best["algorithm"], best["params"])
    assert result.metric == "neg_rmse"


def test_the_same_seed_gives_the_same_model() -> None:
    spec = _spec(algorithms=("random_forest", "elastic_net"), search=SearchSpec(n_candidates=2))
    first, second = train(_frame(), spec), train(_frame(), spec)
    assert _without_times(first.leaderboard) == _without_times(second.leaderboard)
    assert first.holdout_index == second.holdout_index
    assert first.importance == second.importance
    rows = _frame(40, seed=9)
    assert predict_frame(first.pipeline, "binary", first.classes, rows) == predict_frame(
        second.pipeline, "binary", second.classes, rows
    )
    other = train(_frame(), attrs.evolve(spec, seed=4))
    assert other.holdout_index != first.holdout_index


def test_parallel_folds_give_the_same_leaderboard() -> None:
    spec = _spec(algorithms=("linear", "random_forest"))
    serial = train(_frame(), spec)
    parallel = train(_frame(), _spec(algorithms=("linear", "random_forest"), n_jobs=2))
    assert _without_times(serial.leaderboard) == _without_times(parallel.leaderboard)


# -- the result and scoring ----------------------------------------------------------------------------------


def test_the_result_describes_the_model() -> None:
    frame = _frame()
    frame.loc[[0, 1, 2], "label"] = None
    result = train(frame, _spec(features=["x", "city", "when"]))
    assert result.features == ("x", "city", "when")
    assert result.classes == ("no", "yes")
    assert result.input_schema == [
        {"name": "x", "type": "float", "nullable": False},
        {"name": "city", "type": "string", "nullable": False},
        {"name": "when", "type": "timestamp", "nullable": False},
    ]
    assert "3 rows whose target 'label' is null were left out" in result.warnings
    assert result.holdout_index is not None
    assert len(result.holdout_index) == 30 and not {0, 1, 2} & set(result.holdout_index)
    assert result.metrics["holdout"]["n_rows"] == 30
    assert result.metrics["train"]["n_rows"] == 117
    assert sorted(i["feature"] for i in result.importance) == ["city", "when", "x"]
    assert result.importance[0]["feature"] == "x"
    json.dumps([result.metrics, result.leaderboard, result.importance, result.input_schema])


def test_a_holdout_frame_replaces_the_split_and_zero_means_none() -> None:
    given = train(_frame(), _spec(), holdout=_frame(50, seed=1))
    assert given.holdout_index is None
    assert given.metrics["holdout"]["n_rows"] == 50
    assert given.metrics["train"]["n_rows"] == 150
    none = train(_frame(), _spec(holdout_fraction=0))
    assert "holdout" not in none.metrics
    assert none.importance


def test_targets_the_model_cannot_be_measured_on_are_refused() -> None:
    odd = _frame(50, seed=1).assign(label="maybe")
    with pytest.raises(InvalidInput, match=r"'label'.*'maybe'"):
        train(_frame(), _spec(), holdout=odd)
    result = train(_frame(), _spec())
    assert evaluate(result.pipeline, "binary", None, _frame(50, seed=1), "label")["n_rows"] == 50
    with pytest.raises(InvalidInput, match="'maybe'"):
        evaluate(result.pipeline, "binary", result.classes, odd, "label")
    regression = train(_frame(), _spec(target="amount"))
    with pytest.raises(InvalidInput, match="'amount'"):
        evaluate(regression.pipeline, "regression", None, _frame().assign(amount="x"), "amount")


def test_predict_frame_is_consistent_and_checks_columns() -> None:
    result = train(_frame(), _spec())
    rows = _frame(20, seed=2)
    got = predict_frame(result.pipeline, result.task, result.classes, rows.assign(extra=1))
    assert set(got) == {"prediction", "probability_no", "probability_yes"}
    for label, no, yes in zip(got["prediction"], got["probability_no"], got["probability_yes"], strict=True):
        assert label == ("yes" if yes > no else "no")
        assert no + yes == pytest.approx(1.0)
    # a time given as text at another resolution scores the same
    as_text = rows.assign(when=rows["when"].dt.strftime("%Y-%m-%dT%H:%M:%S").astype(object))
    assert predict_frame(result.pipeline, result.task, result.classes, as_text) == got
    empty = predict_frame(result.pipeline, result.task, result.classes, rows.iloc[:0])
    assert empty == {"prediction": [], "probability_no": [], "probability_yes": []}
    with pytest.raises(InvalidInput, match="'city'"):
        predict_frame(result.pipeline, result.task, result.classes, rows.drop(columns="city"))


def test_weights_reach_the_model() -> None:
    frame = _frame().assign(w=np.linspace(0.1, 3.0, 150))
    weighted = train(frame, _spec(target="amount", weight_column="w"))
    plain = train(frame, _spec(target="amount", features=["x", "city", "when", "label"]))
    assert weighted.features == plain.features
    assert weighted.leaderboard[0]["mean_score"] != plain.leaderboard[0]["mean_score"]


# -- metrics ----------------------------------------------------------------------------------


def test_regression_metrics_skip_zero_targets_in_mape() -> None:
    got = regression_metrics([0.0, 2.0, 4.0], [1.0, 1.0, 5.0])
    assert got["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert got["mae"] == pytest.approx(1.0)
    assert regression_metrics([0.0, 0.0], [1.0, 1.0])["mape"] is None
    assert regression_metrics([1.0], [1.0])["r2"] is None


def test_classification_metrics_are_plain_json() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["a", "b"], size=500)
    p = np.clip((y == "b") * 0.6 + rng.random(500) * 0.4, 0, 1)
    got = classification_metrics(y.astype(object), np.column_stack([1 - p, p]), ("a", "b"))
    assert got["positive_class"] == "b"
    assert 0 < got["ks"] <= 1
    assert len(got["roc_curve"]["fpr"]) <= 101
    assert got["roc_curve"]["thresholds"][0] is None  # +inf
    assert got["pr_curve"]["thresholds"][-1] is None
    assert len(got["calibration"]["prob_true"]) <= 10
    assert sum(map(sum, got["confusion_matrix"])) == 500
    json.dumps(got, allow_nan=False)
    three = classification_metrics(np.array([0, 1, 2, 2]), np.eye(3)[[0, 1, 2, 1]], (0, 1, 2))
    assert [c["class"] for c in three["roc_curve"]] == [0, 1, 2]
    assert three["accuracy"] == 0.75
    json.dumps(three, allow_nan=False)


# -- bad input: each rule names its column ----------------------------------------------------------------


def _refused(frame: pd.DataFrame, **kw: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        check_features(frame, _spec(**kw))
    return caught.value.message


def test_bad_inputs_name_their_column() -> None:
    frame = _frame(60)
    assert "'nope'" in _refused(frame, target="nope") and "'city'" in _refused(frame, target="nope")
    wide = pd.DataFrame({f"c{i}": [1, 2] for i in range(30)})
    assert "and 10 more" in _refused(wide, target="nope")
    assert "'label'" in _refused(frame.assign(label="yes"))
    assert "no rows" in _refused(frame.assign(label=None))
    assert "'ghost'" in _refused(frame, features=["x", "ghost"])
    assert "'empty'" in _refused(frame.assign(empty=np.nan), features=["x", "empty"])
    assert "`features`" in _refused(frame.assign(empty=np.nan), features=["x", "empty"])
    assert "'w'" in _refused(frame, weight_column="w")
    assert "'city'" in _refused(frame, weight_column="city")
    assert "negative" in _refused(frame.assign(w=-1.0), weight_column="w")
    assert "'label'" in _refused(frame.assign(label=np.arange(60) % 3), task="binary")
    assert "'city'" in _refused(frame, target="city", task="regression")
    assert "'label'" in _refused(frame, task="multiclass")
    assert "'label'" in _refused(frame.assign(label=["a"] + ["b"] * 59))
    assert "'d'" in _refused(frame.assign(d=pd.to_timedelta(np.arange(60), unit="s")), features=["d"])


def test_an_identifier_column_is_refused() -> None:
    frame = pd.DataFrame({"id": [f"row-{i}" for i in range(3000)], "y": np.arange(3000) % 2})
    message = _refused(frame, target="y")
    assert "'id'" in message and "identifier" in message and "`features`" in message
    # many repeated values are a fine feature
    frame["id"] = [f"row-{i % 1200}" for i in range(3000)]
    assert check_features(frame, _spec(target="y"))[0] == ("id",)


def test_a_million_distinct_texts_are_refused() -> None:
    n = 1_000_000
    frame = pd.DataFrame({"id": pd.Series([f"k{i}" for i in range(n)], dtype="str"), "y": np.arange(n) % 2})
    assert "'id'" in _refused(frame, target="y")


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (np.linspace(0, 1, 60), "regression"),  # non-integral floats
        (np.arange(60) % 3 * 1.0, "multiclass"),  # integral floats, few values
        (np.arange(60) % 25 * 1.0, "regression"),  # floats, more than 20 values
        (np.arange(60) % 2 == 0, "binary"),
        (np.arange(60) % 30, "multiclass"),
        (np.arange(120) % 60, "regression"),  # integers, more than 50 values
    ],
)
def test_the_auto_task(values: Any, task: str) -> None:
    frame = pd.DataFrame({"x": np.arange(len(values)), "y": values})
    assert check_features(frame, _spec(target="y"))[1] == task


def test_many_text_classes_are_refused_in_auto() -> None:
    frame = pd.DataFrame({"x": np.arange(120), "y": [f"c{i % 60}" for i in range(120)]})
    assert "'y'" in _refused(frame, target="y")
    assert check_features(frame, _spec(target="y", task="multiclass"))[1] == "multiclass"
