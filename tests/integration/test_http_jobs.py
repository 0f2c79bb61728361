"""The job API end to end in one process: HTTP → SQL → broker → worker threads → outcome."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return memory_settings(tmp_path, heartbeat_interval=0.1, sweep_interval=0.2, worker_threads=2)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


async def _wait(client: Client, headers: dict[str, str], job_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(300):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def test_noop_job_runs_to_completion(client: Client, admin_headers: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/jobs", headers=admin_headers, json={"type": "system.noop", "params": {"echo": {"n": 1}}}
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    job = await _wait(client, admin_headers, response.json()["id"], "completed")
    assert job["result"] == {"echo": {"n": 1}}
    assert job["attempt"] == 1 and job["progress"] == 1.0
    status = (await client.get(f"/api/v1/jobs/{job['id']}/status", headers=admin_headers)).json()
    assert status["status"] == "completed" and status["error"] is None
    events = (await client.get(f"/api/v1/jobs/{job['id']}/events", headers=admin_headers)).json()["items"]
    assert [e["to_status"] for e in events][:4] == ["submitted", "queued", "running", "completed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "no.such.type"}, "type"),
        ({"type": "system.noop", "params": {"unexpected": 1}}, "params.unexpected"),
        ({"type": "data.profile", "params": {}}, "params.file"),
        ({"type": "data.profile", "params": {"file": 3}}, "params.file"),
        ({"type": "system.noop", "max_attempts": 0}, "max_attempts"),
        ({"type": "system.noop", "params": {"echo": "x" * 300_000}}, "params"),
    ],
)
async def test_bad_submissions_are_422_naming_the_field(
    client: Client, admin_headers: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await client.post("/api/v1/jobs", headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert (await client.get("/api/v1/jobs", headers=admin_headers)).json()["items"] == []


async def test_jobs_are_owner_scoped(client: Client, admin_headers: dict[str, str]) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    job = (await client.post("/api/v1/jobs", headers=ada, json={"type": "system.noop"})).json()
    assert (await client.get(f"/api/v1/jobs/{job['id']}", headers=bob)).status_code == 404
    assert (await client.delete(f"/api/v1/jobs/{job['id']}", headers=bob)).status_code == 404
    assert (await client.get("/api/v1/jobs", headers=bob)).json()["items"] == []
    assert (await client.get(f"/api/v1/jobs?owner={job['owner_id']}", headers=bob)).json()["items"] == []
    admin_view = (await client.get(f"/api/v1/jobs?owner={job['owner_id']}", headers=admin_headers)).json()
    assert [j["id"] for j in admin_view["items"]] == [job["id"]]


async def test_list_filters_and_pages(client: Client, admin_headers: dict[str, str]) -> None:
    ids = [
        (await client.post("/api/v1/jobs", headers=admin_headers, json={"type": "system.noop"})).json()["id"]
        for _ in range(5)
    ]
    for job_id in ids:
        await _wait(client, admin_headers, job_id, "completed")
    first = (await client.get("/api/v1/jobs?limit=2", headers=admin_headers)).json()
    second = (
        await client.get(f"/api/v1/jobs?limit=10&cursor={first['next_cursor']}", headers=admin_headers)
    ).json()
    assert [j["id"] for j in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None
    filtered = (
        await client.get("/api/v1/jobs?status=completed&type=system.noop", headers=admin_headers)
    ).json()
    assert len(filtered["items"]) == 5
    assert (await client.get("/api/v1/jobs?status=bogus", headers=admin_headers)).status_code == 422


async def test_text_search_finds_jobs_by_params_and_respects_owners(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = await _user(client, admin_headers, "ada")
    job = (
        await client.post(
            "/api/v1/jobs",
            headers=ada,
            json={"type": "system.noop", "params": {"echo": "quarterly revenue forecast"}},
        )
    ).json()
    await client.post("/api/v1/jobs", headers=ada, json={"type": "system.noop", "params": {"echo": "other"}})
    await _wait(client, ada, job["id"], "completed")
    for _ in range(100):
        found = (await client.get("/api/v1/jobs?q=revenue%20forecast", headers=ada)).json()["items"]
        if found and found[0]["status"] == "completed":
            break
        await asyncio.sleep(0.05)
    assert [j["id"] for j in found] == [job["id"]]
    assert (
        await client.get("/api/v1/jobs?q=revenue", headers=await _user(client, admin_headers, "bob"))
    ).json()["items"] == []
    assert (await client.get("/api/v1/jobs?q=revenue&status=failed", headers=ada)).json()["items"] == []


async def test_job_types_list_their_schemas(client: Client, admin_headers: dict[str, str]) -> None:
    types = {
        t["name"]: t for t in (await client.get("/api/v1/job-types", headers=admin_headers)).json()["items"]
    }
    assert {"system.noop", "data.profile"} <= set(types)
    assert "file" in json.dumps(types["data.profile"]["params_schema"])


async def test_data_profile_on_an_uploaded_csv(client: Client, admin_headers: dict[str, str]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["city", "temp", "rain"])
    for i in range(1000):
        writer.writerow([["Oslo", "Lima", "Pune"][i % 3], 10 + i % 7, "" if i % 10 == 0 else i * 0.5])
    upload = await client.post(
        "/api/v1/files?name=weather.csv",
        headers={**admin_headers, "Content-Type": "text/csv"},
        content=buffer.getvalue().encode(),
    )
    assert upload.status_code == 201, upload.text
    response = await client.post(
        "/api/v1/jobs",
        headers=admin_headers,
        json={"type": "data.profile", "params": {"file": upload.json()["id"]}},
    )
    job = await _wait(client, admin_headers, response.json()["id"], "completed", "failed")
    assert job["status"] == "completed", job["error"]
    assert job["result"]["rows"] == 1000 and job["result"]["columns"] == 3
    outputs = (await client.get(f"/api/v1/jobs/{job['id']}/outputs", headers=admin_headers)).json()["items"]
    assert [o["name"] for o in outputs] == ["profile.json"]
    download = await client.get(f"/api/v1/jobs/{job['id']}/outputs/profile.json", headers=admin_headers)
    profile = download.json()
    columns = {c["name"]: c for c in profile["columns"]}
    assert columns["city"]["distinct"] == 3
    assert columns["rain"]["nulls"] == 100
    assert columns["temp"]["min"] == 10 and columns["temp"]["max"] == 16
    missing = await client.get(f"/api/v1/jobs/{job['id']}/outputs/nope.json", headers=admin_headers)
    assert missing.status_code == 404


async def test_profile_of_someone_elses_file_fails_cleanly(
    client: Client, admin_headers: dict[str, str]
) -> None:
    upload = await client.post("/api/v1/files?name=a.csv", headers=admin_headers, content=b"a,b\n1,2\n")
    ada = await _user(client, admin_headers, "ada")
    response = await client.post(
        "/api/v1/jobs", headers=ada, json={"type": "data.profile", "params": {"file": upload.json()["id"]}}
    )
    job = await _wait(client, ada, response.json()["id"], "completed", "failed")
    assert job["status"] == "failed"
    assert "not found" in job["error"]["message"]


async def test_cancel_a_queued_job_then_409(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path)
    async with AsyncTestClient(app=create_app(settings, run_workers=False, background=False)) as client:
        headers = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        job = (await client.post("/api/v1/jobs", headers=headers, json={"type": "system.noop"})).json()
        cancelled = await client.delete(f"/api/v1/jobs/{job['id']}", headers=headers)
        assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
        again = await client.delete(f"/api/v1/jobs/{job['id']}", headers=headers)
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")


async def test_malformed_csv_fails_naming_the_row(client: Client, admin_headers: dict[str, str]) -> None:
    upload = await client.post(
        "/api/v1/files?name=bad.csv", headers=admin_headers, content=b"a,b\n1,2\n3,4,5\n6,7\n"
    )
    response = await client.post(
        "/api/v1/jobs",
        headers=admin_headers,
        json={"type": "data.profile", "params": {"file": upload.json()["id"]}},
    )
    job = await _wait(client, admin_headers, response.json()["id"], "completed", "failed")
    assert job["status"] == "failed"
    assert job["error"]["code"] == "invalid_input"
    assert "Row #3" in job["error"]["message"]
    assert "traceback" not in job["error"]["details"]  # it stays in the server log
    assert job["attempt"] == 1  # bad input is not worth a retry


async def test_a_garbage_parquet_file_is_refused_as_not_parquet_by_its_uploaded_name(
    client: Client, admin_headers: dict[str, str]
) -> None:
    upload = await client.post(
        "/api/v1/files?name=export.parquet", headers=admin_headers, content=b"\x00\x01junk\xff\n" * 500
    )
    response = await client.post(
        "/api/v1/jobs",
        headers=admin_headers,
        json={"type": "data.profile", "params": {"file": upload.json()["id"]}},
    )
    job = await _wait(client, admin_headers, response.json()["id"], "completed", "failed")
    assert (job["status"], job["error"]["code"]) == ("failed", "invalid_input")
    assert job["error"]["message"].startswith("export.parquet is not a Parquet file")
    assert "junk" not in job["error"]["message"]


async def test_credentials_in_a_jobs_urls_never_read_back(
    client: Client, admin_headers: dict[str, str]
) -> None:
    echo = {"source": "postgresql://etl:pg-secret@db.internal/sales?sslmode=require"}
    response = await client.post(
        "/api/v1/jobs", headers=admin_headers, json={"type": "system.noop", "params": {"echo": echo}}
    )
    job = await _wait(client, admin_headers, response.json()["id"], "completed")
    listed = await client.get("/api/v1/jobs", headers=admin_headers, params={"q": "sales"})
    for text in (response.text, str(job), listed.text):
        assert "pg-secret" not in text
    assert job["result"]["echo"]["source"] == "postgresql://etl:***@db.internal/sales?sslmode=require"


async def test_five_hundred_noop_jobs_through_http_all_complete(
    client: Client, admin_headers: dict[str, str]
) -> None:
    async def submit(i: int) -> str:
        response = await client.post(
            "/api/v1/jobs", headers=admin_headers, json={"type": "system.noop", "params": {"echo": i}}
        )
        assert response.status_code == 201
        job_id: str = response.json()["id"]
        return job_id

    ids = await asyncio.gather(*(submit(i) for i in range(500)))
    for _ in range(600):
        counts = (await client.get("/status", headers=admin_headers)).json()["jobs"]
        if counts["completed"] == 500:
            break
        await asyncio.sleep(0.05)
    assert counts == {
        "submitted": 0,
        "queued": 0,
        "running": 0,
        "completed": 500,
        "failed": 0,
        "cancelled": 0,
    }
    sample = (await client.get(f"/api/v1/jobs/{ids[123]}", headers=admin_headers)).json()
    assert sample["result"] == {"echo": 123}


async def test_status_changes_are_published_as_events(client: Client, admin_headers: dict[str, str]) -> None:
    bus: Any = client.app.state.container.backends["events"]
    seen: list[tuple[str, str]] = []
    bus.subscribe(lambda event: seen.append((event.topic, event.subject_id)), prefix="job.")
    job = (await client.post("/api/v1/jobs", headers=admin_headers, json={"type": "system.noop"})).json()
    await _wait(client, admin_headers, job["id"], "completed")
    for _ in range(100):
        if ("job.completed", job["id"]) in seen:
            break
        await asyncio.sleep(0.05)
    mine = [topic for topic, subject in seen if subject == job["id"]]
    assert mine[:2] == ["job.submitted", "job.queued"] and mine[-1] == "job.completed"
    assert "job.running" in mine
