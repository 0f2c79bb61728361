"""The MLflow model registry face over raw HTTP (one store, two faces): models registered the
way 3.x and 2.x clients register them become Studio9 model versions (a skops one servable by
``/api/v1/models``, a pickled one registered but never loaded), aliases and errors answer as
MLflow's server does, and a Studio9 model version downloads as an MLflow model directory that
``mlflow.sklearn`` and ``mlflow.pyfunc`` load and that predicts as Studio9 does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io
import yaml  # type: ignore[import-untyped]
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
Headers = dict[str, str]
T = "/api/2.0/mlflow"
A = "/api/2.0/mlflow-artifacts/artifacts"


def _frame(rows: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "petal": rng.normal(size=rows).round(3),
            "sepal": rng.normal(size=rows).round(3),
            "colour": rng.choice(["pale", "deep", "dark"], rows),
        }
    )
    labels = ((frame.petal + (frame.colour == "deep")) > 0.3).map({True: "yes", False: "no"})
    return frame, labels


def _pipeline() -> Pipeline:
    frame, labels = _frame()
    # The imputer keeps a numpy dtype, which skops does not trust by default: the MLmodel served
    # for it must list it, or MLflow's loader refuses the file.
    prep = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
            ("num", SimpleImputer(), ["petal", "sepal"]),
        ]
    )
    return Pipeline([("prep", prep), ("clf", LogisticRegression())]).fit(frame, labels)


def _doubled(x: Any) -> Any:
    return np.asarray(x) * 2


#: An MLmodel as ``mlflow.sklearn.log_model`` writes it (docs/mlflow-protocol.md §6).
_MLMODEL = """artifact_path: model
flavors:
  python_function: {{env: {{conda: conda.yaml, virtualenv: python_env.yaml}}, predict_fn: predict,
    loader_module: mlflow.sklearn, model_path: {file}, python_version: 3.11.7}}
  sklearn: {{code: null, pickled_model: {file}, serialization_format: {format},
    sklearn_version: 1.9.1, skops_trusted_types: null}}
mlflow_version: 3.17.2
signature:
  inputs: '[{{"type": "double", "name": "petal"}}, {{"type": "string", "name": "colour"}}]'
utc_time_created: '2026-12-06 07:08:36.608576'
"""


def _mlmodel(model_file: str, serialization: str) -> bytes:
    return _MLMODEL.format(file=model_file, format=serialization).encode()


@pytest.fixture(params=["memory"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # Quick worker beats: one test runs jobs.
    return await database_settings(
        request, tmp_path, heartbeat_interval=0.1, sweep_interval=0.2, worker_threads=2
    )


class Face:
    """One user's calls to the MLflow face: GET fields in the query string, others as JSON."""

    def __init__(self, client: Client, headers: Headers) -> None:
        self.client, self.headers = client, headers

    async def call(self, method: str, path: str, **values: Any) -> tuple[int, dict[str, Any]]:
        url = f"{T}/{path}"
        if method == "GET":
            answer = await self.client.get(url, headers=self.headers, params=values)
        else:
            answer = await self.client.request(method, url, headers=self.headers, json=values)
        body: dict[str, Any] = answer.json()
        return answer.status_code, body

    async def ok(self, method: str, path: str, **values: Any) -> dict[str, Any]:
        status, body = await self.call(method, path, **values)
        assert status == 200, body
        return body

    async def put(self, path: str, data: bytes) -> None:
        answer = await self.client.put(f"{A}/{path}", headers=self.headers, content=data)
        assert answer.status_code == 200, answer.text

    async def run(self) -> tuple[str, str]:
        experiment = (await self.ok("POST", "experiments/create", name="flowers"))["experiment_id"]
        run = await self.ok("POST", "runs/create", experiment_id=experiment)
        return experiment, run["run"]["info"]["run_id"]


async def _user(client: Client, admin_headers: Headers, name: str) -> Face:
    made = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert made.status_code == 201, made.text
    return Face(client, {"Authorization": f"Bearer {made.json()['token']['token']}"})


