"""The MLflow face's experiment and run routes over raw HTTP, as MLflow clients call them
(``docs/mlflow-protocol.md``): request shapes, answer shapes, MLflow's error codes and statuses,
NaN/±inf on the wire, and who may see and log what. The real clients' flows are
``test_mlflow_client.py``'s."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
Headers = dict[str, str]
T = "/api/2.0/mlflow"
T0 = 1_700_000_000_000
DATASET_INPUT = {
    "tags": [{"key": "mlflow.data.context", "value": "training"}],
    "dataset": {"name": "iris", "digest": "abc123", "source_type": "local", "source": "{}"},
}


@pytest.fixture(params=["memory"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path)


class Mlflow:
    """One user's MLflow calls (GET: fields in the query string; POST: a JSON body): the JSON
    answer, its status (``expect``) and, for an error, MLflow's error document checked."""

    def __init__(self, client: Client, headers: Headers) -> None:
        self.client = client
        self.headers = headers

    async def get(self, path: str, expect: int = 200, /, **fields: Any) -> dict[str, Any]:
        answer = await self.client.get(f"{T}/{path}", headers=self.headers, params=fields)
        return self._checked(answer, expect)

    async def post(self, path: str, expect: int = 200, /, **fields: Any) -> dict[str, Any]:
        return self._checked(await self.client.post(f"{T}/{path}", headers=self.headers, json=fields), expect)

    @staticmethod
    def _checked(answer: Any, expect: int) -> dict[str, Any]:
        assert answer.status_code == expect, answer.text
        assert answer.headers["content-type"].startswith("application/json")
        body: dict[str, Any] = answer.json()
        if expect != 200:
            assert set(body) >= {"error_code", "message"}, body
        return body

    async def experiment(self, name: str) -> str:
        experiment_id: str = (await self.post("experiments/create", name=name))["experiment_id"]
        return experiment_id

    async def run(self, experiment_id: str, **more: Any) -> str:
        made = await self.post("runs/create", experiment_id=experiment_id, **more)
        return _ids(made["run"])[0]


def _ids(*runs: dict[str, Any]) -> list[str]:
    return [run["info"]["run_id"] for run in runs]


async def _user(client: Client, admin_headers: Headers, name: str) -> Mlflow:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    return Mlflow(client, {"Authorization": f"Bearer {created.json()['token']['token']}"})


@pytest.fixture
async def ada(client: Client, admin_headers: Headers) -> Mlflow:
    return await _user(client, admin_headers, "ada")


# -- experiments ----------------------------------------------------------------------------------


