"""``ml.train`` logs MLflow-style runs (``studio9.ml.run_log``): a parent run in the owner's
experiment, a child run per candidate, the model version's registry ``run_id`` the parent's; a
retried job takes its runs up again instead of making new ones (memory://)."""

from __future__ import annotations

import math
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.auth.domain import Principal
from studio9.config import Settings
from studio9.ml.engine.spec import SearchSpec, TrainSpec
from studio9.ml.run_log import parent_run_id, start_runs
from studio9.tables.ports import LocalTable
from studio9.tracking.domain import RunRecord, RunStatus
from studio9.tracking.service import TrackingService
from tests.conftest import memory_settings
from tests.integration.test_http_ml import FAST, _iris_like, _job, _table

Client = AsyncTestClient[Litestar]
TRAIN = {
    "target": "species",
    "algorithms": ["linear", "random_forest"],
    # each algorithm's defaults and one sampled candidate: 4 candidates, 3 folds each
    "search": {"method": "random", "n_candidates": 2, "cv_folds": 3},
    "seed": 7,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return memory_settings(tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


async def _ada(client: Client, admin_headers: dict[str, str]) -> tuple[dict[str, str], Principal]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": "ada"})
    assert created.status_code == 201, created.text
    secret = created.json()["token"]["token"]
    return {"Authorization": f"Bearer {secret}"}, await client.app.state.container.auth.authenticate(secret)


async def _runs(tracking: TrackingService, actor: Principal, experiment_id: str) -> list[RunRecord]:
    found, _ = await tracking.search_runs(actor, [experiment_id], max_results=100)
    return list(found)


async def _history(
    tracking: TrackingService, actor: Principal, run_id: str, key: str
) -> list[tuple[int, float]]:
    points, _ = await tracking.metric_history(actor, run_id, key, max_results=100)
    return sorted((point.step, point.value) for point in points)


async def test_a_training_job_logs_a_parent_run_and_a_child_run_per_candidate(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, actor = await _ada(client, admin_headers)
    container: Any = client.app.state.container
    tracking: TrackingService = container.tracking
    table = await _table(client, ada, "flowers", _iris_like()[0])
    trained = await _job(client, ada, "ml.train", {"table": table, **TRAIN})
    assert trained["status"] == "completed", trained
    job_id, result = trained["id"], trained["result"]

    # The parent run: in the owner's experiment named after the model, made for the job.
    parent_id = parent_run_id(job_id)
    experiment = await container.experiments.by_name(actor, "flowers-species")
    assert result["run"] == {"id": parent_id, "experiment_id": experiment.id}
    parent = await tracking.run(actor, parent_id)
    assert parent.run.experiment_id == experiment.id and parent.run.parent_run_id is None
    assert parent.run.name == f"flowers-species {job_id[:8]}"
    assert parent.run.status is RunStatus.FINISHED and parent.run.end_time is not None
    assert parent.run.owner_id == actor.user_id
    assert parent.data.params == {
        "algorithms": "linear,random_forest",
        "search": "random",
        "n_candidates": "2",
        "cv_folds": "3",
        "target": "species",
        "task": "auto",
        "table": f"{table}@v1",
        "seed": "7",
        "holdout_fraction": "0.2",
        "n_features": "3",
    }
    tags = parent.data.tags
    assert (tags["studio9.job_id"], tags["studio9.model"], tags["mlflow.source.type"]) == (
        job_id,
        "flowers-species",
        "JOB",
    )
    assert (tags["studio9.task"], tags["studio9.model_version"]) == ("multiclass", "1")
    assert tags["studio9.best_algorithm"] == result["algorithm"]
    _, report = await container.catalog.read(actor, result["report"])
    holdout = report.content["metrics"]["holdout"]  # the job's result shows a summary of them
    logged = {key: metric.value for key, metric in parent.data.metrics.items()}
    assert logged == {
        k: v for k, v in holdout.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }
    assert {"accuracy", "f1_macro", "log_loss"} <= set(logged)
    (dataset,) = parent.inputs
    assert (dataset.name, dataset.digest, dataset.source_type, dataset.source) == (
        "flowers",
        f"{table}@v1",
        "studio9",
        table,
    )
    assert dataset.context == "training"

    # The model version's registry row names the parent run.
    model = (await client.get("/api/v1/models/flowers-species", headers=ada)).json()
    assert [(v["version"], v["run_id"]) for v in model["versions"]] == [(1, parent_id)]

    # A child run per candidate: its params, its score per fold as steps, and their mean.
    leaderboard, metric = report.content["leaderboard"], report.content["metric"]
    assert len(leaderboard) == 4 and metric == "f1_macro"
    runs = await _runs(tracking, actor, experiment.id)
    children = [r for r in runs if r.run.parent_run_id == parent_id]
    assert len(runs) == 1 + len(children) and len(children) == len(leaderboard)
    by_params = {tuple(sorted(c.data.params.items())): c for c in children}
    for rank, row in enumerate(leaderboard, start=1):
        params = {"algorithm": row["algorithm"], **{k: str(v) for k, v in row["params"].items()}}
        child = by_params[tuple(sorted(params.items()))]
        assert child.run.name == f"{row['algorithm']}-{rank}"
        assert child.run.status is RunStatus.FINISHED
        assert child.data.tags["studio9.candidate_status"] == "complete"
        assert child.data.tags["studio9.job_id"] == job_id
        folds = await _history(tracking, actor, child.run.id, "cv_f1_macro")
        assert folds == list(enumerate(row["fold_scores"]))
        assert math.isclose(sum(row["fold_scores"]) / 3, row["mean_score"], rel_tol=1e-12)
        assert child.data.metrics["cv_f1_macro_mean"].value == row["mean_score"]

    # A retry of the job takes up the same runs: nothing new, no point logged twice.
    spec = TrainSpec(
        target="species",
        algorithms=("linear", "random_forest"),
        search=SearchSpec(method="random", n_candidates=2, cv_folds=3),
        seed=7,
    )
    read = LocalTable(asset_id=table, version=1, name="flowers", columns=(), row_count=150, paths=())
    again = await start_runs(tracking, actor, job_id, None, "flowers-species", spec, [("training", read)])
    assert again.run_id == parent_id
    redone = types.SimpleNamespace(
        leaderboard=leaderboard,
        metric=metric,
        metrics=report.content["metrics"],
        features=("petal", "sepal", "colour"),
        algorithm=result["algorithm"],
        task="multiclass",
    )
    first = children[0].run.id
    before = await _history(tracking, actor, first, "cv_f1_macro")
    await again.trained(redone, 3)
    await again.finished(1)
    assert len(await _runs(tracking, actor, experiment.id)) == len(runs)
    assert await _history(tracking, actor, first, "cv_f1_macro") == before
    assert len(await _history(tracking, actor, parent_id, "accuracy")) == 1

    # A failed attempt ends its parent run FAILED; the next attempt runs it again.
    await again.ended(RuntimeError("disk full"))
    assert (await tracking.run(actor, parent_id)).run.status is RunStatus.FAILED
    retried = await start_runs(tracking, actor, job_id, None, "flowers-species", spec, [("training", read)])
    assert (await tracking.run(actor, retried.run_id)).run.status is RunStatus.RUNNING


async def test_the_runs_go_to_the_experiment_asked_for_and_a_bad_one_fails_the_job_early(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, actor = await _ada(client, admin_headers)
    container: Any = client.app.state.container
    table = await _table(client, ada, "flowers", _iris_like()[0])
    fast = {**TRAIN, "algorithms": ["linear"], "search": {"method": "none"}}

    trained = await _job(client, ada, "ml.train", {"table": table, **fast, "experiment": "iris study"})
    assert trained["status"] == "completed", trained
    experiment = await container.experiments.by_name(actor, "iris study")
    assert trained["result"]["run"]["experiment_id"] == experiment.id
    runs = await _runs(container.tracking, actor, experiment.id)
    assert sorted(r.run.parent_run_id is None for r in runs) == [False, True]  # parent + 1 candidate

    asked = {"table": table, **fast, "experiment": "a/b/c", "model_name": "elsewhere"}
    failed = await _job(client, ada, "ml.train", asked)
    assert failed["status"] == "failed", failed
    assert "a/b/c" in failed["error"]["message"], failed["error"]
    models = (await client.get("/api/v1/models", headers=ada)).json()["items"]
    assert [m["name"] for m in models] == ["flowers-species"]  # nothing made for the failed job
