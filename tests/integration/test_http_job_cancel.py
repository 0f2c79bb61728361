"""Cancelling a long built-in job through HTTP: it ends ``cancelled`` with no result, at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api.app import create_app
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    # The default heartbeat (5 s): a cancel must not wait for it.
    settings = memory_settings(tmp_path, worker_threads=2)
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


def _big_csv(rows: int) -> bytes:
    """About 25 bytes a row, a few seconds of profiling for a couple of million rows."""
    lines = [b"id,name,score\n"]
    lines.extend(b"%d,name%d,%d.%03d\n" % (i, i % 7919, i % 977, i % 1000) for i in range(rows))
    return b"".join(lines)


async def _poll(client: Client, headers: dict[str, str], job_id: str, *statuses: str) -> dict[str, Any]:
    for _ in range(1500):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in statuses:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def test_a_running_profile_cancelled_ends_cancelled_without_a_result(
    client: Client, admin_headers: dict[str, str]
) -> None:
    upload = await client.post(
        "/api/v1/files?name=big.csv",
        headers={**admin_headers, "Content-Type": "text/csv"},
        content=_big_csv(2_500_000),
    )
    assert upload.status_code == 201, upload.text
    submitted = await client.post(
        "/api/v1/jobs",
        headers=admin_headers,
        json={"type": "data.profile", "params": {"file": upload.json()["id"]}},
    )
    job_id = submitted.json()["id"]
    await _poll(client, admin_headers, job_id, "running")
    cancel = await client.delete(f"/api/v1/jobs/{job_id}", headers=admin_headers)
    assert cancel.status_code == 202, cancel.text  # running: asked to stop
    job = await _poll(client, admin_headers, job_id, "completed", "failed", "cancelled")
    assert (job["status"], job["result"], job["error"]) == ("cancelled", None, None)
    outputs = (await client.get(f"/api/v1/jobs/{job_id}/outputs", headers=admin_headers)).json()
    assert outputs["items"] == []
    reasons = [
        e["reason"]
        for e in (await client.get(f"/api/v1/jobs/{job_id}/events", headers=admin_headers)).json()["items"]
    ]
    assert reasons[-2:] == ["cancel_requested", "cancelled"]
