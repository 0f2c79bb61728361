"""An unchanged MLflow user script, run by a real mlflow client (2.x or 3.x) against a server.

Run as ``python mlflow_flow.py <mode> [args]`` with ``MLFLOW_TRACKING_URI`` and
``MLFLOW_TRACKING_TOKEN`` set; prints one JSON document. It imports neither studio9 nor pytest:
the interpreter is whichever client is under test (``tests/integration/test_mlflow_client.py``).

Modes:
- ``log NAME``: the user's flow (experiment NAME, nested runs, params, metrics with steps and
  NaN/±inf, tags, an artifact directory, ``log_model`` with a registered name, an alias, loading
  it back by alias, search with filter and order, metric history); every value read back is
  compared with what was logged, and the comparisons are printed.
- ``peek EXPERIMENT_ID RUN_ID``: what another user sees of that experiment and run.
- ``load MODEL_URI CSV``: load a model with ``mlflow.pyfunc.load_model`` and predict the CSV's rows.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

MAJOR = int(mlflow.__version__.split(".")[0])
PARAMS = {"alpha": "0.5", "depth": "3", "solver": "lbfgs"}
LOSSES = [2.5, 1.25, 0.75, float("nan"), float("inf"), float("-inf"), 0.5]
FILES = {
    "notes.txt": b"hello studio9\n",
    "sub/data.json": b'{"a": [1, 2, 3]}',
    "sub/deep/x.bin": bytes(range(256)),
}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", type(exc).__name__))


def log_flow(name: str) -> dict[str, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    checks: dict[str, Any] = {}
    experiment = mlflow.set_experiment(name)
    client = MlflowClient()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch, "outdir")
        for rel, data in FILES.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_bytes(data)
        with mlflow.start_run(run_name="parent") as parent:
            mlflow.log_params(PARAMS)
            mlflow.log_param("extra", 7)
            mlflow.set_tags({"team": "ml", "stage": "dev"})
            mlflow.set_tag("note", "first")
            for step, loss in enumerate(LOSSES):
                mlflow.log_metric("loss", loss, step=step)
            mlflow.log_metrics({"acc": 0.9, "f1": 0.8}, step=1)
            mlflow.log_artifacts(str(folder), artifact_path="outdir")
            with mlflow.start_run(run_name="child", nested=True) as child:
                mlflow.log_param("alpha", "0.1")
                mlflow.log_metric("loss", 3.0)
            x, y = load_iris(return_X_y=True, as_frame=True)
            model = LogisticRegression(max_iter=500).fit(x, y)
            kwargs: dict[str, Any] = {"name": "model"} if MAJOR >= 3 else {"artifact_path": "model"}
            info = mlflow.sklearn.log_model(model, registered_model_name=f"{name}-model", **kwargs)
        version = info.registered_model_version
        client.set_registered_model_alias(f"{name}-model", "champion", str(version))
        by_alias = client.get_model_version_by_alias(f"{name}-model", "champion")
        checks["alias_version"] = [str(by_alias.version), str(version)]
        loaded = mlflow.pyfunc.load_model(f"models:/{name}-model@champion")
        checks["predictions_equal"] = [int(v) for v in loaded.predict(x)] == [
            int(v) for v in model.predict(x)
        ]

        run = client.get_run(parent.info.run_id)
        checks["params"] = [run.data.params, {**PARAMS, "extra": "7"}]
        checks["tags"] = {k: run.data.tags.get(k) for k in ("team", "stage", "note", "mlflow.runName")}
        checks["latest_loss"] = [run.data.metrics["loss"], LOSSES[-1]]
        checks["status"] = run.info.status
        history = client.get_metric_history(parent.info.run_id, "loss")
        checks["history_steps"] = [m.step for m in history] == list(range(len(LOSSES)))
        checks["history_values"] = all(_same(m.value, v) for m, v in zip(history, LOSSES, strict=True))
        checks["history_len"] = [len(history), len(LOSSES)]
        nested = client.get_run(child.info.run_id)
        checks["parent_tag"] = [nested.data.tags.get("mlflow.parentRunId"), parent.info.run_id]

        found = mlflow.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string="params.alpha = '0.5' and metrics.acc > 0.5",
            order_by=["metrics.acc DESC"],
            output_format="list",
        )
        checks["search_filter"] = [[r.info.run_id for r in found], [parent.info.run_id]]
        ordered = client.search_runs(
            [experiment.experiment_id], "", order_by=["metrics.loss DESC"], max_results=1
        )
        checks["search_order"] = [[r.info.run_id for r in ordered], [child.info.run_id]]
        paged = client.search_runs([experiment.experiment_id], "", max_results=1)
        checks["search_page_token"] = bool(paged.token)

        listed = sorted(a.path for a in client.list_artifacts(parent.info.run_id, "outdir"))
        checks["listed"] = [listed, ["outdir/notes.txt", "outdir/sub"]]
        target = Path(scratch, "download")
        target.mkdir()
        local = mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path="outdir", dst_path=str(target)
        )
        got = {str(p.relative_to(local)): p.read_bytes() for p in Path(local).rglob("*") if p.is_file()}
        checks["artifacts_equal"] = got == FILES
    return {
        "experiment_id": experiment.experiment_id,
        "run_id": parent.info.run_id,
        "child_run_id": child.info.run_id,
        "model_version": str(version),
        "checks": checks,
    }


def peek(experiment_id: str, run_id: str) -> dict[str, Any]:
    client = MlflowClient()
    seen: dict[str, Any] = {}
    try:
        run = client.get_run(run_id)
        seen["run"] = {"params": run.data.params, "loss": run.data.metrics.get("loss")}
    except MlflowException as exc:
        seen["run"] = _code(exc)
    try:
        seen["search"] = len(client.search_runs([experiment_id], ""))
    except MlflowException as exc:
        seen["search"] = _code(exc)
    try:
        history = client.get_metric_history(run_id, "loss")
        seen["history_len"] = len(history)
    except MlflowException as exc:
        seen["history_len"] = _code(exc)
    try:
        client.log_param(run_id, "intruder", "1")
        seen["write"] = "allowed"
    except MlflowException as exc:
        seen["write"] = _code(exc)
    return seen


def load(model_uri: str, csv_path: str) -> dict[str, Any]:
    import pandas as pd

    frame = pd.read_csv(csv_path)
    model = mlflow.pyfunc.load_model(model_uri)
    return {"predictions": [str(v) for v in model.predict(frame)]}


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    result = {"log": log_flow, "peek": peek, "load": load}[mode](*args)
    print(json.dumps(result, default=str))
