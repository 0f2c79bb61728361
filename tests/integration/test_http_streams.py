"""Message streams over HTTP: items pushed, batched by size and time into jobs that run; settings,
counters, pause/resume, permissions and validation (memory and SQLite systems of record)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
STREAMS = "/api/v1/streams"
FAST = {"heartbeat_interval": 0.05, "sweep_interval": 0.1, "worker_threads": 2}


@pytest.fixture(params=["memory", "sqlite"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0) -> Any:
    """The first truthy result of ``check``, polled until ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if result := await check():
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _create(client: Client, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"job_type": "system.noop", "item_param": "echo", "batch_size": 3, "max_wait": 0.3, **fields}
    response = await client.post(STREAMS, headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _stream(client: Client, headers: dict[str, str], stream_id: str) -> dict[str, Any]:
    response = await client.get(f"{STREAMS}/{stream_id}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize("settings", ["memory", "sqlite", "postgresql"], indirect=True)
async def test_pushed_items_become_jobs_by_size_then_by_time(
    client: Client, admin_headers: dict[str, str]
) -> None:
    stream = await _create(client, admin_headers)
    assert (stream["source"], stream["mode"], stream["paused"]) == ("http", "batch", False)
    items = [{"key": f"k{i}", "n": i} for i in range(7)]
    pushed = await client.post(f"{STREAMS}/{stream['id']}/items", headers=admin_headers, json=items)
    assert (pushed.status_code, pushed.json()) == (202, {"accepted": 7, "duplicates": 0})
    again = await client.post(f"{STREAMS}/{stream['id']}/items", headers=admin_headers, json=items[:2])
    assert again.json() == {"accepted": 0, "duplicates": 2}

    async def all_submitted() -> dict[str, Any] | None:
        found = await _stream(client, admin_headers, stream["id"])
        return found if found["counters"]["jobs_submitted"] == 3 else None

    counters = (await eventually(all_submitted))["counters"]
    assert counters == {
        "received": 7,
        "duplicates": 2,
        "batched": 7,
        "pending": 0,
        "jobs_submitted": 3,
        "failed": 0,
    }
    batches = (await client.get(f"{STREAMS}/{stream['id']}/jobs", headers=admin_headers)).json()["items"]
    assert [b["items"] for b in batches] == [1, 3, 3]  # newest first: the last one waited max_wait
    assert all(b["error"] is None for b in batches)
    echoed: list[int] = []
    for batch in reversed(batches):

        async def completed(job_id: str = batch["job_id"]) -> dict[str, Any] | None:
            job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=admin_headers)).json()
            return job if job["status"] == "completed" else None

        job = await eventually(completed)
        echoed += [item["n"] for item in job["result"]["echo"]]
    assert echoed == list(range(7))  # every item in exactly one job, in arrival order
    # A batch row shows how its job is doing, not "submitted" for ever.
    batches = (await client.get(f"{STREAMS}/{stream['id']}/jobs", headers=admin_headers)).json()["items"]
    assert [b["status"] for b in batches] == ["completed"] * 3


async def test_per_item_streams_profile_each_pushed_file(
    client: Client, admin_headers: dict[str, str]
) -> None:
    upload = await client.post("/api/v1/files?name=a.csv", headers=admin_headers, content=b"a,b\n1,2\n3,4\n")
    file_id = upload.json()["id"]
    stream = await _create(
        client, admin_headers, job_type="data.profile", mode="per_item", item_param="file", max_wait=0
    )
    await client.post(f"{STREAMS}/{stream['id']}/items", headers=admin_headers, json=[{"file": file_id}])

    async def profiled() -> dict[str, Any] | None:
        batches = (await client.get(f"{STREAMS}/{stream['id']}/jobs", headers=admin_headers)).json()["items"]
        if not batches:
            return None
        job: dict[str, Any] = (
            await client.get(f"/api/v1/jobs/{batches[0]['job_id']}", headers=admin_headers)
        ).json()
        return job if job["status"] == "completed" else None

    job = await eventually(profiled)
    assert job["params"] == {"file": file_id, "format": None} and job["result"]["rows"] == 2


async def test_a_job_that_cannot_be_made_fails_its_batch(
    client: Client, admin_headers: dict[str, str]
) -> None:
    stream = await _create(client, admin_headers, item_param="items", batch_size=1)  # noop takes no items
    await client.post(f"{STREAMS}/{stream['id']}/items", headers=admin_headers, json=[{"a": 1}])

    async def failed() -> dict[str, Any] | None:
        found = await _stream(client, admin_headers, stream["id"])
        return found if found["counters"]["failed"] == 1 else None

    assert (await eventually(failed))["counters"]["jobs_submitted"] == 0
    (batch,) = (await client.get(f"{STREAMS}/{stream['id']}/jobs", headers=admin_headers)).json()["items"]
    assert batch["status"] == "failed" and "items" in batch["error"]


