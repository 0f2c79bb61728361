"""The real mlflow client against a running ``studio9 serve``: Studio9 as an MLflow tracking server.

A user script (``mlflow_flow.py``) runs unchanged, in a subprocess, with
``MLFLOW_TRACKING_URI`` pointing at Studio9 and ``MLFLOW_TRACKING_TOKEN`` a Studio9 token:
the pinned 3.x client of the dev extra, and a 2.x client (``mlflow-skinny`` 2.22) in a
virtualenv built once and cached. Every value it reads back must equal what it logged. A second
user's token sees none of it until the experiment is shared with them, and then only reads.
A model registered through MLflow is served by Studio9's own prediction route; a model trained
by Studio9 loads with ``mlflow.pyfunc.load_model("models:/name@champion")``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.processes import free_port, start, stop, studio9_env, wait_http

FLOW = Path(__file__).with_name("mlflow_flow.py")
LEGACY_CLIENT = "mlflow-skinny==2.22.5"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``studio9 serve`` on the edge defaults (SQLite, file blobs), with users ada and bob."""
    root = tmp_path_factory.mktemp("mlflow-face")
    port = free_port()
    env = studio9_env(root / "data", STUDIO9_WORKER_THREADS="2")
    process = start("serve", "--port", str(port), env=env, log=root / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/health", process, timeout=60)
        admin = {"Authorization": f"Bearer {(root / 'data' / 'admin-token').read_text().strip()}"}
        tokens = {}
        for name in ("ada", "bob"):
            made = httpx.post(f"{url}/api/v1/users", headers=admin, json={"username": name}, timeout=30)
            assert made.status_code == 201, made.text
            tokens[name] = made.json()["token"]["token"]
        yield {"url": url, "tokens": tokens, "root": root}
    finally:
        stop(process)


@pytest.fixture(scope="module")
def legacy_python() -> Path:
    """A Python with the 2.x mlflow client: a cached virtualenv that sees this environment's
    packages (scikit-learn, pandas) behind its own mlflow."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "studio9-tests"
    venv = cache / LEGACY_CLIENT.replace("==", "-")
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        # Its own site-packages come first on sys.path, so its mlflow wins over ours.
        Path(purelib, "zz_studio9_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", LEGACY_CLIENT], check=True, timeout=600
        )
        (venv / ".ready").touch()
    return python


def _client(python: Path | str, server: dict[str, Any], user: str, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STUDIO9_"))}
    env.update(
        MLFLOW_TRACKING_URI=server["url"],
        MLFLOW_TRACKING_TOKEN=server["tokens"][user],
        # Fail fast instead of the client's minutes of retries if something answers 5xx.
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="60",
        GIT_PYTHON_REFRESH="quiet",
    )
    done = subprocess.run(
        [str(python), str(FLOW), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"client failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _assert_round_trip(checks: dict[str, Any]) -> None:
    for name, value in checks.items():
        if isinstance(value, list) and len(value) == 2:
            assert value[0] == value[1], f"{name}: read back {value[0]!r}, logged {value[1]!r}"
        elif isinstance(value, bool):
            assert value, f"{name} does not hold"
    assert checks["status"] == "FINISHED"
    assert checks["tags"] == {"team": "ml", "stage": "dev", "note": "first", "mlflow.runName": "parent"}


def test_an_unchanged_mlflow_3_script_logs_into_studio9(server: dict[str, Any]) -> None:
    logged = _client(sys.executable, server, "ada", "log", "flow3")
    _assert_round_trip(logged["checks"])
    url, ada = server["url"], {"Authorization": f"Bearer {server['tokens']['ada']}"}
    # The experiment is a Studio9 asset of ada's, and the registered model a Studio9 model.
    asset = httpx.get(f"{url}/api/v1/assets/{logged['experiment_id']}", headers=ada, timeout=30)
    assert asset.status_code == 200 and asset.json()["kind"] == "experiment"
    # The skops model a 3.x client logged is served by Studio9's own prediction route.
    rows = [
        {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}
    ]
    answer = httpx.post(
        f"{url}/api/v1/models/flow3-model/aliases/champion/predict",
        headers=ada,
        json={"rows": rows},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert str(answer.json()["predictions"][0]["label"]) == "0"

    bob = ("peek", logged["experiment_id"], logged["run_id"])
    hidden = _client(sys.executable, server, "bob", *bob)
    assert hidden == {
        "run": "RESOURCE_DOES_NOT_EXIST",
        "search": 0,
        "history_len": "RESOURCE_DOES_NOT_EXIST",
        "write": "RESOURCE_DOES_NOT_EXIST",
    }
    shared = httpx.post(
        f"{url}/api/v1/assets/{logged['experiment_id']}/shares", headers=ada, json={"user": "bob"}, timeout=30
    )
    assert shared.status_code == 201, shared.text
    seen = _client(sys.executable, server, "bob", *bob)
    assert seen["run"]["params"] == logged["checks"]["params"][1]
    assert seen["run"]["loss"] == 0.5 and seen["search"] == 2 and seen["history_len"] == 7
    assert seen["write"] == "PERMISSION_DENIED"


def test_an_unchanged_mlflow_2_script_logs_into_studio9(server: dict[str, Any], legacy_python: Path) -> None:
    logged = _client(legacy_python, server, "ada", "log", "flow2")
    _assert_round_trip(logged["checks"])


def _iris_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["petal", "sepal", "colour", "species"])
    for i in range(150):
        writer.writerow(
            [
                round(1.0 + (i % 3) * 2.0 + (i % 7) * 0.11, 2),
                round(3.0 + (i % 5) * 0.3 + (i % 3) * 0.5, 2),
                ("pale", "deep", "dark")[(i // 3 + i % 3) % 3],
                ("setosa", "versicolor", "virginica")[i % 3],
            ]
        )
    return out.getvalue().encode()


def _wait(url: str, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = httpx.get(f"{url}/api/v1/jobs/{job_id}", headers=headers, timeout=30).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_a_studio9_trained_model_loads_with_mlflow_pyfunc(server: dict[str, Any], tmp_path: Path) -> None:
    url, ada = server["url"], {"Authorization": f"Bearer {server['tokens']['ada']}"}
    data = _iris_csv()
    uploaded = httpx.post(f"{url}/api/v1/files?name=flowers.csv", headers=ada, content=data, timeout=30)
    table = httpx.post(
        f"{url}/api/v1/tables",
        headers=ada,
        json={"name": "flowers", "file": uploaded.json()["id"]},
        timeout=30,
    ).json()
    assert _wait(url, ada, table["job"]["id"])["status"] == "completed"
    params = {"table": table["table"]["id"], "target": "species", "algorithms": ["random_forest"], "seed": 3}
    submitted = httpx.post(
        f"{url}/api/v1/jobs", headers=ada, json={"type": "ml.train", "params": params}, timeout=30
    )
    trained = _wait(url, ada, submitted.json()["id"])
    assert trained["status"] == "completed", trained
    name = "flowers-species"
    promoted = httpx.put(
        f"{url}/api/v1/models/{name}/aliases/champion", headers=ada, json={"version": 1}, timeout=30
    )
    assert promoted.status_code == 200, promoted.text
    rows = list(csv.DictReader(io.StringIO(data.decode())))[:20]
    features = [{"petal": float(r["petal"]), "sepal": float(r["sepal"]), "colour": r["colour"]} for r in rows]
    served = httpx.post(
        f"{url}/api/v1/models/{name}/aliases/champion/predict",
        headers=ada,
        json={"rows": features},
        timeout=60,
    )
    assert served.status_code == 200, served.text
    sample = tmp_path / "rows.csv"
    with sample.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["petal", "sepal", "colour"])
        writer.writeheader()
        writer.writerows(features)
    loaded = _client(sys.executable, server, "ada", "load", f"models:/{name}@champion", str(sample))
    assert loaded["predictions"] == [str(p["label"]) for p in served.json()["predictions"]]
