"""Composite shares: whoever may read an experiment may read the assets next to it in lineage (a
model registered from its runs), read only, and only while they may read the experiment."""

from __future__ import annotations

import numpy as np
import skops.io
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sklearn.linear_model import LogisticRegression

Client = AsyncTestClient[Litestar]


async def _token(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    made = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']['token']}"}


async def test_a_shared_experiment_lets_its_readers_read_the_models_it_produced(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _token(client, admin_headers, "ada")
    bob = await _token(client, admin_headers, "bob")
    experiment = (await client.post("/api/v1/experiments", headers=ada, json={"name": "churn"})).json()
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    model_file = skops.io.dumps(LogisticRegression().fit(x, [0, 0, 1, 1]))
    imported = await client.post("/api/v1/models/import?name=churn-model", headers=ada, content=model_file)
    assert imported.status_code == 201, imported.text
    model_id = imported.json()["model"]["id"]
    unrelated = await client.post("/api/v1/models/import?name=other", headers=ada, content=model_file)
    # As model-versions/create records it for a version registered from the experiment's runs.
    await client.app.state.container.catalog.record_lineage(
        job_id=None, inputs=[(experiment["id"], 1)], outputs=[(model_id, 1)]
    )

    assert (await client.get(f"/api/v1/assets/{model_id}", headers=bob)).status_code == 404
    shared = await client.post(f"/api/v1/assets/{experiment['id']}/shares", headers=ada, json={"user": "bob"})
    assert shared.status_code == 201, shared.text

    seen = await client.get(f"/api/v1/assets/{model_id}", headers=bob)
    assert seen.status_code == 200 and seen.json()["name"] == "churn-model"
    lineage = (await client.get(f"/api/v1/assets/{model_id}/lineage", headers=bob)).json()
    assert {n["id"] for n in lineage["nodes"]} >= {model_id, experiment["id"]}
    # Read only, and nothing the experiment does not reference.
    renamed = await client.patch(f"/api/v1/assets/{model_id}", headers=bob, json={"name": "mine"})
    assert renamed.status_code == 403
    other_id = unrelated.json()["model"]["id"]
    assert (await client.get(f"/api/v1/assets/{other_id}", headers=bob)).status_code == 404

    await client.delete(f"/api/v1/shares/{shared.json()['id']}", headers=ada)
    assert (await client.get(f"/api/v1/assets/{model_id}", headers=bob)).status_code == 404
