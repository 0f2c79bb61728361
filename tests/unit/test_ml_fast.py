"""The compiled scorer gives exactly the pipeline's answers, or is not used at all."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from studio9.ml.engine.candidates import Candidate
from studio9.ml.engine.columns import input_schema
from studio9.ml.engine.fast import compile_scorer, probe_rows
from studio9.ml.engine.search import make_pipeline as studio9_pipeline
from studio9.ml.engine.training import predict_frame
from studio9.ml.schema import rows_to_columns, rows_to_frame, schema_from_json
from tests.unit.ml_legacy import legacy_pipeline


def _frame(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    amount = rng.normal(50, 10, rows)
    amount[::17] = np.nan
    city = rng.choice(["Oslo", "Rome", "Lima", "Pune"], rows).astype(object)
    city[::13] = None
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 9, rows),
            "member": rng.random(rows) > 0.5,
            "city": city,
            "seen": pd.to_datetime("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), unit="s"),
            "day": [dt.date(2024, 1, 1 + int(d)) for d in rng.integers(0, 28, rows)],
        }
    )


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = []
    for record in frame.to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            if isinstance(value, pd.Timestamp | dt.date):
                value = value.isoformat()
            elif isinstance(value, float) and value != value:
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            row[key] = value
        out.append(row)
    out[0]["city"] = "Quito"  # never seen in training
    return out


def _target(frame: pd.DataFrame, task: str) -> pd.Series:
    return {
        "binary": (frame["amount"].fillna(50) > 50).astype(int),
        "multiclass": frame["visits"] % 3,
        "regression": frame["visits"] * 2.5,
    }[task]


def _assert_compiled_exactly(pipeline: Any, frame: pd.DataFrame, task: str) -> None:
    features = list(frame.columns)
    target = _target(frame, task)
    schema = schema_from_json(input_schema(frame, features))
    probes = rows_to_frame(schema, probe_rows(pipeline, {c.name: (c.type, c.nullable) for c in schema}))
    fast = compile_scorer(pipeline, probes)
    assert fast is not None
    served = rows_to_frame(schema, _rows(frame))
    classes = None if task == "regression" else sorted(set(target.tolist()))
    expected = predict_frame(pipeline, task, classes, served)  # type: ignore[arg-type]
    assert predict_frame(fast, task, classes, served) == expected  # type: ignore[arg-type]
    # The online path: the columns as arrays, no frame built.
    assert predict_frame(fast, task, classes, rows_to_columns(schema, _rows(frame))) == expected  # type: ignore[arg-type]
    np.testing.assert_array_equal(fast.transform(served), pipeline[0].transform(served[features]))


@pytest.mark.parametrize(
    ("algorithm", "task"),
    [("hist_gradient_boosting", "binary"), ("linear", "multiclass"), ("random_forest", "regression")],
)
def test_the_compiled_scorer_answers_exactly_as_the_pipeline(algorithm: str, task: str) -> None:
    frame = _frame()
    pipeline = studio9_pipeline(frame, list(frame.columns), Candidate(algorithm), task, 0)  # type: ignore[arg-type]
    _assert_compiled_exactly(pipeline.fit(frame, _target(frame, task)), frame, task)


def test_a_model_of_the_old_recipe_is_compiled_exactly_too() -> None:
    """Models trained before the recipe named only scikit-learn and numpy are served still."""
    frame = _frame()
    pipeline = legacy_pipeline(frame, list(frame.columns), Candidate("linear"), "multiclass")
    _assert_compiled_exactly(pipeline.fit(frame, _target(frame, "multiclass")), frame, "multiclass")


def test_a_pipeline_of_another_shape_is_not_compiled() -> None:
    frame = pd.DataFrame({"x": [float(i) for i in range(20)]})
    other = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, [i % 2 for i in range(20)])
    assert compile_scorer(other, frame) is None
