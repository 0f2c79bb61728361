"""Train → register → promote → predict, through the whole app with its job workers (memory://,
SQLite, PostgreSQL), as a user would: a CSV uploaded and imported as a table, an ``ml.train``
job, the model version it registers (with its report, scored tables and lineage), an alias,
online predictions equal to the batch ``ml.predict`` job's, and the errors a user meets."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
FAST: dict[str, Any] = {"heartbeat_interval": 0.1, "sweep_interval": 0.2, "worker_threads": 2}
Headers = dict[str, str]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


#: What does not depend on the database runs on the edge default only (the suite's time).
ON_SQLITE = pytest.mark.parametrize("settings", ["sqlite"], indirect=True)


async def _user(client: Client, admin_headers: Headers, name: str) -> Headers:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


@pytest.fixture
async def ada(client: Client, admin_headers: Headers) -> Headers:
    return await _user(client, admin_headers, "ada")


async def _wait(client: Client, headers: Headers, job_id: str) -> dict[str, Any]:
    for _ in range(3000):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


def _iris_like() -> tuple[bytes, list[dict[str, Any]]]:
    """A small labelled table: two numeric features, one text feature, a three-class target."""
    rows = []
    for i in range(150):
        kind = ("setosa", "versicolor", "virginica")[i % 3]
        rows.append(
            {
                "petal": round(1.0 + (i % 3) * 2.0 + (i % 7) * 0.11, 2),
                "sepal": round(3.0 + (i % 5) * 0.3 + (i % 3) * 0.5, 2),
                "colour": ("pale", "deep", "dark")[(i // 3 + i % 3) % 3],
                "species": kind,
            }
        )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(), rows


async def _table(client: Client, headers: Headers, name: str, data: bytes) -> str:
    uploaded = await client.post(f"/api/v1/files?name={name}.csv", headers=headers, content=data)
    assert uploaded.status_code == 201, uploaded.text
    created = await client.post(
        "/api/v1/tables", headers=headers, json={"name": name, "file": uploaded.json()["id"]}
    )
    assert created.status_code == 202, created.text
    assert (await _wait(client, headers, created.json()["job"]["id"]))["status"] == "completed"
    table_id: str = created.json()["table"]["id"]
    return table_id


async def _job(client: Client, headers: Headers, type_: str, params: dict[str, Any]) -> dict[str, Any]:
    submitted = await client.post("/api/v1/jobs", headers=headers, json={"type": type_, "params": params})
    assert submitted.status_code in (201, 202), submitted.text
    return await _wait(client, headers, submitted.json()["id"])


async def test_train_promote_and_predict_online_as_the_batch_job_does(client: Client, ada: Headers) -> None:
    data, rows = _iris_like()
    table = await _table(client, ada, "flowers", data)
    trained = await _job(
        client,
        ada,
        "ml.train",
        {
            "table": table,
            "target": "species",
            "algorithms": ["random_forest"],
            "search": {"method": "none"},
            "seed": 7,
            "out_of_time_table": table,
        },
    )
    assert trained["status"] == "completed", trained
    result = trained["result"]
    assert result["model"]["version"] == 1 and result["task"] == "multiclass"
    assert set(result["scored"]) == {"train", "holdout", "out_of_time"}
    assert set(result["metrics"]) == {"train", "holdout", "out_of_time"}
    sizes = {}
    for split, scored_table in result["scored"].items():
        shown = (await client.get(f"/api/v1/tables/{scored_table}", headers=ada)).json()
        sizes[split] = shown["row_count"]
        assert {"species", "prediction", "probability_setosa"} <= {c["name"] for c in shown["columns"]}
    assert sizes == {"train": 120, "holdout": 30, "out_of_time": 150}
    # Their statistics come from tables.stats jobs of their own.
    for _ in range(500):
        stats = await client.get(f"/api/v1/tables/{result['scored']['train']}/stats", headers=ada)
        if stats.json()["status"] != "pending":
            break
        await asyncio.sleep(0.02)
    assert stats.json()["status"] == "done", stats.text

    model = await client.get("/api/v1/models/flowers-species", headers=ada)
    assert model.status_code == 200, model.text
    assert [v["version"] for v in model.json()["versions"]] == [1]
    version = (await client.get("/api/v1/models/flowers-species/versions/1", headers=ada)).json()
    assert version["classes"] == ["setosa", "versicolor", "virginica"]
    assert [c["name"] for c in version["input_schema"]] == ["petal", "sepal", "colour"]
    assert 0.0 <= version["metrics"]["holdout"]["accuracy"] <= 1.0

    # Lineage: the model version came from the table's version 1.
    lineage = await client.get(f"/api/v1/assets/{version['model']['id']}/lineage", headers=ada)
    assert table in {n["id"] for n in lineage.json()["nodes"]}

    promoted = await client.put(
        "/api/v1/models/flowers-species/aliases/champion", headers=ada, json={"version": 1}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["aliases"] == ["champion"]

    features = [{k: r[k] for k in ("petal", "sepal", "colour")} for r in rows]
    online = await client.post(
        "/api/v1/models/flowers-species/aliases/champion/predict", headers=ada, json={"rows": features}
    )
    assert online.status_code == 200, online.text
    answer = online.json()
    assert answer["model"] == {"name": "flowers-species", "version": 1}
    assert len(answer["predictions"]) == len(rows)
    first = answer["predictions"][0]
    assert set(first["probabilities"]) == {"setosa", "versicolor", "virginica"}
    assert first["label"] == max(first["probabilities"], key=first["probabilities"].get)

    batch = await _job(client, ada, "ml.predict", {"model": "flowers-species@champion", "table": table})
    assert batch["status"] == "completed", batch
    scored = await client.get(
        f"/api/v1/tables/{batch['result']['table']}/rows", headers=ada, params={"limit": 500}
    )
    assert scored.status_code == 200, scored.text
    batch_rows = scored.json()["rows"]
    assert [r["prediction"] for r in batch_rows] == [p["label"] for p in answer["predictions"]]
    for row, prediction in zip(batch_rows, answer["predictions"], strict=True):
        for name, p in prediction["probabilities"].items():
            assert row[f"probability_{name}"] == pytest.approx(p, rel=1e-12)
    assert batch["result"]["prediction_set"]["rows"] == len(rows)

    by_version = await client.post(
        "/api/v1/models/flowers-species/versions/1/predict", headers=ada, json={"rows": features[:3]}
    )
    assert by_version.json()["predictions"] == answer["predictions"][:3]


async def test_what_a_user_gets_wrong_is_named(client: Client, ada: Headers, admin_headers: Headers) -> None:
    data, rows = _iris_like()
    table = await _table(client, ada, "flowers", data)
    missing = await _job(client, ada, "ml.train", {"table": table, "target": "colur"})
    assert missing["status"] == "failed"
    assert "colur" in missing["error"]["message"]

    trained = await _job(
        client,
        ada,
        "ml.train",
        {"table": table, "target": "species", "algorithms": ["linear"], "search": {"method": "none"}},
    )
    assert trained["status"] == "completed", trained
    base = "/api/v1/models/flowers-species"
    no_alias = await client.post(f"{base}/aliases/champion/predict", headers=ada, json={"rows": [{}]})
    assert no_alias.status_code == 404
    assert "champion" in no_alias.json()["detail"]
    wrong = await client.post(
        f"{base}/versions/1/predict",
        headers=ada,
        json={"rows": [{"petal": "wide", "sepal": 1, "colour": "x"}]},
    )
    assert wrong.status_code == 422
    assert "petal" in wrong.text
    absent = await client.post(f"{base}/versions/1/predict", headers=ada, json={"rows": [{"petal": 1.0}]})
    assert absent.status_code == 422
    assert "sepal" in absent.text

    # Another user learns nothing of the model until it is shared with them.
    bob = await _user(client, admin_headers, "bob")
    model_id = trained["result"]["model"]["id"]
    assert (await client.get(f"/api/v1/models/{model_id}", headers=bob)).status_code == 404
    shared = await client.post(f"/api/v1/assets/{model_id}/shares", headers=ada, json={"user": "bob"})
    assert shared.status_code == 201, shared.text
    seen = await client.post(
        f"/api/v1/models/{model_id}/versions/1/predict", headers=bob, json={"rows": [rows[0]]}
    )
    assert seen.status_code == 200, seen.text
    refused = await client.put(
        f"/api/v1/models/{model_id}/aliases/champion", headers=bob, json={"version": 1}
    )
    assert refused.status_code == 403

    # An alias keeps its version from being deleted, and the model from being deleted.
    assert (await client.put(f"{base}/aliases/champion", headers=ada, json={"version": 1})).status_code == 200
    kept = await client.delete(f"{base}/versions/1", headers=ada)
    assert kept.status_code == 409 and "champion" in kept.json()["detail"]
    assert (await client.delete(base, headers=ada)).status_code == 409
    assert (await client.delete(f"{base}/aliases/champion", headers=ada)).status_code == 204
    assert (await client.delete(base, headers=ada)).status_code == 204
    assert (await client.get(base, headers=ada)).status_code == 404


@ON_SQLITE
async def test_a_stream_scores_its_items_and_online_rows_reach_the_sink(client: Client, ada: Headers) -> None:
    data, rows = _iris_like()
    table = await _table(client, ada, "flowers", data)
    params = {"table": table, "target": "species", "algorithms": ["linear"], "search": {"method": "none"}}
    trained = await _job(client, ada, "ml.train", params)
    assert trained["status"] == "completed", trained
    model_id = trained["result"]["model"]["id"]
    base = "/api/v1/models/flowers-species"
    assert (await client.put(f"{base}/aliases/champion", headers=ada, json={"version": 1})).status_code == 200
    items = [{"id": f"r{i}", **{k: rows[i][k] for k in ("petal", "sepal", "colour")}} for i in range(4)]
    online = await client.post(f"{base}/aliases/champion/predict", headers=ada, json={"rows": items})
    assert online.status_code == 200, online.text

    stream = await client.post(
        "/api/v1/streams",
        headers=ada,
        json={
            "job_type": "ml.score",
            "params": {"model": "flowers-species@champion", "key_field": "id"},
            "batch_size": 4,
        },
    )
    assert stream.status_code == 201, stream.text
    stream_id = stream.json()["id"]
    assert (
        await client.post(f"/api/v1/streams/{stream_id}/items", headers=ada, json=items)
    ).status_code == 202
    jobs: list[dict[str, Any]] = []
    for _ in range(1000):
        jobs = (await client.get(f"/api/v1/streams/{stream_id}/jobs", headers=ada)).json()["items"]
        if jobs:
            break
        await asyncio.sleep(0.02)
    assert jobs, "the stream made no job"
    job_id = jobs[0]["job_id"]
    scored = await _wait(client, ada, job_id)
    assert scored["status"] == "completed", scored
    assert scored["result"]["predictions"] == online.json()["predictions"]

    # The stream's set is stored at once; the online rows when the log flushes (within a second).
    stored: list[dict[str, Any]] = []
    for _ in range(300):
        stored = (
            await client.get("/api/v1/predictions", headers=ada, params={"model_id": model_id, "limit": 100})
        ).json()["items"]
        if len(stored) == 8:
            break
        await asyncio.sleep(0.02)
    assert sorted(p["item_key"] for p in stored) == sorted(["online"] * 4 + [f"r{i}" for i in range(4)])
    assert {p["label"] for p in stored} <= {"setosa", "versicolor", "virginica"}


@ON_SQLITE
async def test_every_alias_move_is_an_audited_event_of_the_model(client: Client, ada: Headers) -> None:
    data, _ = _iris_like()
    table = await _table(client, ada, "flowers", data)
    params = {"table": table, "target": "species", "algorithms": ["linear"], "search": {"method": "none"}}
    for _ in range(2):
        assert (await _job(client, ada, "ml.train", params))["status"] == "completed"
    base = "/api/v1/models/flowers-species"
    model_id = (await client.get(base, headers=ada)).json()["id"]
    for version in (1, 2):
        moved = await client.put(f"{base}/aliases/champion", headers=ada, json={"version": version})
        assert moved.status_code == 200, moved.text
    assert (await client.delete(f"{base}/aliases/champion", headers=ada)).status_code == 204
    rows = [{"petal": 1.0, "sepal": 3.0, "colour": "pale"}]
    assert (
        await client.post(f"{base}/versions/2/predict", headers=ada, json={"rows": rows})
    ).status_code == 200
    events = (await client.get("/api/v1/audit", headers=ada, params={"asset": model_id})).json()["items"]
    actions = [e["action"] for e in events if "aliases" in e["action"]]
    assert sorted(actions) == sorted(
        ["PUT /api/v1/models/{name}/aliases/{alias}"] * 2 + ["DELETE /api/v1/models/{name}/aliases/{alias}"]
    )
    assert not [e for e in events if "predict" in e["action"]]  # a prediction is no write


class Doubler:
    """A class of the test's own: a skops file holding it holds an untrusted type."""

    def fit(self, X: Any, y: Any = None) -> Doubler:
        return self

    def transform(self, X: Any) -> Any:
        return X * 2


