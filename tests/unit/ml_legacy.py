"""The pipeline of models trained before Studio9's recipe named only scikit-learn and numpy:
``FunctionTransformer(to_text)`` and ``FunctionTransformer(to_seconds)`` steps. Such model files
are stored and served still, so tests build one exactly as training did then."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from studio9.ml.engine.candidates import Candidate, make_estimator
from studio9.ml.engine.columns import column_kind
from studio9.ml.engine.preprocessing import to_seconds, to_text


def legacy_pipeline(frame: pd.DataFrame, features: Sequence[str], candidate: Candidate, task: Any) -> Any:
    """The unfitted pipeline that ``search.make_pipeline`` made before (seed 0)."""
    groups: dict[str, list[str]] = {"numeric": [], "categorical": [], "datetime": []}
    for name in features:
        groups[str(column_kind(frame[name]))].append(name)
    blocks = {
        "numeric": [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())],
        "categorical": [
            ("text", FunctionTransformer(to_text, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="most_frequent")),
            (
                "encode",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=64, sparse_output=False),
            ),
        ],
        "datetime": [
            ("seconds", FunctionTransformer(to_seconds, feature_names_out="one-to-one")),
            ("impute", SimpleImputer(strategy="median")),
            ("scale", StandardScaler()),
        ],
    }
    preprocess = ColumnTransformer(
        [(name, Pipeline(steps), groups[name]) for name, steps in blocks.items() if groups[name]],
        remainder="drop",
    )
    model = make_estimator(candidate.algorithm, task, 0).set_params(**candidate.params)
    return Pipeline([("preprocess", preprocess), ("model", model)])