async def test_set_experiment_sequence_and_experiment_routes(client: Client, ada: Mlflow) -> None:
    # Given no experiment "exp": get-by-name answers the exact code set_experiment relies on
    missing = await ada.get("experiments/get-by-name", 404, experiment_name="exp")
    assert missing == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "Could not find experiment with name 'exp'",
    }
    # When the client creates it, then gets it
    experiment_id = await ada.experiment("exp")
    got = (await ada.get("experiments/get", experiment_id=experiment_id))["experiment"]
    # Then it is active, with MLflow's fields
    assert got["experiment_id"] == experiment_id and got["name"] == "exp"
    assert got["lifecycle_stage"] == "active"
    assert got["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert got["creation_time"] > 1_600_000_000_000 and got["last_update_time"] >= got["creation_time"]
    by_name = await ada.get("experiments/get-by-name", experiment_name="exp")
    assert by_name["experiment"]["experiment_id"] == experiment_id
    ajax = await client.get(
        "/ajax-api/2.0/mlflow/experiments/get-by-name", headers=ada.headers, params={"experiment_name": "exp"}
    )
    assert ajax.status_code == 200 and ajax.json() == by_name
    # A second create of the name is RESOURCE_ALREADY_EXISTS with 400 (the client then re-reads)
    again = await ada.post("experiments/create", 400, name="exp")
    assert again["error_code"] == "RESOURCE_ALREADY_EXISTS"
    assert (await ada.post("experiments/create", 400))["error_code"] == "INVALID_PARAMETER_VALUE"
    # Experiment "0" is the caller's Default
    default = (await ada.get("experiments/get", experiment_id="0"))["experiment"]
    assert default["name"] == "Default" and default["lifecycle_stage"] == "active"
    unknown = await ada.get("experiments/get", 404, experiment_id="01NOPE")
    assert unknown["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # Tags, rename
    await ada.post("experiments/set-experiment-tag", experiment_id=experiment_id, key="k", value="v")
    await ada.post("experiments/update", experiment_id=experiment_id, new_name="exp2")
    got = (await ada.get("experiments/get", experiment_id=experiment_id))["experiment"]
    assert got["name"] == "exp2" and got["tags"] == [{"key": "k", "value": "v"}]
    await ada.post("experiments/delete-experiment-tag", experiment_id=experiment_id, key="k")
    gone = await ada.post("experiments/delete-experiment-tag", 404, experiment_id=experiment_id, key="k")
    assert gone["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    # Search: GET and POST, filters, pages by token, views
    other = await ada.experiment("other")
    everything = await ada.post("experiments/search")
    # newest first (the Default was made by the get of "0")
    assert [e["name"] for e in everything["experiments"]] == ["other", "Default", "exp2"]
    assert "next_page_token" not in everything
    named = await ada.get("experiments/search", filter="name = 'exp2'")
    assert [e["experiment_id"] for e in named["experiments"]] == [experiment_id]
    liked = await ada.post("experiments/search", filter="name LIKE 'e%' AND name != 'x'")
    assert [e["name"] for e in liked["experiments"]] == ["exp2"]
    first = await ada.post("experiments/search", max_results=1)
    assert [e["experiment_id"] for e in first["experiments"]] == [other]
    second = await ada.get("experiments/search", max_results="1", page_token=first["next_page_token"])
    assert [e["experiment_id"] for e in second["experiments"]] == [default["experiment_id"]]
    filtered_page = await ada.post("experiments/search", filter="name LIKE '%e%'", max_results=1)
    rest = await ada.post(
        "experiments/search", filter="name LIKE '%e%'", page_token=filtered_page["next_page_token"]
    )
    both = filtered_page["experiments"] + rest["experiments"]
    assert [e["name"] for e in both] == ["other", "Default", "exp2"]
    assert await ada.post("experiments/search", view_type="DELETED_ONLY") == {}
    for bad in ({"filter": "name = 'a' OR name = 'b'"}, {"filter": "owner = 'x'"}, {"page_token": "!!"}):
        refused = await ada.post("experiments/search", 400, **bad)
        assert refused["error_code"] == "INVALID_PARAMETER_VALUE"

    # Delete is for good: get and restore answer 404
    await ada.post("experiments/delete", experiment_id=other)
    assert (await ada.get("experiments/get", 404, experiment_id=other))[
        "error_code"
    ] == "RESOURCE_DOES_NOT_EXIST"
    await ada.post("experiments/restore", 404, experiment_id=other)


# -- runs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", ["sqlite", "postgresql"], indirect=True)
async def test_run_flow(client: Client, ada: Mlflow) -> None:
    experiment_id = await ada.experiment("flow")
    # Given a run as start_run makes it, and a nested one
    client_tags = [{"key": "mlflow.user", "value": "root"}, {"key": "mlflow.runName", "value": "parent"}]
    start = {"user_id": "root", "run_name": "parent", "start_time": T0, "tags": client_tags}
    created = await ada.post("runs/create", experiment_id=experiment_id, **start)
    info = created["run"]["info"]
    parent = info["run_id"]
    assert info.pop("run_uuid") == parent and len(parent) == 32 and "end_time" not in info
    artifacts = f"mlflow-artifacts:/{experiment_id}/{parent}/artifacts"
    assert info == dict(
        run_id=parent, experiment_id=experiment_id, run_name="parent", user_id="root", status="RUNNING",
        start_time=T0, artifact_uri=artifacts, lifecycle_stage="active",
    )  # fmt: skip
    nesting = [{"key": "mlflow.parentRunId", "value": parent}]
    child = await ada.run(experiment_id, run_name="child", start_time=T0 + 1, tags=nesting)

    # When params, tags and metrics are logged (steps, NaN and ±inf as MLflow's strings)
    await ada.post("runs/log-parameter", run_uuid=parent, run_id=parent, key="alpha", value="0.5")
    await ada.post("runs/log-parameter", run_id=parent, key="alpha", value="0.5")  # same: fine
    await ada.post("runs/set-tag", run_id=parent, key="team", value="a")
    for step in range(5):
        point = {"key": "loss", "value": 1.0 / (step + 1), "timestamp": T0 + step, "step": step}
        await ada.post("runs/log-metric", run_id=parent, **point)
    await ada.post(
        "runs/log-batch",
        run_id=parent,
        params=[{"key": "depth", "value": 3}],
        tags=[{"key": "team", "value": "b"}],
        metrics=[
            {"key": "odd", "value": "NaN", "timestamp": T0, "step": 0},
            {"key": "odd", "value": "Infinity", "timestamp": T0, "step": 1},
            {"key": "low", "value": "-Infinity", "timestamp": str(T0), "step": "0"},
        ],
    )
    child_loss, child_alpha = {"key": "loss", "value": 5.0, "timestamp": T0}, {"key": "alpha", "value": "0.9"}
    await ada.post("runs/log-batch", run_id=child, metrics=[child_loss], params=[child_alpha])
    await ada.post("runs/log-inputs", run_id=parent, datasets=[DATASET_INPUT])
    model_id = "m-" + "0" * 32
    await ada.post("runs/outputs", run_id=parent, models=[{"model_id": model_id, "step": 0}])
    model = {"run_id": parent, "artifact_path": "model", "utc_time_created": "2026-12-06 07:08:36"}
    model |= {"model_uuid": "u1", "flavors": {"sklearn": {"pickled_model": "m.pkl"}}, "signature": {}}
    assert await ada.post("runs/log-model", run_id=parent, model_json=json.dumps(model)) == {}

    # Then runs/get shows the latest point per key, the data, inputs and outputs
    run = (await ada.get("runs/get", run_uuid=parent, run_id=parent))["run"]
    metrics = {m["key"]: m for m in run["data"]["metrics"]}
    assert metrics["loss"] == {"key": "loss", "value": 0.2, "timestamp": T0 + 4, "step": 4}
    assert metrics["odd"]["value"] == "Infinity" and metrics["low"]["value"] == "-Infinity"
    assert sorted((p["key"], p["value"]) for p in run["data"]["params"]) == [("alpha", "0.5"), ("depth", "3")]
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["team"] == "b" and tags["mlflow.runName"] == "parent" and tags["mlflow.user"] == "root"
    history_tag = tags["mlflow.log-model.history"]
    assert '"model_uuid":"u1"' in history_tag and "signature" not in history_tag
    assert run["inputs"]["dataset_inputs"] == [DATASET_INPUT]
    assert run["outputs"] == {"model_outputs": [{"model_id": model_id, "step": 0}]}
    nested = (await ada.get("runs/get", run_id=child))["run"]
    assert {"key": "mlflow.parentRunId", "value": parent} in nested["data"]["tags"]

    # Metric history: by step, in pages; NaN and inf as strings
    first_page = {"run_id": parent, "metric_key": "loss", "max_results": 2}
    first = await ada.get("metrics/get-history", **first_page)
    assert [m["step"] for m in first["metrics"]] == [0, 1]
    points = first["metrics"]
    token = first["next_page_token"]
    while token:
        page = await ada.get("metrics/get-history", page_token=token, **first_page)
        points += page["metrics"]
        token = page.get("next_page_token")
    assert [(m["step"], m["value"]) for m in points] == [(s, 1.0 / (s + 1)) for s in range(5)]
    odd = await ada.get("metrics/get-history", run_uuid=parent, metric_key="odd")
    assert [m["value"] for m in odd["metrics"]] == ["NaN", "Infinity"] and "next_page_token" not in odd
    assert await ada.get("metrics/get-history", run_id=parent, metric_key="never") == {}

    # Search: filter, order, pages; both keys left out of an empty answer
    query = {"filter": "params.alpha = '0.5' and metrics.loss < 2", "run_view_type": "ACTIVE_ONLY"}
    order = ["metrics.loss ASC", "attributes.start_time DESC"]
    found = await ada.post("runs/search", experiment_ids=[experiment_id], order_by=order, **query)
    assert _ids(*found["runs"]) == [parent] and "next_page_token" not in found
    ordered = await ada.post("runs/search", experiment_ids=[experiment_id], order_by=["metrics.loss DESC"])
    assert _ids(*ordered["runs"]) == [child, parent]
    page = await ada.post("runs/search", experiment_ids=[experiment_id], max_results=1)
    assert _ids(*page["runs"]) == [child]  # start_time DESC by default
    page = await ada.post(
        "runs/search", experiment_ids=[experiment_id], max_results=1, page_token=page["next_page_token"]
    )
    assert _ids(*page["runs"]) == [parent] and "next_page_token" not in page
    none = await ada.post("runs/search", experiment_ids=[experiment_id], filter="params.alpha = 'x'")
    assert none == {}

    # Update: FINISHED with an end time; an unknown status is ignored
    updated = await ada.post(
        "runs/update", run_uuid=parent, run_id=parent, status="FINISHED", end_time=T0 + 9
    )
    assert updated["run_info"]["status"] == "FINISHED" and updated["run_info"]["end_time"] == T0 + 9
    kept = await ada.post("runs/update", run_id=parent, status="BOGUS")
    assert kept["run_info"]["status"] == "FINISHED"

    # Delete hides the run from active searches; restore brings it back
    await ada.post("runs/delete", run_id=child)
    deleted = await ada.get("runs/get", run_id=child)
    assert deleted["run"]["info"]["lifecycle_stage"] == "deleted"
    refused = await ada.post("runs/set-tag", 400, run_id=child, key="k", value="v")
    assert refused["error_code"] == "INVALID_PARAMETER_VALUE"
    only_deleted = await ada.post("runs/search", experiment_ids=[experiment_id], run_view_type="DELETED_ONLY")
    assert _ids(*only_deleted["runs"]) == [child]
    await ada.post("runs/restore", run_id=child)
    assert len((await ada.post("runs/search", experiment_ids=[experiment_id]))["runs"]) == 2


async def test_bad_input_gets_mlflow_errors(client: Client, ada: Mlflow) -> None:
    run_id = await ada.run("0")

    # A 10 MB param value: the body is over the app's limit, refused as an MLflow error (4xx)
    huge_param = {"run_id": run_id, "key": "big", "value": "x" * 10_000_000}
    huge = await client.post(f"{T}/runs/log-parameter", headers=ada.headers, json=huge_param)
    assert huge.status_code == 413 and huge.json()["error_code"] == "BAD_REQUEST", huge.text
    # A long value within the body limit is cut to MLflow's 6000 characters, silently
    await ada.post("runs/log-parameter", run_id=run_id, key="long", value="y" * 100_000)
    await ada.post("runs/log-batch", run_id=run_id, params=[{"key": "long2", "value": "z" * 7000}])
    params = (await ada.get("runs/get", run_id=run_id))["run"]["data"]["params"]
    assert {p["key"]: p["value"] for p in params} == {"long": "y" * 6000, "long2": "z" * 6000}

    invalid: list[tuple[str, dict[str, Any]]] = [
        ("runs/log-metric", {"run_id": run_id, "key": "../x", "value": 1, "timestamp": T0}),
        ("runs/log-parameter", {"run_id": run_id, "key": "a/../../b", "value": "1"}),
        ("runs/log-parameter", {"run_id": run_id, "key": "long", "value": "other"}),  # params are immutable
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1}),  # no timestamp
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 1, "timestamp": -1}),
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": "high", "timestamp": T0}),
        ("runs/log-batch", {"run_id": run_id, "params": [{"key": "p", "value": "1"}] * 2}),
        ("runs/search", {"experiment_ids": ["0"], "filter": "params.a = '1' OR params.b = '2'"}),
        ("runs/search", {"experiment_ids": ["0"], "filter": "params.a = 1"}),
        ("runs/search", {"experiment_ids": ["0"], "max_results": 50_001}),
        ("runs/search", {"experiment_ids": ["0"], "page_token": "not base64!"}),
        ("runs/search", {"experiment_ids": ["0"], "order_by": ["metrics.loss SIDEWAYS"]}),
        ("runs/log-model", {"run_id": run_id, "model_json": '{"artifact_path": "model"}'}),
        ("runs/log-model", {"run_id": run_id, "model_json": "not json"}),
        ("runs/get", {}),
    ]
    for path, body in invalid:
        refused = await (ada.get if path == "runs/get" else ada.post)(path, 400, **body)
        assert refused["error_code"] == "INVALID_PARAMETER_VALUE", (path, refused)
    changed = await ada.post("runs/log-parameter", 400, run_id=run_id, key="long", value="v")
    assert changed["message"].startswith("Changing param values is not allowed.")
    missing = await ada.post("runs/log-batch", 400, run_id=run_id, metrics=[{"key": "m", "value": 1.0}])
    assert missing["message"] == "Missing value for required parameter 'metrics[0].timestamp'."
    # Nothing of a refused batch was recorded
    data = (await ada.get("runs/get", run_id=run_id))["run"]["data"]
    assert data["metrics"] == [] and "p" not in {p["key"] for p in data["params"]}

    unknown = "f" * 32
    unknowns: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "runs/get", {"run_id": unknown}),
        ("POST", "runs/log-metric", {"run_id": unknown, "key": "m", "value": 1, "timestamp": T0}),
        ("POST", "runs/update", {"run_id": unknown, "status": "FINISHED"}),
        ("GET", "metrics/get-history", {"run_id": unknown, "metric_key": "m"}),
        ("POST", "runs/create", {"experiment_id": "01NOPE"}),
    ]
    for method, path, body in unknowns:
        gone = await (ada.get if method == "GET" else ada.post)(path, 404, **body)
        assert gone["error_code"] == "RESOURCE_DOES_NOT_EXIST", (path, gone)
    assert (await ada.get("runs/get", 404, run_id=unknown))["message"] == f"Run with id={unknown} not found"


