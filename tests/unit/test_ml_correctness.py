"""The training engine builds exactly the model its documentation describes.

On scikit-learn's bundled data sets (breast cancer: binary, diabetes: regression, wine:
multiclass), ``train`` with one algorithm and no search must give the same predictions and the
same metrics as the pipeline built here by hand from the documented recipe: the preprocessor of
``studio9.ml.engine.preprocessing``, the estimator of ``studio9.ml.engine.candidates`` and the
hold-out split of ``studio9.ml.engine.training``. Each data set gets some missing values and a
text column (with missing values too), so that the imputers and the encoder take part.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from studio9.ml.engine.spec import SearchSpec, TrainSpec
from studio9.ml.engine.training import evaluate, predict_frame, train

SEED = 7


def _frame(loader: Any) -> pd.DataFrame:
    frame: pd.DataFrame = loader(as_frame=True).frame
    first, second, third = frame.columns[:3]
    frame.loc[frame.index % 11 == 0, first] = np.nan
    frame.loc[frame.index % 7 == 0, second] = np.nan
    band = pd.qcut(frame[third], 3, labels=["low", "mid", "high"]).astype(object)
    band[frame.index % 13 == 0] = None
    return frame.assign(band=band)


def _by_hand(frame: pd.DataFrame, model: Any, *, stratify: bool) -> tuple[Any, pd.DataFrame, pd.Series]:
    """The documented recipe, written out with scikit-learn alone: numeric features and the one
    text column (an object column holding None: both None and NaN are missing)."""
    features = [c for c in frame.columns if c != "target"]
    numbers = [c for c in features if c != "band"]
    X, y = frame[features], frame["target"]
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.2, random_state=SEED, stratify=y if stratify else None
    )
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    text = Pipeline(
        [
            ("nan", SimpleImputer(strategy="constant", fill_value="\x00missing")),
            ("none", SimpleImputer(missing_values=None, strategy="constant", fill_value="\x00missing")),
            ("impute", SimpleImputer(missing_values="\x00missing", strategy="most_frequent")),
            (
                "encode",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=64, sparse_output=False),
            ),
        ]
    )
    preprocess = ColumnTransformer(
        [("numeric", numeric, numbers), ("categorical", text, ["band"])], remainder="drop"
    )
    pipeline = Pipeline([("preprocess", preprocess), ("model", model)])
    pipeline.fit(X_train, y_train.to_numpy())
    return pipeline, X_test, y_test


def _train(frame: pd.DataFrame, algorithm: str) -> Any:
    spec = TrainSpec(target="target", algorithms=(algorithm,), search=SearchSpec(method="none"), seed=SEED)
    return train(frame, spec)


@pytest.mark.parametrize(
    ("algorithm", "model"),
    [
        ("random_forest", RandomForestClassifier(random_state=SEED)),
        ("linear", LogisticRegression(max_iter=1000, random_state=SEED)),
    ],
)
def test_binary_equals_the_pipeline_built_by_hand(algorithm: str, model: Any) -> None:
    frame = _frame(load_breast_cancer)
    result = _train(frame, algorithm)
    pipeline, X_test, y_test = _by_hand(frame, model, stratify=True)

    assert result.task == "binary"
    assert result.classes == (0, 1)
    assert result.holdout_index == X_test.index.tolist()
    got = predict_frame(result.pipeline, result.task, result.classes, X_test)
    expected_proba = pipeline.predict_proba(X_test)
    np.testing.assert_array_equal(got["prediction"], pipeline.predict(X_test))
    np.testing.assert_allclose(got["probability_0"], expected_proba[:, 0], rtol=1e-12)
    np.testing.assert_allclose(got["probability_1"], expected_proba[:, 1], rtol=1e-12)

    holdout = result.metrics["holdout"]
    assert holdout["n_rows"] == len(y_test)
    assert holdout["accuracy"] == pytest.approx(accuracy_score(y_test, pipeline.predict(X_test)), rel=1e-12)
    assert holdout["roc_auc"] == pytest.approx(roc_auc_score(y_test, expected_proba[:, 1]), rel=1e-12)
    assert holdout["log_loss"] == pytest.approx(log_loss(y_test, expected_proba), rel=1e-12)
    assert result.leaderboard[0]["status"] == "complete"
    assert result.leaderboard[0]["algorithm"] == algorithm
    # the same model measured again by evaluate()
    again = evaluate(result.pipeline, result.task, result.classes, frame.iloc[X_test.index], "target")
    assert again["roc_auc"] == pytest.approx(holdout["roc_auc"], rel=1e-12)


@pytest.mark.parametrize(
    ("algorithm", "model"),
    [("random_forest", RandomForestRegressor(random_state=SEED)), ("linear", Ridge(random_state=SEED))],
)
def test_regression_equals_the_pipeline_built_by_hand(algorithm: str, model: Any) -> None:
    frame = _frame(load_diabetes)
    result = _train(frame, algorithm)
    pipeline, X_test, y_test = _by_hand(frame, model, stratify=False)

    assert result.task == "regression"
    assert result.classes is None
    assert result.holdout_index == X_test.index.tolist()
    expected = pipeline.predict(X_test)
    got = predict_frame(result.pipeline, result.task, result.classes, X_test)
    assert list(got) == ["prediction"]
    np.testing.assert_allclose(got["prediction"], expected, rtol=1e-12)
    holdout = result.metrics["holdout"]
    assert holdout["rmse"] == pytest.approx(root_mean_squared_error(y_test, expected), rel=1e-12)
    assert holdout["mae"] == pytest.approx(mean_absolute_error(y_test, expected), rel=1e-12)
    assert holdout["r2"] == pytest.approx(r2_score(y_test, expected), rel=1e-12)


def test_multiclass_equals_the_pipeline_built_by_hand() -> None:
    frame = _frame(load_wine)
    result = _train(frame, "random_forest")
    pipeline, X_test, y_test = _by_hand(frame, RandomForestClassifier(random_state=SEED), stratify=True)

    assert result.task == "multiclass"
    assert result.classes == (0, 1, 2)
    got = predict_frame(result.pipeline, result.task, result.classes, X_test)
    expected_proba = pipeline.predict_proba(X_test)
    np.testing.assert_array_equal(got["prediction"], pipeline.predict(X_test))
    for j in range(3):
        np.testing.assert_allclose(got[f"probability_{j}"], expected_proba[:, j], rtol=1e-12)
    holdout = result.metrics["holdout"]
    labels = pipeline.predict(X_test)
    assert holdout["accuracy"] == pytest.approx(accuracy_score(y_test, labels), rel=1e-12)
    assert holdout["f1_macro"] == pytest.approx(f1_score(y_test, labels, average="macro"), rel=1e-12)
    assert holdout["log_loss"] == pytest.approx(log_loss(y_test, expected_proba), rel=1e-12)
    assert holdout["roc_auc"] == pytest.approx(
        roc_auc_score(y_test, expected_proba, multi_class="ovr", average="macro"), rel=1e-12
    )
    assert np.trace(np.array(holdout["confusion_matrix"])) == int((labels == y_test.to_numpy()).sum())