@ON_SQLITE
async def test_a_model_file_is_imported_only_when_every_type_in_it_is_trusted(
    client: Client, ada: Headers
) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from studio9.ml.persistence import dump_model, load_model

    frame = pd.DataFrame({"x": [float(i) for i in range(30)]})
    labels = [int(i >= 15) for i in range(30)]
    untrusted = dump_model(make_pipeline(Doubler(), LogisticRegression()).fit(frame, labels))
    refused = await client.post(
        "/api/v1/models/import", headers=ada, params={"name": "odd"}, content=untrusted
    )
    assert refused.status_code == 422, refused.text
    assert "Doubler" in refused.json()["detail"]
    assert (await client.get("/api/v1/models/odd", headers=ada)).status_code == 404
    garbage = await client.post(
        "/api/v1/models/import", headers=ada, params={"name": "odd"}, content=b"PK\x03\x04no"
    )
    assert garbage.status_code == 422

    model = LogisticRegression().fit(frame, labels)
    imported = await client.post(
        "/api/v1/models/import", headers=ada, params={"name": "plain"}, content=dump_model(model)
    )
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert (body["version"], body["task"], body["classes"]) == (1, "binary", [0, 1])
    assert body["input_schema"] == [{"name": "x", "type": "float", "nullable": True}]
    exported = await client.get("/api/v1/models/plain/versions/1/export", headers=ada)
    assert exported.status_code == 200
    again = load_model(exported.content)
    answer = await client.post(
        "/api/v1/models/plain/versions/1/predict", headers=ada, json={"rows": [{"x": 3.0}, {"x": 27.0}]}
    )
    assert [p["label"] for p in answer.json()["predictions"]] == again.predict(
        pd.DataFrame({"x": [3.0, 27.0]})
    ).tolist()