async def test_nan_and_infinity_round_trip(client: Client, ada: Mlflow) -> None:
    run_id = await ada.run("0")
    for step, value in enumerate(["NaN", "Infinity", "-Infinity", 2.5]):
        await ada.post("runs/log-metric", run_id=run_id, key="m", value=value, timestamp=T0, step=step)
        point = {"key": f"k{step}", "value": value, "timestamp": T0, "step": 0}
        await ada.post("runs/log-batch", run_id=run_id, metrics=[point])
    history = await ada.get("metrics/get-history", run_id=run_id, metric_key="m")
    assert [p["value"] for p in history["metrics"]] == ["NaN", "Infinity", "-Infinity", 2.5]
    latest = (await ada.get("runs/get", run_id=run_id))["run"]["data"]["metrics"]
    assert {m["key"]: m["value"] for m in latest} == dict(
        m=2.5, k0="NaN", k1="Infinity", k2="-Infinity", k3=2.5
    )
    # The protobuf JSON mapping (what mlflow's client parses answers with; it comes with
    # mlflow-skinny) reads them back as the floats logged
    from google.protobuf import json_format, wrappers_pb2  # type: ignore[import-untyped]

    values = [json_format.ParseDict(p["value"], wrappers_pb2.DoubleValue()).value for p in history["metrics"]]
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 2.5]


