"""Model files (studio9.ml.persistence): skops round trips, the trust rules, damaged and crafted files."""

from __future__ import annotations

import datetime as dt
import importlib
import io
import sys
import zipfile
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.ensemble import BaggingRegressor, RandomForestRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeRegressor

from studio9.errors import Conflict, InvalidInput
from studio9.ml import persistence
from studio9.ml.engine.candidates import Candidate
from studio9.ml.engine.search import make_pipeline
from studio9.ml.engine.spec import ALGORITHMS, SearchSpec, TrainSpec
from studio9.ml.engine.training import train
from studio9.ml.errors import InvalidModelFile, OnnxUnavailable, UntrustedModel
from studio9.ml.persistence import (
    CURRENT_TRUSTED_TYPES,
    LEGACY_TRUSTED_TYPES,
    TRUSTED_TYPES,
    dump_model,
    export_onnx,
    load_model,
    untrusted_types,
)
from studio9.ml.schema import ColumnSpec
from tests.unit.ml_legacy import legacy_pipeline

# Small models: the point is the types a file holds, not their quality.
SMALL = {
    "random_forest": {"n_estimators": 4},
    "extra_trees": {"n_estimators": 4},
    "hist_gradient_boosting": {"max_iter": 5},
}
FEATURES = ["age", "income", "city", "plan", "member", "seen", "seen_utc", "joined"]


def _frame(rows: int = 120) -> pd.DataFrame:
    """Every column kind a table gives a model, nulls included, and three targets."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2024-01-01")
    seconds = pd.to_timedelta(rng.integers(0, 10**7, rows), unit="s")
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows),
            "income": np.where(rng.random(rows) < 0.1, np.nan, rng.normal(50, 10, rows)),
            "city": pd.Series(rng.choice(["oslo", "lima", "pune", None], rows), dtype=object),
            "plan": pd.Series(rng.choice(["basic", "pro"], rows)),  # pandas' str dtype
            "member": rng.random(rows) < 0.5,
            "seen": (start + seconds).astype("datetime64[us]"),
            "seen_utc": (start + seconds).astype("datetime64[us]").tz_localize("UTC"),
            "joined": pd.Series(
                [
                    dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) if d > 9 else None
                    for d in rng.integers(0, 300, rows)
                ],
                dtype=object,
            ),
            "spend": rng.normal(size=rows),
            "churned": rng.random(rows) < 0.4,
            "segment": rng.choice(["a", "b", "c"], rows),
        }
    )


TARGETS = {"regression": "spend", "binary": "churned", "multiclass": "segment"}


def _fitted(algorithm: str, task: str, frame: pd.DataFrame | None = None) -> Any:
    frame = _frame() if frame is None else frame
    pipeline = make_pipeline(frame, FEATURES, Candidate(algorithm, SMALL.get(algorithm, {})), task, 0)
    return pipeline.fit(frame[FEATURES], frame[TARGETS[task]].to_numpy())


def _assert_same_answers(first: Any, second: Any, frame: pd.DataFrame) -> None:
    np.testing.assert_array_equal(first.predict(frame[FEATURES]), second.predict(frame[FEATURES]))
    if hasattr(first, "predict_proba"):
        np.testing.assert_array_equal(
            first.predict_proba(frame[FEATURES]), second.predict_proba(frame[FEATURES])
        )


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_estimator_kind_round_trips_with_nothing_untrusted(algorithm: str, task: str) -> None:
    frame = _frame()
    pipeline = _fitted(algorithm, task, frame)
    data = dump_model(pipeline)

    assert untrusted_types(data) == []
    loaded = load_model(data)
    assert type(loaded) is Pipeline
    assert type(loaded.steps[-1][1]) is type(pipeline.steps[-1][1])
    _assert_same_answers(pipeline, loaded, frame)


def test_a_trained_model_of_the_engine_round_trips() -> None:
    frame = _frame()
    result = train(
        frame[[*FEATURES, "churned"]],
        TrainSpec(target="churned", search=SearchSpec(method="none"), algorithms=("hist_gradient_boosting",)),
    )
    data = dump_model(result.pipeline)

    assert untrusted_types(data) == []
    _assert_same_answers(result.pipeline, load_model(data), frame)


def test_the_trusted_types_are_data_or_harmless_functions() -> None:
    assert TRUSTED_TYPES == CURRENT_TRUSTED_TYPES | LEGACY_TRUSTED_TYPES
    for name in TRUSTED_TYPES:
        module_name, _, attribute = name.rpartition(".")
        found = getattr(importlib.import_module(module_name), attribute)
        if name in LEGACY_TRUSTED_TYPES:
            assert module_name == "studio9.ml.engine.preprocessing", name
            assert callable(found), name  # a FunctionTransformer function of ours, in old models
        elif name == "numpy.asarray":
            assert found is np.asarray  # converts its input to an array: nothing else
        else:
            assert isinstance(found, type), name
            assert module_name.split(".")[0] in {"numpy", "sklearn"}, name
    assert not {n for n in TRUSTED_TYPES if n.split(".")[0] in {"builtins", "functools", "os", "subprocess"}}
    assert "numpy.load" not in TRUSTED_TYPES


def test_what_skops_reports_for_our_models_is_exactly_the_current_trusted_types() -> None:
    """Nothing in CURRENT_TRUSTED_TYPES is dead weight: each one is needed by some Studio9 model;
    and none of them is Studio9's own code."""
    reported: set[str] = set()
    frame = _frame()
    for algorithm in ALGORITHMS:
        reported |= set(skops.io.get_untrusted_types(data=dump_model(_fitted(algorithm, "binary", frame))))
    assert reported == CURRENT_TRUSTED_TYPES
    assert not {name for name in reported if name.startswith("studio9")}