async def _wait(face: Face, job_id: str) -> dict[str, Any]:
    for _ in range(3000):
        job: dict[str, Any] = (await face.client.get(f"/api/v1/jobs/{job_id}", headers=face.headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def _predict_job(face: Face, model: str, csv: bytes) -> dict[str, Any]:
    """An ``ml.predict`` job of ``model`` over a table of ``csv``, once it is over."""
    client, headers = face.client, face.headers
    uploaded = await client.post("/api/v1/files?name=rows.csv", headers=headers, content=csv)
    made = await client.post(
        "/api/v1/tables", headers=headers, json={"name": "rows", "file": uploaded.json()["id"]}
    )
    assert made.status_code == 202, made.text
    assert (await _wait(face, made.json()["job"]["id"]))["status"] == "completed"
    params = {"model": model, "table": made.json()["table"]["id"]}
    submitted = await client.post(
        "/api/v1/jobs", headers=headers, json={"type": "ml.predict", "params": params}
    )
    assert submitted.status_code in (201, 202), submitted.text
    return await _wait(face, submitted.json()["id"])


async def test_a_3x_logged_skops_model_is_a_servable_studio9_version(
    client: Client, admin_headers: Headers
) -> None:
    ada = await _user(client, admin_headers, "ada")
    experiment, run = await ada.run()
    logged = await ada.ok("POST", "logged-models", experiment_id=experiment, name="model", source_run_id=run)
    model_id, storage = logged["model"]["info"]["model_id"], logged["model"]["info"]["artifact_uri"]
    pipeline = _pipeline()
    await ada.put(f"{experiment}/models/{model_id}/artifacts/MLmodel", _mlmodel("model.skops", "skops"))
    await ada.put(f"{experiment}/models/{model_id}/artifacts/model.skops", skops.io.dumps(pipeline))

    made = await ada.ok("POST", "registered-models/create", name="flowers")
    assert made["registered_model"]["name"] == "flowers"
    assert await ada.call("POST", "registered-models/create", name="flowers") == (
        400,
        {
            "error_code": "RESOURCE_ALREADY_EXISTS",
            "message": "Registered Model (name=flowers) already exists.",
        },
    )
    for bad in ("a/b", "a:b", ""):
        status, refused = await ada.call("POST", "registered-models/create", name=bad)
        assert (status, refused["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), bad

    source = f"models:/{model_id}"
    version = (
        await ada.ok("POST", "model-versions/create", name="flowers", source=source, model_id=model_id)
    )["model_version"]
    wanted = {"name": "flowers", "version": "1", "status": "READY", "current_stage": "None", "run_id": run}
    assert {k: version[k] for k in wanted} == wanted and (version["model_id"], version["source"]) == (
        model_id,
        source,
    )
    uri = await ada.ok("GET", "model-versions/get-download-uri", name="flowers", version="1")
    assert uri == {"artifact_uri": storage}

    await ada.ok("POST", "registered-models/alias", name="flowers", alias="champion", version="1")
    by_alias = (await ada.ok("GET", "registered-models/alias", name="flowers", alias="champion"))[
        "model_version"
    ]
    assert (by_alias["version"], by_alias["aliases"]) == ("1", ["champion"])
    assert await ada.call("GET", "registered-models/alias", name="flowers", alias="nope") == (
        400,
        {"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias nope not found."},
    )
    for reserved in ("latest", "V2"):
        status, refused = await ada.call(
            "POST", "registered-models/alias", name="flowers", alias=reserved, version="1"
        )
        assert (status, refused["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), reserved
    assert await ada.call("GET", "registered-models/get", name="nothing") == (
        404,
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Registered Model with name=nothing not found"},
    )
    got = (await ada.ok("GET", "registered-models/get", name="flowers"))["registered_model"]
    assert got["aliases"] == [{"alias": "champion", "version": "1"}] and "tags" not in got
    assert [v["version"] for v in got["latest_versions"]] == ["1"]
    searched = await ada.ok("GET", "registered-models/search", filter="name LIKE 'flow%'")
    assert [m["name"] for m in searched["registered_models"]] == ["flowers"]
    versions = await ada.ok("GET", "model-versions/search", filter=f"run_id = '{run}'")
    assert [v["version"] for v in versions["model_versions"]] == ["1"]

    # The same version on Studio9's own face: served, and made from the experiment.
    rows, _ = _frame(5)
    predicted = await client.post(
        "/api/v1/models/flowers/aliases/champion/predict",
        headers=ada.headers,
        json={"rows": rows.to_dict("records")},
    )
    assert predicted.status_code == 200, predicted.text
    assert [p["label"] for p in predicted.json()["predictions"]] == list(pipeline.predict(rows))
    model_asset = (await client.get("/api/v1/models/flowers", headers=ada.headers)).json()["id"]
    lineage = await client.get(f"/api/v1/assets/{model_asset}/lineage?direction=up", headers=ada.headers)
    assert experiment in {node["id"] for node in lineage.json()["nodes"]}


async def test_pickled_and_untrusted_models(settings: Settings) -> None:
    """A 2.x client's cloudpickle model registers without being loaded, and neither online
    prediction nor an ``ml.predict`` job serves it; a skops file holding an untrusted type is
    refused, naming it."""
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as client:
        admin = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        ada = await _user(client, admin, "ada")
        experiment, run = await ada.run()
        directory = f"{experiment}/{run}/artifacts/model"
        await ada.put(f"{directory}/MLmodel", _mlmodel("model.pkl", "cloudpickle"))
        await ada.put(f"{directory}/model.pkl", b"\x80\x04not a pickle anyone will ever load")
        await ada.ok("POST", "registered-models/create", name="legacy")
        outside = f"mlflow-artifacts:/{experiment}/x/artifacts"
        status, refused = await ada.call(
            "POST", "model-versions/create", name="legacy", source=outside, run_id=run
        )
        assert (status, refused["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        source = f"mlflow-artifacts:/{directory}"
        created = await ada.ok("POST", "model-versions/create", name="legacy", source=source, run_id=run)
        assert created["model_version"]["status"] == "READY" and created["model_version"]["run_id"] == run
        uri = await ada.ok("GET", "model-versions/get-download-uri", name="legacy", version="1")
        assert uri == {"artifact_uri": source}
        shown = (await client.get("/api/v1/models/legacy/versions/1", headers=ada.headers)).json()
        assert shown["features"] == ["petal", "colour"] and shown["source"] == "mlflow"
        rows = {"rows": [{"petal": 1.0, "colour": "deep"}]}
        served = await client.post("/api/v1/models/legacy/versions/1/predict", headers=ada.headers, json=rows)
        assert served.status_code == 409, served.text
        assert "cloudpickle" in served.json()["detail"] and "skops" in served.json()["detail"]
        job = await _predict_job(ada, "legacy/1", b"petal,colour\n1.0,deep\n")
        assert job["status"] == "failed" and "cloudpickle" in job["error"]["message"], job

        untrusted = Pipeline([("double", FunctionTransformer(_doubled)), ("clf", LogisticRegression())])
        untrusted.fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
        await ada.put(f"{experiment}/{run}/artifacts/custom/MLmodel", _mlmodel("model.skops", "skops"))
        await ada.put(f"{experiment}/{run}/artifacts/custom/model.skops", skops.io.dumps(untrusted))
        custom = f"mlflow-artifacts:/{experiment}/{run}/artifacts/custom"
        status, error = await ada.call(
            "POST", "model-versions/create", name="legacy", source=custom, run_id=run
        )
        assert (status, error["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
        assert f"{__name__}._doubled" in error["message"]


async def test_a_studio9_version_downloads_as_an_mlflow_model(
    client: Client, admin_headers: Headers, tmp_path: Path
) -> None:
    import mlflow.pyfunc
    import mlflow.sklearn

    ada = await _user(client, admin_headers, "ada")
    data = skops.io.dumps(_pipeline())
    imported = await client.post("/api/v1/models/import?name=iris", headers=ada.headers, content=data)
    assert imported.status_code == 201, imported.text
    path = f"registry/{imported.json()['model']['id']}/1"
    uri = await ada.ok("GET", "model-versions/get-download-uri", name="iris", version="1")
    assert uri == {"artifact_uri": f"mlflow-artifacts:/{path}"}
    listed = (await client.get(A, headers=ada.headers, params={"path": path})).json()["files"]
    files = ["MLmodel", "model.skops", "requirements.txt", "python_env.yaml", "conda.yaml"]
    assert sorted(f["path"] for f in listed) == sorted(files)
    local = tmp_path / "model"
    local.mkdir()
    for entry in listed:
        downloaded = await client.get(f"{A}/{path}/{entry['path']}", headers=ada.headers)
        assert downloaded.status_code == 200 and len(downloaded.content) == entry["file_size"], entry
        (local / entry["path"]).write_bytes(downloaded.content)
    single = (await client.get(A, headers=ada.headers, params={"path": f"{path}/MLmodel"})).json()["files"]
    assert [(f["path"], f["is_dir"]) for f in single] == [("MLmodel", False)]
    flavors = yaml.safe_load((local / "MLmodel").read_text())["flavors"]
    assert flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    assert flavors["sklearn"]["serialization_format"] == "skops"
    assert flavors["sklearn"]["skops_trusted_types"] == ["numpy.dtype"]
    # Someone else may not read it.
    bob = await _user(client, admin_headers, "bob")
    assert "files" not in (await client.get(A, headers=bob.headers, params={"path": path})).json()
    assert (await client.get(f"{A}/{path}/model.skops", headers=bob.headers)).status_code == 404

    rows, _ = _frame(8)
    served = await client.post(
        "/api/v1/models/iris/versions/1/predict", headers=ada.headers, json={"rows": rows.to_dict("records")}
    )
    assert served.status_code == 200, served.text
    labels = [p["label"] for p in served.json()["predictions"]]
    assert list(mlflow.sklearn.load_model(str(local)).predict(rows)) == labels
    assert list(mlflow.pyfunc.load_model(str(local)).predict(rows)) == labels


@pytest.mark.parametrize("settings", ["memory", "sqlite", "postgresql"], indirect=True)
async def test_registry_changes_through_the_mlflow_face(client: Client, admin_headers: Headers) -> None:
    ada = await _user(client, admin_headers, "ada")
    experiment, run = await ada.run()
    directory = f"{experiment}/{run}/artifacts/model"
    await ada.put(f"{directory}/MLmodel", _mlmodel("model.pkl", "pickle"))
    await ada.put(f"{directory}/model.pkl", b"never loaded")
    tags = [{"key": "team", "value": "ml"}]
    await ada.ok("POST", "registered-models/create", name="m", tags=tags, description="first")
    for _ in range(2):
        await ada.ok(
            "POST", "model-versions/create", name="m", source=f"mlflow-artifacts:/{directory}", run_id=run
        )
    await ada.ok("POST", "registered-models/set-tag", name="m", key="k", value="v")
    await ada.ok("DELETE", "registered-models/delete-tag", name="m", key="team")
    await ada.ok("PATCH", "registered-models/update", name="m", description="second")
    got = (await ada.ok("GET", "registered-models/get", name="m"))["registered_model"]
    assert (got["tags"], got["description"]) == ([{"key": "k", "value": "v"}], "second")
    assert [v["version"] for v in got["latest_versions"]] == ["2"]
    latest = await ada.ok("POST", "registered-models/get-latest-versions", name="m")
    assert [v["version"] for v in latest["model_versions"]] == ["2"]
    assert await ada.ok("GET", "registered-models/get-latest-versions", name="m", stages="Production") == {}

    await ada.ok("PATCH", "model-versions/update", name="m", version="1", description="old")
    await ada.ok("POST", "model-versions/set-tag", name="m", version="1", key="a", value="b")
    await ada.ok("POST", "model-versions/set-tag", name="m", version="1", key="c", value="d")
    await ada.ok("DELETE", "model-versions/delete-tag", name="m", version="1", key="a")
    shown = (await ada.ok("GET", "model-versions/get", name="m", version="1"))["model_version"]
    assert (shown["description"], shown["tags"]) == ("old", [{"key": "c", "value": "d"}])
    first = await ada.ok("GET", "model-versions/search", filter="name = 'm'", max_results="1")
    assert [v["version"] for v in first["model_versions"]] == ["2"]
    token = first["next_page_token"]
    rest = await ada.ok(
        "GET", "model-versions/search", filter="name = 'm'", max_results="1", page_token=token
    )
    assert [v["version"] for v in rest["model_versions"]] == ["1"] and "next_page_token" not in rest

    await ada.ok("POST", "registered-models/rename", name="m", new_name="n")
    assert (await ada.call("GET", "registered-models/get", name="m"))[0] == 404
    await ada.ok("POST", "registered-models/alias", name="n", alias="prod", version="1")
    status, held = await ada.call("DELETE", "model-versions/delete", name="n", version="1")
    assert (status, held["error_code"]) == (409, "RESOURCE_CONFLICT")
    await ada.ok("DELETE", "registered-models/alias", name="n", alias="prod")
    await ada.ok("DELETE", "model-versions/delete", name="n", version="1")
    status, gone = await ada.call("GET", "model-versions/get", name="n", version="1")
    assert (status, gone["message"]) == (404, "Model Version (name=n, version=1) not found")
    await ada.ok("DELETE", "registered-models/delete", name="n")
    assert await ada.ok("GET", "registered-models/search") == {}
