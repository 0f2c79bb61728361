"""Deleting a user over HTTP: their unfinished jobs are cancelled and their streams stop, or an
admin gives everything they own to another user (``?transfer_to=``); memory, SQLite, PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings
from tests.integration.test_http_streams import eventually

Client = AsyncTestClient[Litestar]
JOBS, STREAMS, USERS = "/api/v1/jobs", "/api/v1/streams", "/api/v1/users"
# One worker thread: a second sleep job stays queued behind the first.
FAST = {"heartbeat_interval": 0.05, "sweep_interval": 0.1, "worker_threads": 1, "shutdown_timeout": 2.0}


@pytest.fixture(params=["memory", "sqlite"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


async def _user(client: Client, admin: dict[str, str], name: str) -> tuple[str, dict[str, str]]:
    created = (await client.post(USERS, headers=admin, json={"username": name})).json()
    return created["user"]["id"], {"Authorization": f"Bearer {created['token']['token']}"}


async def _job(client: Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    response = await client.get(f"{JOBS}/{job_id}", headers=headers)
    assert response.status_code == 200, response.text
    job: dict[str, Any] = response.json()
    return job


async def _submit(client: Client, headers: dict[str, str], type_: str, **params: Any) -> str:
    response = await client.post(JOBS, headers=headers, json={"type": type_, "params": params})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def _until(client: Client, headers: dict[str, str], job_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        job = await _job(client, headers, job_id)
        return job if job["status"] == status else None

    found: dict[str, Any] = await eventually(reached)
    return found


async def _stream(client: Client, headers: dict[str, str], stream_id: str) -> dict[str, Any]:
    response = await client.get(f"{STREAMS}/{stream_id}", headers=headers)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _ada_at_work(client: Client, admin: dict[str, str]) -> dict[str, Any]:
    """A user with a finished job, a file, a running and a queued sleep, and an http stream whose
    items wait for a batch (it forms batches of 100, or after an hour)."""
    ada_id, ada = await _user(client, admin, "ada")
    done = await _submit(client, ada, "system.noop", echo="kept")
    await _until(client, ada, done, "completed")
    file_id = (await client.post("/api/v1/files?name=a.csv", headers=ada, content=b"a\n1\n")).json()["id"]
    running = await _submit(client, ada, "system.sleep", seconds=120)
    await _until(client, ada, running, "running")
    queued = await _submit(client, ada, "system.sleep", seconds=120)
    created = await client.post(
        STREAMS,
        headers=ada,
        json={"job_type": "system.noop", "item_param": "echo", "batch_size": 100, "max_wait": 3600},
    )
    stream_id = created.json()["id"]
    pushed = await client.post(f"{STREAMS}/{stream_id}/items", headers=ada, json=[{"n": 1}, {"n": 2}])
    assert pushed.status_code == 202, pushed.text
    return {
        "id": ada_id,
        "headers": ada,
        "done": done,
        "file": file_id,
        "running": running,
        "queued": queued,
        "stream": stream_id,
    }


@pytest.mark.parametrize("settings", ["memory", "sqlite", "postgresql"], indirect=True)
async def test_deleting_a_user_cancels_their_jobs_and_stops_their_streams(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _ada_at_work(client, admin_headers)
    deleted = await client.delete(f"{USERS}/{ada['id']}", headers=admin_headers)
    assert deleted.status_code == 204, deleted.text
    assert (await client.get("/api/v1/auth/me", headers=ada["headers"])).status_code == 401

    assert (await _job(client, admin_headers, ada["queued"]))["status"] == "cancelled"  # at once
    await _until(client, admin_headers, ada["running"], "cancelled")  # at its next heartbeat
    events = (await client.get(f"{JOBS}/{ada['queued']}/events", headers=admin_headers)).json()
    assert "owner_deleted" in [
        event["reason"] for event in events["items"] if event["to_status"] == "cancelled"
    ]
    # What was finished stays, for admins: the job with its result, and the file.
    assert (await _job(client, admin_headers, ada["done"]))["result"] == {"echo": "kept"}
    assert (
        await client.get(f"/api/v1/files/{ada['file']}/content", headers=admin_headers)
    ).content == b"a\n1\n"

    stream = await _stream(client, admin_headers, ada["stream"])
    assert stream["paused"] is True
    assert stream["counters"]["pending"] == 2  # kept, for admins to see (or delete)

    # Even resumed and due at once, a stream whose owner is gone submits nothing: the runner
    # pauses it again instead.
    path = f"{STREAMS}/{ada['stream']}"
    changed = await client.patch(path, headers=admin_headers, json={"max_wait": 0})
    assert changed.status_code == 200, changed.text
    assert (await client.post(f"{path}/resume", headers=admin_headers)).status_code == 200

    async def paused_again() -> dict[str, Any] | None:
        found = await _stream(client, admin_headers, ada["stream"])
        return found if found["paused"] and found["counters"]["batched"] == 2 else None

    counters = (await eventually(paused_again))["counters"]
    assert counters["jobs_submitted"] == 0
    (batch,) = (await client.get(f"{path}/jobs", headers=admin_headers)).json()["items"]
    assert (await client.get(f"{JOBS}/{batch['job_id']}", headers=admin_headers)).status_code == 404
    every_job = (await client.get(JOBS, headers=admin_headers, params={"owner": ada["id"]})).json()["items"]
    assert {job["id"] for job in every_job} == {ada["done"], ada["running"], ada["queued"]}


@pytest.mark.parametrize("settings", ["memory", "sqlite", "postgresql"], indirect=True)
async def test_deleting_a_user_with_transfer_to_gives_everything_to_that_user(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _ada_at_work(client, admin_headers)
    bob_id, bob = await _user(client, admin_headers, "bob")
    deleted = await client.delete(
        f"{USERS}/{ada['id']}", headers=admin_headers, params={"transfer_to": bob_id}
    )
    assert deleted.status_code == 204, deleted.text

    mine = (await client.get(JOBS, headers=bob)).json()["items"]
    assert {job["id"] for job in mine} == {ada["done"], ada["running"], ada["queued"]}
    assert {job["owner_id"] for job in mine} == {bob_id}
    assert (await _job(client, bob, ada["running"]))["status"] == "running"  # runs on, now bob's
    assert (await client.delete(f"{JOBS}/{ada['running']}", headers=bob)).status_code == 202
    events = (await client.get(f"{JOBS}/{ada['done']}/events", headers=bob)).json()["items"]
    admin_id = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["id"]
    changes = [(e["actor"], e["details"]) for e in events if e["reason"] == "owner_changed"]
    assert changes == [(admin_id, {"from_owner": ada["id"], "to_owner": bob_id})]
    file = await client.get(f"/api/v1/files/{ada['file']}", headers=bob)
    assert file.status_code == 200, file.text  # someone else's would be a 404
    asset = await client.get(f"/api/v1/assets/{ada['file']}", headers=bob)  # the file's asset moved too
    assert (asset.status_code, asset.json()["owner_id"]) == (200, bob_id), asset.text

    stream = await _stream(client, bob, ada["stream"])
    assert (stream["owner_id"], stream["paused"]) == (bob_id, False)
    path = f"{STREAMS}/{ada['stream']}"
    assert (await client.patch(path, headers=bob, json={"max_wait": 0})).status_code == 200

    async def submitted() -> list[dict[str, Any]] | None:
        batches: list[dict[str, Any]] = (await client.get(f"{path}/jobs", headers=bob)).json()["items"]
        # A submitted batch shows its job's status (queued, running, then an outcome).
        return batches if batches and batches[0]["status"] not in ("submitting", "failed") else None

    (batch,) = await eventually(submitted)
    assert (await _job(client, bob, batch["job_id"]))["owner_id"] == bob_id


async def test_only_admins_delete_users_and_a_bad_transfer_to_deletes_nothing(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada_id, ada = await _user(client, admin_headers, "ada")
    _, bob = await _user(client, admin_headers, "bob")
    queued = await _submit(client, ada, "system.sleep", seconds=120)
    for headers, params, status, field in [
        (bob, {}, 403, None),
        (ada, {}, 403, None),
        (admin_headers, {"transfer_to": "01NOSUCHUSER0000000000000"}, 422, "transfer_to"),
        (admin_headers, {"transfer_to": ada_id}, 422, "transfer_to"),
    ]:
        response = await client.delete(f"{USERS}/{ada_id}", headers=headers, params=params)
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if field:
            assert [error["field"] for error in response.json()["errors"]] == [field]
    assert (await client.get("/api/v1/auth/me", headers=ada)).status_code == 200
    assert (await _job(client, ada, queued))["status"] in {"queued", "running"}  # untouched