# -- who sees what --------------------------------------------------------------------------------


async def test_second_user_sees_nothing_until_shared(
    client: Client, admin_headers: Headers, ada: Mlflow
) -> None:
    bob = await _user(client, admin_headers, "bob")
    experiment_id = await ada.experiment("private")
    run_id = await ada.run(experiment_id, run_name="r")
    await ada.post("runs/log-metric", run_id=run_id, key="m", value=1, timestamp=T0)

    # Bob: the experiment and run do not exist for him
    hidden_calls: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", "experiments/get", {"experiment_id": experiment_id}),
        ("GET", "experiments/get-by-name", {"experiment_name": "ada/private"}),
        ("GET", "runs/get", {"run_id": run_id}),
        ("GET", "metrics/get-history", {"run_id": run_id, "metric_key": "m"}),
        ("POST", "runs/log-metric", {"run_id": run_id, "key": "m", "value": 2, "timestamp": T0}),
        ("POST", "runs/create", {"experiment_id": experiment_id}),
        ("POST", "experiments/delete", {"experiment_id": experiment_id}),
    ]
    for method, path, body in hidden_calls:
        hidden = await (bob.get if method == "GET" else bob.post)(path, 404, **body)
        assert hidden["error_code"] == "RESOURCE_DOES_NOT_EXIST", (path, hidden)
    assert await bob.post("runs/search", experiment_ids=[experiment_id]) == {}
    assert await bob.get("experiments/get-by-name", 404, experiment_name="private")

    # Shared for reading: bob reads, but may not log
    share = {"user": "bob", "permission": "read"}
    shared = await client.post(f"/api/v1/assets/{experiment_id}/shares", headers=ada.headers, json=share)
    assert shared.status_code == 201, shared.text
    got = await bob.get("experiments/get-by-name", experiment_name="ada/private")
    assert got["experiment"]["experiment_id"] == experiment_id
    run = (await bob.get("runs/get", run_id=run_id))["run"]
    assert run["data"]["metrics"][0]["value"] == 1
    searched = await bob.post("runs/search", experiment_ids=[experiment_id])
    assert _ids(*searched["runs"]) == [run_id]
    writes: list[tuple[str, dict[str, Any]]] = [
        ("runs/log-metric", {"run_id": run_id, "key": "m", "value": 2, "timestamp": T0}),
        ("runs/set-tag", {"run_id": run_id, "key": "k", "value": "v"}),
        ("runs/update", {"run_id": run_id, "status": "KILLED"}),
        ("runs/create", {"experiment_id": experiment_id}),
    ]
    for path, body in writes:
        denied = await bob.post(path, 403, **body)
        assert denied["error_code"] == "PERMISSION_DENIED", (path, denied)
    history = await ada.get("metrics/get-history", run_id=run_id, metric_key="m")
    assert [p["value"] for p in history["metrics"]] == [1]