async def test_pause_holds_items_until_resume(client: Client, admin_headers: dict[str, str]) -> None:
    stream = await _create(client, admin_headers, batch_size=2, max_wait=0)
    paused = await client.post(f"{STREAMS}/{stream['id']}/pause", headers=admin_headers)
    assert (paused.status_code, paused.json()["paused"]) == (200, True)
    await client.post(f"{STREAMS}/{stream['id']}/items", headers=admin_headers, json=[{"a": 1}, {"a": 2}])
    await asyncio.sleep(0.4)  # several runner cycles
    held = await _stream(client, admin_headers, stream["id"])
    assert (held["counters"]["pending"], held["counters"]["jobs_submitted"]) == (2, 0)
    resumed = await client.post(f"{STREAMS}/{stream['id']}/resume", headers=admin_headers)
    assert resumed.json()["paused"] is False

    async def submitted() -> bool:
        return bool((await _stream(client, admin_headers, stream["id"]))["counters"]["jobs_submitted"] == 1)

    await eventually(submitted)


async def test_settings_live_in_the_config_service_and_can_change(
    client: Client, admin_headers: dict[str, str]
) -> None:
    stream = await _create(client, admin_headers, name="uploads", params={})
    setting = await client.get(
        f"/api/v1/services/streams/config-settings/{stream['id']}", headers=admin_headers
    )
    assert setting.status_code == 200 and setting.json()["value"]["job_type"] == "system.noop"
    changed = await client.patch(
        f"{STREAMS}/{stream['id']}", headers=admin_headers, json={"batch_size": 50, "name": "renamed"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["batch_size"], changed.json()["name"], changed.json()["max_wait"]) == (
        50,
        "renamed",
        0.3,
    )
    listed = (await client.get(STREAMS, headers=admin_headers)).json()
    assert [s["id"] for s in listed["items"]] == [stream["id"]] and listed["next_cursor"] is None
    assert (await client.delete(f"{STREAMS}/{stream['id']}", headers=admin_headers)).status_code == 204
    assert (await client.get(f"{STREAMS}/{stream['id']}", headers=admin_headers)).status_code == 404
    assert (await client.get(STREAMS, headers=admin_headers)).json()["items"] == []


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
async def test_only_the_owner_and_admins_see_a_stream(client: Client, admin_headers: dict[str, str]) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    stream = await _create(client, ada)
    path = f"{STREAMS}/{stream['id']}"
    for method, url, body in [
        ("GET", path, None),
        ("PATCH", path, {"batch_size": 5}),
        ("POST", f"{path}/items", [{"a": 1}]),
        ("POST", f"{path}/pause", None),
        ("GET", f"{path}/jobs", None),
        ("DELETE", path, None),
    ]:
        response = await client.request(method, url, headers=bob, json=body)
        assert response.status_code == 404, (method, url)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert (await client.get(STREAMS, headers=bob)).json()["items"] == []
    assert [s["id"] for s in (await client.get(STREAMS, headers=ada)).json()["items"]] == [stream["id"]]
    assert (await client.get(path, headers=admin_headers)).json()["owner_id"] == stream["owner_id"]
    assert (await client.get(path)).status_code == 401
    assert (await client.delete(path, headers=admin_headers)).status_code == 204


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job_type": "no.such"}, "job_type"),
        ({"job_type": "system.noop", "batch_size": 0}, "batch_size"),
        ({"job_type": "system.noop", "max_wait": -1}, "max_wait"),
        ({"job_type": "system.noop", "mode": "sometimes"}, "mode"),
        ({"job_type": "system.noop", "source": "ftp://host/queue"}, "source"),
        ({"job_type": "system.noop", "source": "sqs://bad queue!"}, "source"),
        ({"job_type": "system.noop", "source": "amqp://host:5672/"}, "source"),
        # A user without a password made pika raise a TypeError: a 500 (found by Schemathesis).
        ({"job_type": "system.noop", "source": "amqp://reader@host:5672/?queue=q"}, "source"),
        ({"job_type": "system.noop", "item_param": "echo", "params": {"echo": 1}}, "params"),
        ({"job_type": "system.noop", "item_param": "not a name"}, "item_param"),
        ({"job_type": "system.noop", "colour": "red"}, "colour"),
    ],
)
async def test_invalid_settings_are_problems_naming_the_field(
    client: Client, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post(STREAMS, headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("settings", ["memory"], indirect=True)
async def test_invalid_pushes_and_changes_are_refused(client: Client, admin_headers: dict[str, str]) -> None:
    stream = await _create(client, admin_headers)
    items = f"{STREAMS}/{stream['id']}/items"
    assert (await client.post(items, headers=admin_headers, json=[1, 2])).status_code == 422
    assert (await client.post(items, headers=admin_headers, json=[])).status_code == 422
    assert (await client.post(items, headers=admin_headers, json={"a": 1})).status_code in (400, 422)
    assert (await client.post(items, headers=admin_headers, json=[{"key": 5}])).status_code == 422
    bad = await client.patch(f"{STREAMS}/{stream['id']}", headers=admin_headers, json={"batch_size": 5000})
    assert bad.status_code == 422
    sqs = await _create(client, admin_headers, source="sqs://uploads?region=us-east-1")
    assert sqs["source"] == "sqs://uploads?region=us-east-1"
    amqp = await _create(client, admin_headers, source="amqp://reader:s3cret@rabbit:5672/%2F?queue=q")
    assert amqp["source"] == "amqp://reader:***@rabbit:5672/%2F?queue=q"  # never the password
    refused = await client.post(f"{STREAMS}/{sqs['id']}/items", headers=admin_headers, json=[{"a": 1}])
    assert refused.status_code == 409
    assert (await client.get(f"{STREAMS}/not-an-id", headers=admin_headers)).status_code == 404
