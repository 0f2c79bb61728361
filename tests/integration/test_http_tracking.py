"""Experiments and runs through the native routes (``/api/v1/experiments``, ``/api/v1/runs``), as a
user would: an experiment, a run, batches of params, metrics and tags, the metric history, search
with MLflow's filter language, finishing and deleting; nested runs; what a second user sees before
and after a share; NaN and the infinities on the wire. Memory backends, and SQLite for search (its
filter and order run in SQL there)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
Headers = dict[str, str]
API = "/api/v1"


@pytest.fixture(params=["memory"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path)


async def _user(client: Client, admin_headers: Headers, name: str) -> Headers:
    created = await client.post(f"{API}/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


@pytest.fixture
async def ada(client: Client, admin_headers: Headers) -> Headers:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: Headers) -> Headers:
    return await _user(client, admin_headers, "bob")


async def _send(client: Client, method: str, path: str, headers: Headers, expected: int, **kw: Any) -> Any:
    response = await client.request(method, f"{API}{path}", headers=headers, **kw)
    assert response.status_code == expected, f"{method} {path}: {response.text}"
    return response.json() if response.content else None


async def _experiment(client: Client, headers: Headers, name: str = "churn") -> str:
    experiment_id: str = (await _send(client, "POST", "/experiments", headers, 201, json={"name": name}))[
        "id"
    ]
    return experiment_id


async def _run(client: Client, headers: Headers, experiment_id: str, **body: Any) -> dict[str, Any]:
    run: dict[str, Any] = await _send(
        client, "POST", f"/experiments/{experiment_id}/runs", headers, 201, json=body
    )
    return run


async def _search(client: Client, headers: Headers, **body: Any) -> dict[str, Any]:
    page: dict[str, Any] = await _send(client, "POST", "/runs/search", headers, 200, json=body)
    return page


async def test_an_experiment_and_its_run_from_creation_to_deletion(client: Client, ada: Headers) -> None:
    created = await _send(
        client,
        "POST",
        "/experiments",
        ada,
        201,
        json={"name": "churn", "description": "who leaves", "tags": {"team": "growth"}},
    )
    experiment_id = created["id"]
    assert created["tags"] == {"team": "growth"}
    assert created["description"] == "who leaves"
    assert created["artifact_location"] == f"mlflow-artifacts:/{experiment_id}"
    assert (await client.post(f"{API}/experiments", headers=ada, json={"name": "churn"})).status_code == 409
    other = await _experiment(client, ada, "uplift")
    listed = await _send(client, "GET", "/experiments", ada, 200, params={"limit": 1})
    assert [e["id"] for e in listed["items"]] == [other]  # newest first
    rest = await _send(client, "GET", "/experiments", ada, 200, params={"cursor": listed["next_cursor"]})
    assert [e["id"] for e in rest["items"]] == [experiment_id] and rest["next_cursor"] is None

    run = await _run(client, ada, experiment_id, name="baseline", tags={"stage": "dev"}, start_time=1000)
    assert (run["status"], run["lifecycle_stage"], run["start_time"], run["end_time"]) == (
        "RUNNING",
        "active",
        1000,
        None,
    )
    assert run["tags"] == {"stage": "dev", "mlflow.runName": "baseline"}
    assert run["artifact_uri"] == f"mlflow-artifacts:/{experiment_id}/{run['id']}/artifacts"
    batch = {
        "params": {"alpha": "0.1", "model": "tree"},
        "metrics": [
            {"key": "train/loss", "value": value, "step": step, "timestamp": 2000 + step}
            for step, value in enumerate([0.9, 0.5, 0.25])
        ],
        "tags": {"stage": "review"},
    }
    assert await _send(client, "POST", f"/runs/{run['id']}/log", ada, 204, json=batch) is None
    logged = await _send(client, "GET", f"/runs/{run['id']}", ada, 200)
    assert logged["params"] == {"alpha": "0.1", "model": "tree"}
    assert logged["metrics"] == {"train/loss": {"value": 0.25, "step": 2, "timestamp": 2002}}
    assert logged["tags"]["stage"] == "review"

    history = f"/runs/{run['id']}/metrics/train/loss"
    first = await _send(client, "GET", history, ada, 200, params={"limit": 2})
    assert [(p["step"], p["value"]) for p in first["items"]] == [(0, 0.9), (1, 0.5)]
    second = await _send(client, "GET", history, ada, 200, params={"cursor": first["next_cursor"]})
    assert [(p["step"], p["value"]) for p in second["items"]] == [(2, 0.25)]
    assert second["next_cursor"] is None
    assert (await _send(client, "GET", f"/runs/{run['id']}/metrics/never", ada, 200))["items"] == []

    # A param is immutable; a key that would escape as a file name is refused; nothing of a
    # refused batch is kept.
    changed = {"params": {"alpha": "0.2"}, "metrics": [{"key": "kept", "value": 1}]}
    refused = await client.post(f"{API}/runs/{run['id']}/log", headers=ada, json=changed)
    assert refused.status_code == 422, refused.text
    escaping = await client.post(f"{API}/runs/{run['id']}/log", headers=ada, json={"tags": {"../x": "1"}})
    assert escaping.status_code == 422 and escaping.json()["errors"][0]["field"] == "tags"
    assert "kept" not in (await _send(client, "GET", f"/runs/{run['id']}", ada, 200))["metrics"]

    finished = await _send(
        client, "PATCH", f"/runs/{run['id']}", ada, 200, json={"status": "FINISHED", "end_time": 3000}
    )
    assert (finished["status"], finished["end_time"], finished["params"]["model"]) == (
        "FINISHED",
        3000,
        "tree",
    )

    renamed = await _send(
        client, "PATCH", f"/experiments/{experiment_id}", ada, 200, json={"name": "churn-v2"}
    )
    assert renamed["name"] == "churn-v2"
    await _send(
        client, "PUT", f"/experiments/{experiment_id}/tags/notes/owner", ada, 204, json={"value": "ada"}
    )
    await _send(client, "DELETE", f"/experiments/{experiment_id}/tags/team", ada, 204)
    await _send(client, "DELETE", f"/experiments/{experiment_id}/tags/team", ada, 204)  # gone: no error
    assert (await _send(client, "GET", f"/experiments/{experiment_id}", ada, 200))["tags"] == {
        "notes/owner": "ada"
    }

    await _send(client, "DELETE", f"/runs/{run['id']}", ada, 204)
    assert (await _search(client, ada, experiment_ids=[experiment_id]))["items"] == []
    deleted = await _search(client, ada, experiment_ids=[experiment_id], view="DELETED_ONLY")
    assert [(r["id"], r["lifecycle_stage"]) for r in deleted["items"]] == [(run["id"], "deleted")]
    late = await client.post(f"{API}/runs/{run['id']}/log", headers=ada, json={"tags": {"late": "1"}})
    assert late.status_code == 422, late.text

    await _send(client, "DELETE", f"/experiments/{experiment_id}", ada, 204)
    await _send(client, "GET", f"/experiments/{experiment_id}", ada, 404)
    await _send(client, "GET", f"/runs/{run['id']}", ada, 404)


@pytest.mark.parametrize("settings", ["memory", "sqlite"], indirect=True)
async def test_search_filters_orders_and_pages_runs(client: Client, ada: Headers) -> None:
    experiment_id = await _experiment(client, ada)
    runs: dict[str, str] = {}
    for name, alpha, rmse in (("a", "0.1", 0.4), ("b", "0.1", 0.2), ("c", "0.5", 0.1), ("d", "0.1", 0.9)):
        run_id = (await _run(client, ada, experiment_id, name=name))["id"]
        body = {"params": {"alpha": alpha}, "metrics": [{"key": "rmse", "value": rmse}]}
        await _send(client, "POST", f"/runs/{run_id}/log", ada, 204, json=body)
        runs[run_id] = name

    def names(page: dict[str, Any]) -> list[str]:
        return [runs[r["id"]] for r in page["items"]]

    query = {
        "experiment_ids": [experiment_id],
        "filter": "metrics.rmse < 0.5 and params.alpha = '0.1'",
        "order_by": ["metrics.rmse DESC"],
    }
    found = await _search(client, ada, **query)
    assert names(found) == ["a", "b"]
    assert found["items"][0]["metrics"]["rmse"]["value"] == 0.4
    first = await _search(client, ada, **query, limit=1)
    assert names(first) == ["a"] and first["next_cursor"]
    second = await _search(client, ada, **query, limit=1, cursor=first["next_cursor"])
    assert names(second) == ["b"] and second["next_cursor"] is None
    assert names(await _search(client, ada, experiment_ids=[experiment_id])) == ["d", "c", "b", "a"]

    bad = await client.post(
        f"{API}/runs/search",
        headers=ada,
        json={"experiment_ids": [experiment_id], "filter": "metrics.rmse <"},
    )
    assert bad.status_code == 422, bad.text
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "filter"
    unordered = await client.post(
        f"{API}/runs/search",
        headers=ada,
        json={"experiment_ids": [experiment_id], "order_by": ["rmse sideways"]},
    )
    assert unordered.status_code == 422, unordered.text


async def test_a_nested_run_names_its_parent(client: Client, ada: Headers) -> None:
    experiment_id = await _experiment(client, ada)
    parent = await _run(client, ada, experiment_id, name="sweep")
    child = await _run(client, ada, experiment_id, name="trial-1", parent_run_id=parent["id"])
    assert child["parent_run_id"] == parent["id"]
    assert child["tags"]["mlflow.parentRunId"] == parent["id"]
    children = await _search(
        client, ada, experiment_ids=[experiment_id], filter=f"tags.mlflow.parentRunId = '{parent['id']}'"
    )
    assert [r["id"] for r in children["items"]] == [child["id"]]
    unknown = await client.post(
        f"{API}/experiments/{experiment_id}/runs", headers=ada, json={"parent_run_id": "0" * 32}
    )
    assert unknown.status_code == 404, unknown.text


async def test_a_second_user_sees_nothing_until_shared_then_reads_but_cannot_log(
    client: Client, ada: Headers, bob: Headers
) -> None:
    experiment_id = await _experiment(client, ada)
    run_id = (await _run(client, ada, experiment_id))["id"]
    await _send(
        client, "POST", f"/runs/{run_id}/log", ada, 204, json={"metrics": [{"key": "auc", "value": 0.8}]}
    )
    log = {"metrics": [{"key": "auc", "value": 0.1}]}

    for method, path, body in (
        ("GET", f"/experiments/{experiment_id}", None),
        ("GET", f"/runs/{run_id}", None),
        ("GET", f"/runs/{run_id}/metrics/auc", None),
        ("POST", f"/runs/{run_id}/log", log),
        ("POST", f"/experiments/{experiment_id}/runs", {}),
        ("PATCH", f"/runs/{run_id}", {"status": "KILLED"}),
    ):
        await _send(client, method, path, bob, 404, json=body)
    assert (await _search(client, bob, experiment_ids=[experiment_id]))["items"] == []

    await _send(client, "POST", f"/assets/{experiment_id}/shares", ada, 201, json={"user": "bob"})
    assert (await _send(client, "GET", f"/experiments/{experiment_id}", bob, 200))["id"] == experiment_id
    assert (await _send(client, "GET", f"/runs/{run_id}", bob, 200))["metrics"]["auc"]["value"] == 0.8
    assert [
        p["value"] for p in (await _send(client, "GET", f"/runs/{run_id}/metrics/auc", bob, 200))["items"]
    ] == [0.8]
    assert [r["id"] for r in (await _search(client, bob, experiment_ids=[experiment_id]))["items"]] == [
        run_id
    ]
    for method, path, body in (
        ("POST", f"/runs/{run_id}/log", log),
        ("POST", f"/experiments/{experiment_id}/runs", {}),
        ("PATCH", f"/runs/{run_id}", {"status": "KILLED"}),
        ("DELETE", f"/runs/{run_id}", None),
        ("PUT", f"/experiments/{experiment_id}/tags/x", {"value": "y"}),
        ("DELETE", f"/experiments/{experiment_id}", None),
    ):
        await _send(client, method, path, bob, 403, json=body)
    # Nothing bob tried changed the run.
    run = await _send(client, "GET", f"/runs/{run_id}", ada, 200)
    assert (run["status"], run["lifecycle_stage"], run["metrics"]["auc"]["value"]) == (
        "RUNNING",
        "active",
        0.8,
    )


async def test_nan_and_the_infinities_round_trip_as_strings(client: Client, ada: Headers) -> None:
    experiment_id = await _experiment(client, ada)
    run_id = (await _run(client, ada, experiment_id))["id"]
    values = {"nan": "NaN", "up": "Infinity", "down": "-Infinity", "plain": 1.5}
    body = {"metrics": [{"key": key, "value": value, "timestamp": 5} for key, value in values.items()]}
    await _send(client, "POST", f"/runs/{run_id}/log", ada, 204, json=body)
    run = await _send(client, "GET", f"/runs/{run_id}", ada, 200)
    assert {key: point["value"] for key, point in run["metrics"].items()} == values
    for key, value in values.items():
        history = await _send(client, "GET", f"/runs/{run_id}/metrics/{key}", ada, 200)
        assert history["items"] == [{"value": value, "step": 0, "timestamp": 5}]
    infinite = await _search(client, ada, experiment_ids=[experiment_id], filter="metrics.up > 1e308")
    assert [r["id"] for r in infinite["items"]] == [run_id]
    not_a_number = await client.post(
        f"{API}/runs/{run_id}/log", headers=ada, json={"metrics": [{"key": "x", "value": "high"}]}
    )
    assert not_a_number.status_code == 422, not_a_number.text
