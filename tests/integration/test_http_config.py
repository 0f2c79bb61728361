"""Config settings over HTTP: CRUD, ETags, history, permissions, limits; job defaults from settings."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.testing import AsyncTestClient

Client = AsyncTestClient[Litestar]
BASE = "/api/v1/services/jobs/config-settings"


async def test_put_get_etag_history_delete(client: Client, admin_headers: dict[str, str]) -> None:
    created = await client.put(
        f"{BASE}/data.profile", headers=admin_headers, json={"value": {"format": "csv"}, "tags": ["defaults"]}
    )
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    fetched = await client.get(f"{BASE}/data.profile", headers=admin_headers)
    assert fetched.json()["value"] == {"format": "csv"} and fetched.headers["etag"] == '"1"'

    updated = await client.put(
        f"{BASE}/data.profile",
        headers={**admin_headers, "If-Match": '"1"'},
        json={"value": {"format": "parquet"}, "tags": ["defaults"]},
    )
    assert (updated.status_code, updated.headers["etag"]) == (200, '"2"')
    stale = await client.put(
        f"{BASE}/data.profile", headers={**admin_headers, "If-Match": '"1"'}, json={"value": {}}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")

    listed = (await client.get(f"{BASE}?tag=defaults", headers=admin_headers)).json()["items"]
    assert [s["name"] for s in listed] == ["data.profile"]
    assert (await client.delete(f"{BASE}/data.profile", headers=admin_headers)).status_code == 204
    assert (await client.get(f"{BASE}/data.profile", headers=admin_headers)).status_code == 404
    history = (await client.get(f"{BASE}/data.profile/history", headers=admin_headers)).json()["items"]
    assert [(v["version"], v["deleted"]) for v in history] == [(3, True), (2, False), (1, False)]
    assert history[1]["value"] == {"format": "parquet"}


async def test_users_read_but_only_admins_write(client: Client, admin_headers: dict[str, str]) -> None:
    await client.put(f"{BASE}/x", headers=admin_headers, json={"value": 1})
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": "ada"})
    user = {"Authorization": f"Bearer {created.json()['token']['token']}"}
    assert (await client.get(f"{BASE}/x", headers=user)).json()["value"] == 1
    assert (await client.put(f"{BASE}/x", headers=user, json={"value": 2})).status_code == 403
    assert (await client.delete(f"{BASE}/x", headers=user)).status_code == 403
    assert (await client.get(f"{BASE}/x")).status_code == 401


async def test_limits_and_bad_input(client: Client, admin_headers: dict[str, str]) -> None:
    big: dict[str, Any] = {"value": "x" * (64 * 1024 + 1)}
    too_big = await client.put(f"{BASE}/big", headers=admin_headers, json=big)
    assert too_big.status_code == 422 and too_big.json()["errors"][0]["field"] == "value"
    bad_tag = await client.put(f"{BASE}/t", headers=admin_headers, json={"value": 1, "tags": ["no spaces"]})
    assert bad_tag.status_code == 422
    bad_name = await client.put(
        "/api/v1/services/Bad Service/config-settings/x", headers=admin_headers, json={"value": 1}
    )
    assert bad_name.status_code in (404, 422)
    missing_value = await client.put(f"{BASE}/v", headers=admin_headers, json={"tags": []})
    assert missing_value.status_code == 422


async def test_job_defaults_come_from_the_jobs_service_settings(
    client: Client, admin_headers: dict[str, str]
) -> None:
    await client.put(
        f"{BASE}/system.sleep",
        headers=admin_headers,
        json={"value": {"seconds": 0.01, "message": "from defaults"}},
    )
    job = (
        await client.post(
            "/api/v1/jobs", headers=admin_headers, json={"type": "system.sleep", "params": {"seconds": 0.02}}
        )
    ).json()
    # Submitted params win; the rest comes from the setting; the job records the merged params.
    assert job["params"] == {"seconds": 0.02, "message": "from defaults"}
    await client.put(f"{BASE}/system.noop", headers=admin_headers, json={"value": {"bogus": 1}})
    refused = await client.post("/api/v1/jobs", headers=admin_headers, json={"type": "system.noop"})
    assert refused.status_code == 422  # defaults are validated like submitted params
