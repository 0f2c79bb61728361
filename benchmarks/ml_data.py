"""The generated data and the baselines of ``ml.py``: a labelled table of mixed feature columns
(written as CSV; JSON rows for the online measurements), the raw scikit-learn training loop, and
the bare Litestar prediction app (``bare_app``, a uvicorn factory).

``--cols`` feature columns (at least 3): 70 % numbers (``x00``, ``x01``…; floats with 4 decimals,
about 1 % null in every third one), then text categories (``c0``, ``c1``…; 3 to 30 distinct
values), then one timestamp (``at``, a
year of seconds). The target ``label`` is 0/1 (about 35 % ones): a logistic function of some of
the numbers (one of them squared, one product), of the categories and of the hour of the day,
plus noise, so a good model reaches an AUC around 0.85 and boosting has something to find.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TARGET = "label"
TIME_COLUMN = "at"
#: Distinct values of the text columns, dealt in turn.
CARDINALITIES = (3, 5, 12, 30, 4, 8, 6, 20)
NULL_SHARE = 0.01
HOLDOUT_FRACTION = 0.2  # ml.train's default
IMPORTANCE_REPEATS = 5  # studio9.ml.engine.training's
MODEL_FILE_ENV = "STUDIO9_BENCH_ML_MODEL"  # the skops file bare_app serves
EPOCH_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z


def column_counts(cols: int) -> tuple[int, int]:
    """``(numbers, categories)`` of ``cols`` feature columns (the timestamp is the last one)."""
    if cols < 3:
        raise ValueError("--cols must be at least 3 (a number, a category and the timestamp)")
    numbers = max(1, round(0.7 * cols))
    return numbers, cols - 1 - numbers


def generate(rows: int, cols: int, seed: int = 0) -> Any:
    """The table (a ``pyarrow.Table``): the feature columns in the module doc's order, then ``label``."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    numbers, categories = column_counts(cols)
    data: dict[str, Any] = {}
    logit = np.full(rows, -1.0)
    first = np.zeros(rows)
    for j in range(numbers):
        x = rng.standard_normal(rows)
        weight = 1.2 / (1 + j) if j < 8 else 0.0  # the first eight carry the signal, decreasing
        logit += weight * x
        if j == 0:
            first = x
        if j == 1:
            logit += 0.6 * (x**2 - 1)
        if j == 2:
            logit += 0.5 * x * first
        values = np.round(x * (10.0 ** (j % 3)), 4)
        mask = rng.random(rows) < NULL_SHARE if j % 3 == 2 else None
        data[f"x{j:02d}"] = pa.array(values, mask=mask)
    for k in range(categories):
        distinct = CARDINALITIES[k % len(CARDINALITIES)]
        # skewed frequencies, so rare values exist
        codes = np.minimum((rng.pareto(1.5, rows) * distinct / 4).astype(np.int64), distinct - 1)
        effects = rng.normal(0.0, 0.8 if k < 4 else 0.0, distinct)
        logit += effects[codes]
        names = pa.array([f"c{k}-{v:03d}" for v in range(distinct)])
        data[f"c{k}"] = names.take(pa.array(codes))
    seconds = rng.integers(0, 365 * 86_400, rows)
    hour = (seconds // 3600) % 24
    logit += 0.7 * np.sin(2 * math.pi * hour / 24)
    data[TIME_COLUMN] = pa.array(EPOCH_2024 + seconds).cast(pa.timestamp("s"))
    noise = rng.logistic(0.0, 1.0, rows)
    data[TARGET] = pa.array((logit + noise > 0).astype(np.int64))
    return pa.table(data)


def write_csv(table: Any, path: Path) -> int:
    """``table`` as CSV (a header, ``2024-01-01 00:00:00`` timestamps, empty nulls); its bytes."""
    import pyarrow.csv as pcsv

    pcsv.write_csv(table, str(path))
    return path.stat().st_size


def json_rows(table: Any, count: int, offset: int = 0) -> list[dict[str, Any]]:
    """``count`` rows of ``table`` from ``offset`` without the target, as a JSON body carries them:
    numbers (null as None), text, and the timestamp as an ISO 8601 string."""
    picked = table.drop_columns([TARGET]).slice(offset, count).to_pylist()
    for row in picked:
        row[TIME_COLUMN] = row[TIME_COLUMN].isoformat()
    return list(picked)


# -- the raw scikit-learn baseline -----------------------------------------------------------
@dataclass
class RawTrain:
    """What ``raw_train`` measured: seconds per step, and each candidate's mean CV score."""

    seconds: dict[str, float] = field(default_factory=dict)
    params: list[dict[str, Any]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    best: int = 0
    extras: dict[str, float] = field(default_factory=dict)


def raw_train(
    parts: Sequence[Path], search: dict[str, Any], algorithm: str, seed: int, *, extras: Path | None
) -> RawTrain:
    """The search ``ml.train`` makes, in plain scikit-learn on the table's stored Parquet parts.

    Only the pipelines and the candidate list come from ``studio9.ml.engine`` (so they are the
    same objects); the hold-out split, the folds and the loop are scikit-learn calls in this
    function: ``train_test_split(stratify=y)``, ``StratifiedKFold(shuffle=True)``, then per
    candidate and fold ``clone(pipeline).fit`` and the ROC AUC of ``predict_proba``, then the best
    refitted on every training row. ``extras`` (a scratch directory) also times, on the refitted
    model, what the job does after the refit: metrics (``predict_proba`` of the training and hold-out rows),
    permutation importance on the hold-out rows (the job's scorer, 5 repeats) and the scored
    training and hold-out rows written as Parquet."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split

    from studio9.ml.engine.candidates import candidate_list
    from studio9.ml.engine.search import make_pipeline
    from studio9.ml.engine.spec import TrainSpec

    out = RawTrain()
    clock = time.perf_counter()
    frame = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    out.seconds["read"], clock = time.perf_counter() - clock, time.perf_counter()
    y_all = frame[TARGET].to_numpy(dtype=np.int64)
    x_all = frame.drop(columns=[TARGET])
    features = list(x_all.columns)
    train_at, held_at = train_test_split(
        np.arange(len(y_all)), test_size=HOLDOUT_FRACTION, random_state=seed, stratify=y_all
    )
    x, y = x_all.iloc[train_at].reset_index(drop=True), y_all[train_at]
    spec = TrainSpec(target=TARGET, algorithms=[algorithm], search=search, seed=seed)
    candidates = candidate_list(spec, "binary")
    folds = list(StratifiedKFold(n_splits=spec.search.cv_folds, shuffle=True, random_state=seed).split(x, y))
    for candidate in candidates:
        out.params.append(dict(candidate.params))
        template = make_pipeline(x, features, candidate, "binary", seed)
        fold_scores = []
        for fit_rows, valid_rows in folds:
            model = clone(template).fit(x.iloc[fit_rows], y[fit_rows])
            proba = model.predict_proba(x.iloc[valid_rows])[:, 1]
            fold_scores.append(float(roc_auc_score(y[valid_rows], proba)))
        out.scores.append(float(np.mean(fold_scores)))
    out.seconds["search"], clock = time.perf_counter() - clock, time.perf_counter()
    out.best = int(np.argmax(out.scores))
    pipeline = make_pipeline(x, features, candidates[out.best], "binary", seed).fit(x, y)
    out.seconds["refit"] = time.perf_counter() - clock
    if extras is not None:
        held = x_all.iloc[held_at].reset_index(drop=True)
        _extras(out, pipeline, (x, y), (held, y_all[held_at]), seed, extras)
    return out


def _extras(out: RawTrain, pipeline: Any, train: Any, held: Any, seed: int, scratch: Path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import roc_auc_score

    def auc(model: Any, x: Any, y: Any) -> float:
        return float(roc_auc_score(y, model.predict_proba(x)[:, 1]))

    clock = time.perf_counter()
    for x, y in (train, held):
        auc(pipeline, x, y)
    out.extras["metrics"], clock = time.perf_counter() - clock, time.perf_counter()
    permutation_importance(
        pipeline, held[0], held[1], scoring=auc, n_repeats=IMPORTANCE_REPEATS, random_state=seed
    )
    out.extras["importance"], clock = time.perf_counter() - clock, time.perf_counter()
    for i, (x, _) in enumerate((train, held)):
        proba = pipeline.predict_proba(x)
        scored = x.assign(
            prediction=pipeline.classes_[np.argmax(proba, axis=1)],
            probability_0=proba[:, 0],
            probability_1=proba[:, 1],
        )
        path = scratch / f"raw-scored-{i}.parquet"
        pq.write_table(pa.Table.from_pandas(scored, preserve_index=False), str(path))
        path.unlink()
    out.extras["outputs"] = time.perf_counter() - clock


# -- measuring ------------------------------------------------------------------------------
def pct_ms(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` percentile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


async def load(
    url: str, headers: dict[str, str], bodies: Sequence[bytes], clients: int, seconds: float
) -> tuple[int, list[float]]:
    """``clients`` keep-alive connections posting ``bodies`` in turn for ``seconds``: the requests
    done and their latencies. Any answer but 200 raises."""
    import asyncio

    import httpx

    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60.0) as client:
        end = time.perf_counter() + seconds

        async def one(i: int) -> None:
            while time.perf_counter() < end:
                started = time.perf_counter()
                answer = await client.post(url, content=bodies[i % len(bodies)])
                if answer.status_code != 200:
                    raise RuntimeError(f"POST {url} answered {answer.status_code}: {answer.text[:300]}")
                latencies.append(time.perf_counter() - started)
                i += clients

        await asyncio.gather(*(one(k) for k in range(clients)))
    return len(latencies), latencies


# -- the bare Litestar baseline ------------------------------------------------------------
def bare_app() -> Any:
    """The bare baseline (``uvicorn --factory benchmarks.ml_data:bare_app``): one route,
    ``POST /predict {"rows": [...]}``, that makes a DataFrame of the rows and answers
    ``pipeline.predict_proba`` in Studio9's answer shape, in a worker thread as Studio9 scores.
    The pipeline is the skops file named by ``$STUDIO9_BENCH_ML_MODEL``, loaded at start."""
    import numpy as np
    import pandas as pd
    from litestar import Litestar, post

    from studio9.ml.persistence import load_model

    pipeline = load_model(Path(os.environ[MODEL_FILE_ENV]).read_bytes())
    classes = [c.item() if isinstance(c, np.generic) else c for c in pipeline.classes_]
    names = [str(c) for c in classes]

    @post("/predict", status_code=200, sync_to_thread=True)
    def predict(data: dict[str, Any]) -> dict[str, Any]:
        proba = pipeline.predict_proba(pd.DataFrame(data["rows"]))
        best = np.argmax(proba, axis=1)
        return {
            "predictions": [
                {"label": classes[b], "probabilities": dict(zip(names, p, strict=True))}
                for b, p in zip(best.tolist(), proba.tolist(), strict=True)
            ]
        }

    return Litestar(route_handlers=[predict], logging_config=None, debug=False)


__all__ = [
    "TARGET",
    "TIME_COLUMN",
    "RawTrain",
    "bare_app",
    "column_counts",
    "generate",
    "json_rows",
    "load",
    "pct_ms",
    "raw_train",
    "write_csv",
]
