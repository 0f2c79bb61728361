"""A worker SIGKILLed in the middle of an ``ml.train`` job, on real processes: the job is retried
once its lease expires and ends with exactly one model version.

Two deployments: the edge one (SQLite, one ``studio9 serve``, killed and started again) and the
cloud one (PostgreSQL, RabbitMQ, one ``studio9 api`` and a ``studio9 worker`` killed, then
another). The worker is killed while the job's stored progress says it is fitting (between
0.1 and 0.8: the outputs are written after 0.85), so the killed attempt has created the model
asset but no version, no skops file and no scored table. The retry must then add version 1
once, write one skops file under ``models/<model id>/``, and make each scored table once.
"""

from __future__ import annotations

import csv
import io
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest

from studio9.ml.run_log import parent_run_id
from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.services import RABBITMQ_URL, require

#: Enough rows that the 16 fits below take several seconds, few enough for two runs in < 60 s.
ROWS = 4000
TRAIN = {
    "target": "y",
    "algorithms": ["random_forest"],
    # 4 sampled candidates + the default, 3 folds each, then the refit: 16 fits.
    "search": {"method": "random", "n_candidates": 4, "cv_folds": 3},
    "seed": 3,
}
FAST = {
    "STUDIO9_HEARTBEAT_INTERVAL": "0.3",
    "STUDIO9_LEASE_TIMEOUT": "3",
    "STUDIO9_SWEEP_INTERVAL": "0.5",
    "STUDIO9_REDELIVER_AFTER": "2",
    "STUDIO9_RETRY_BACKOFF": "0.2",
    "STUDIO9_WORKER_THREADS": "2",
    "STUDIO9_SHUTDOWN_TIMEOUT": "5",
    "STUDIO9_LOG_LEVEL": "warning",
}
#: The stored progress between which the job is surely fitting (see ``studio9.ml.train_job``).
FITTING = (0.1, 0.8)


def _csv() -> bytes:
    """A binary target that two numbers and a colour predict, with noise."""
    rng = random.Random(11)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["a", "b", "colour", "y"])
    for _ in range(ROWS):
        a, b, colour = rng.random(), rng.random(), rng.choice(["red", "green", "blue"])
        score = a + b + (0.3 if colour == "red" else 0.0) + rng.gauss(0, 0.2)
        writer.writerow([round(a, 4), round(b, 4), colour, "yes" if score > 1.1 else "no"])
    return out.getvalue().encode()


@attrs.define
class Deployment:
    """The processes of one deployment, the API client, and how to kill and replace the worker."""

    data_dir: Path
    processes: list[subprocess.Popen[bytes]]
    client: httpx.Client
    #: SIGKILL the process running the jobs; then start another that may run them.
    kill_worker: Callable[[], None]
    replace_worker: Callable[[], None]


def _client(port: int, data_dir: Path) -> httpx.Client:
    token = (data_dir / "admin-token").read_text().strip()
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


@contextmanager
def _edge(tmp_path: Path) -> Iterator[Deployment]:
    """SQLite and one ``studio9 serve`` (API and workers in one process), started again after the kill."""
    data_dir = tmp_path / "data"
    env = studio9_env(data_dir, **FAST)
    processes: list[subprocess.Popen[bytes]] = []

    def serve(n: int) -> httpx.Client:
        port = free_port()
        processes.append(start("serve", "--port", str(port), env=env, log=tmp_path / f"serve{n}.log"))
        wait_http(f"http://127.0.0.1:{port}/health", processes[-1])
        return _client(port, data_dir)

    deployment = Deployment(data_dir, processes, serve(0), lambda: None, lambda: None)

    def kill() -> None:
        _sigkill(processes[-1])

    def replace() -> None:
        deployment.client.close()
        deployment.client = serve(len(processes))

    deployment.kill_worker, deployment.replace_worker = kill, replace
    try:
        yield deployment
    finally:
        deployment.client.close()
        for process in processes:
            stop(process, timeout=15)


@contextmanager
def _cloud(tmp_path: Path, database_url: str) -> Iterator[Deployment]:
    """PostgreSQL, RabbitMQ, one ``studio9 api`` and one ``studio9 worker`` at a time."""
    broker = require("RabbitMQ", RABBITMQ_URL)
    data_dir = tmp_path / "data"
    env = studio9_env(data_dir, STUDIO9_DATABASE_URL=database_url, STUDIO9_BROKER_URL=broker, **FAST)
    assert run_cli("migrate", env=env).returncode == 0
    port = free_port()
    processes = [
        start("api", "--port", str(port), env=env, log=tmp_path / "api.log"),
        start("worker", env=env, log=tmp_path / "worker0.log"),
    ]
    try:
        wait_http(f"http://127.0.0.1:{port}/health", processes[0])
        with _client(port, data_dir) as client:

            def replace() -> None:
                processes.append(start("worker", env=env, log=tmp_path / f"worker{len(processes) - 1}.log"))

            yield Deployment(data_dir, processes, client, lambda: _sigkill(processes[-1]), replace)
    finally:
        for process in processes:
            stop(process, timeout=15)