def test_a_model_trained_before_the_portable_recipe_still_loads() -> None:
    frame = _frame()
    for algorithm, task in (("linear", "binary"), ("random_forest", "regression")):
        candidate = Candidate(algorithm, SMALL.get(algorithm, {}))
        old = legacy_pipeline(frame, FEATURES, candidate, task)
        old.fit(frame[FEATURES], frame[TARGETS[task]].to_numpy())
        data = dump_model(old)

        assert set(skops.io.get_untrusted_types(data=data)) >= LEGACY_TRUSTED_TYPES
        assert untrusted_types(data) == []
        _assert_same_answers(old, load_model(data), frame)


# -- types the caller must allow ---------------------------------------------------------------


class Doubler(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """A custom transformer: skops cannot know it, so a file holding it is untrusted."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return np.asarray(X, dtype=float) * 2


def halve(X: Any) -> Any:
    return np.asarray(X, dtype=float) / 2


def _numbers() -> tuple[Any, Any]:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    return X, X @ np.array([1.0, -2.0, 0.5])


DOUBLER = f"{__name__}.Doubler"
HALVE = f"{__name__}.halve"


@pytest.mark.parametrize(
    ("step", "name"),
    [(Doubler(), DOUBLER), (FunctionTransformer(func=halve), HALVE)],
    ids=["custom class", "module function"],
)
def test_a_custom_type_is_refused_by_name_and_loads_once_allowed(step: Any, name: str) -> None:
    X, y = _numbers()
    pipeline = Pipeline([("custom", step), ("model", Ridge())]).fit(X, y)
    data = dump_model(pipeline)

    assert untrusted_types(data) == [name]
    with pytest.raises(UntrustedModel) as refused:
        load_model(data)
    assert refused.value.types == (name,)
    assert name in str(refused.value)
    assert "allow-list" in str(refused.value)
    assert isinstance(refused.value, InvalidInput)

    loaded = load_model(data, allowed=[name])
    np.testing.assert_array_equal(loaded.predict(X), pipeline.predict(X))


def test_every_offending_type_is_named_and_allowing_one_is_not_enough() -> None:
    X, y = _numbers()
    pipeline = Pipeline([("double", Doubler()), ("model", Ridge())]).fit(X, y)
    pipeline.steps.insert(0, ("evil", FunctionTransformer(func=eval)))
    data = dump_model(pipeline)

    with pytest.raises(UntrustedModel) as refused:
        load_model(data, allowed=[DOUBLER])
    assert refused.value.types == ("builtins.eval",)
    with pytest.raises(UntrustedModel) as refused:
        load_model(data)
    assert refused.value.types == ("builtins.eval", DOUBLER)
    assert "builtins.eval, " + DOUBLER in str(refused.value)


# -- files that are not models -----------------------------------------------------------------


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a model at all",
        np.random.default_rng(0).bytes(4096),
        _zip({"model.pkl": b"\x80\x04N."}),
        _zip({"schema.json": b"{not json"}),
        _zip({"schema.json": b'{"protocol": "x"}'}),
    ],
    ids=["empty", "text", "random bytes", "zip without schema", "schema not json", "bad protocol"],
)
def test_a_file_that_is_not_a_skops_file_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidModelFile, match="not a skops model file"):
        untrusted_types(data)
    with pytest.raises(InvalidModelFile, match="not a skops model file"):
        load_model(data)


def test_a_cut_off_model_file_is_invalid() -> None:
    data = dump_model(_fitted("linear", "regression"))
    with pytest.raises(InvalidModelFile):
        load_model(data[: len(data) // 2])


def test_a_skops_file_of_something_else_than_a_fitted_estimator_is_invalid() -> None:
    with pytest.raises(InvalidModelFile, match="holds a dict, not a scikit-learn estimator"):
        load_model(skops.io.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(InvalidModelFile, match="not fitted"):
        load_model(dump_model(Pipeline([("model", Ridge())])))


def test_a_file_that_unpacks_too_large_is_refused_before_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    data = dump_model(_fitted("linear", "regression"))
    monkeypatch.setattr(persistence, "MAX_UNPACKED_BYTES", 1_000)
    with pytest.raises(InvalidModelFile, match="unpacks to more than"):
        load_model(data)


# -- crafted trees: trusted types, checked structure -------------------------------------------


def _forest() -> tuple[Any, Any]:
    X, y = _numbers()
    return RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y), X


def _with_nodes(tree: Any, change: Any) -> None:
    state = tree.__getstate__()
    nodes = state["nodes"].copy()
    change(nodes)
    tree.__setstate__({**state, "nodes": nodes})


@pytest.mark.parametrize(
    "change",
    [
        lambda nodes: nodes["left_child"].__setitem__(0, 10**6),
        lambda nodes: nodes["right_child"].__setitem__(0, 0),  # a loop back to the root
        lambda nodes: nodes["feature"].__setitem__(0, 3),  # the forest takes 3 features: 0..2
        lambda nodes: nodes["feature"].__setitem__(0, -5),
    ],
    ids=["child past the end", "child loops back", "feature too large", "negative feature"],
)
def test_a_tree_pointing_outside_its_arrays_is_refused(change: Any) -> None:
    forest, X = _forest()
    assert load_model(dump_model(forest)).predict(X).shape == (40,)  # the untouched forest loads
    _with_nodes(forest.estimators_[1].tree_, change)
    with pytest.raises(InvalidModelFile, match="node links outside its arrays"):
        load_model(dump_model(forest))


def test_a_forest_member_taking_more_features_than_the_forest_is_refused() -> None:
    forest, X = _forest()
    wide = np.hstack([X, X])
    forest.estimators_[0] = DecisionTreeRegressor(random_state=0).fit(wide, wide[:, 5])
    with pytest.raises(InvalidModelFile, match="does not take its 3 features"):
        load_model(dump_model(forest))


def test_a_gradient_boosting_tree_pointing_outside_its_arrays_is_refused() -> None:
    frame = _frame()
    pipeline = _fitted("hist_gradient_boosting", "regression", frame)
    nodes = pipeline.named_steps["model"]._predictors[2][0].nodes
    nodes["feature_idx"][0] = 10_000
    with pytest.raises(InvalidModelFile, match="gradient boosting tree of the model has node links"):
        load_model(dump_model(pipeline))


def test_a_gradient_boosting_tree_with_native_categorical_splits_is_refused() -> None:
    pipeline = _fitted("hist_gradient_boosting", "regression")
    nodes = pipeline.named_steps["model"]._predictors[0][0].nodes
    nodes["is_categorical"][0] = 1
    with pytest.raises(InvalidModelFile, match="native categorical"):
        load_model(dump_model(pipeline))


def test_bagged_trees_are_refused_since_their_column_subsets_are_unchecked() -> None:
    X, y = _numbers()
    bagging = BaggingRegressor(DecisionTreeRegressor(), n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(InvalidModelFile, match="BaggingRegressor holds decision trees"):
        load_model(dump_model(bagging))


# -- ONNX --------------------------------------------------------------------------------------


def test_onnx_export_without_skl2onnx_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skl2onnx", None)  # absent even where it is installed
    schema = [ColumnSpec("age", "integer", False), ColumnSpec("city", "string", True)]
    with pytest.raises(OnnxUnavailable) as missing:
        export_onnx(_fitted("linear", "binary"), schema)
    assert str(missing.value) == "ONNX export needs skl2onnx: pip install 'studio9[onnx]'"
    assert isinstance(missing.value, Conflict)