def _sigkill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(params=["sqlite", "postgresql"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    if request.param == "sqlite":
        with _edge(tmp_path) as edge:
            yield edge
    else:
        with _cloud(tmp_path, request.getfixturevalue("postgres_url")) as cloud:
            yield cloud


def test_a_worker_killed_while_training_leaves_exactly_one_model_version(deployment: Deployment) -> None:
    client = deployment.client
    uploaded = client.post("/api/v1/files", params={"name": "churn.csv"}, content=_csv())
    assert uploaded.status_code == 201, uploaded.text
    created = client.post("/api/v1/tables", json={"name": "churn", "file": uploaded.json()["id"]})
    assert created.status_code == 202, created.text
    assert _wait_terminal(client, created.json()["job"]["id"], timeout=30)["status"] == "completed"
    table_id = created.json()["table"]["id"]

    submitted = client.post("/api/v1/jobs", json={"type": "ml.train", "params": {"table": table_id, **TRAIN}})
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["id"]
    caught = _wait_fitting(client, job_id, timeout=40)
    deployment.kill_worker()
    assert caught["attempt"] == 1, caught
    deployment.replace_worker()
    client = deployment.client

    job = _wait_terminal(client, job_id, timeout=60)
    assert job["status"] == "completed", job
    assert job["attempt"] >= 2, job
    events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
    reasons = Counter(e["reason"] for e in events)
    assert reasons["completed"] == 1 and reasons["lease_expired"] >= 1, events
    assert reasons["claimed"] == 1 + reasons["lease_expired"] == job["attempt"], events

    result = job["result"]
    model_id = result["model"]["id"]
    assert result["model"]["version"] == 1, result
    model = client.get("/api/v1/models/churn-y")
    assert model.status_code == 200, model.text
    assert model.json()["id"] == model_id
    assert [v["version"] for v in model.json()["versions"]] == [1]
    assert model.json()["latest_version"] == 1
    # The registry row: the version was made by this job's training, whose parent run it names
    # (one run: the retry took up the run the killed attempt had started).
    (summary,) = model.json()["versions"]
    assert (summary["source"], summary["run_id"]) == ("training", parent_run_id(job_id)), summary
    assert result["run"]["id"] == parent_run_id(job_id)
    version = client.get("/api/v1/models/churn-y/versions/1").json()
    assert version["training"]["job"] == job_id
    assert version["scored"] == result["scored"]

    # One skops file, the one version names, and nothing else of the model in the blob store.
    blobs = deployment.data_dir / "blobs"
    stored = sorted(
        p.relative_to(blobs).as_posix() for p in (blobs / "models" / model_id).rglob("*") if p.is_file()
    )
    assert stored == [f"models/{model_id}/{job_id}/model.skops"], stored
    exported = client.get("/api/v1/models/churn-y/versions/1/export", params={"format": "skops"})
    assert exported.status_code == 200 and exported.content == (blobs / stored[0]).read_bytes()

    # Each scored table exists, once, at version 1, with every row of its split.
    assert set(result["scored"]) == {"train", "holdout"}, result
    rows = 0
    for split, scored_id in result["scored"].items():
        table = client.get(f"/api/v1/tables/{scored_id}").json()
        assert (table["status"], table["version"]) == ("active", 1), table
        assert {"prediction", "probability_yes", "probability_no"} <= {c["name"] for c in table["columns"]}
        rows += table["row_count"]
        named = [t for t in _tables(client) if t["name"] == f"churn-y scored {split}"]
        assert [t["id"] for t in named] == [scored_id], named
    assert rows == ROWS
    assert len([t for t in _tables(client) if t["name"].startswith("churn-y")]) == 2
    models = client.get("/api/v1/models").json()["items"]
    assert [m["name"] for m in models] == ["churn-y"]


def _wait_fitting(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    """The job, once its stored progress says it is fitting (``FITTING``)."""
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] == "running" and FITTING[0] < job["progress"] < FITTING[1]:
            return job
        assert job["status"] in ("submitted", "queued", "running"), job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} was never seen fitting: {job}")


def _wait_terminal(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job.get('status')}")


def _tables(client: httpx.Client) -> list[dict[str, Any]]:
    page: list[dict[str, Any]] = client.get("/api/v1/tables", params={"limit": 200}).json()["items"]
    return page
