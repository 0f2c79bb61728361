"""Table statistics after a PATCH, through the whole app with its job workers (memory://, SQLite,
PostgreSQL): a variable-type change makes a version whose statistics a ``tables.stats`` job
recomputes (``pending``, then ``done`` with the new variable type) under the table's own prefix;
a display-name change shares the previous statistics and submits nothing; a submit that fails
leaves the statistics ``error``, not ``pending`` forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.auth.domain import Principal
from studio9.auth.ports import owner_principal
from studio9.bootstrap import Container
from studio9.config import Settings
from studio9.errors import BackendUnavailable
from studio9.jobs.domain import Job
from studio9.tables.content import read_blob
from studio9.tables.service import ColumnChange, TableService
from studio9.tables.stats_job import STATS_JOB
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
TABLES = "/api/v1/tables"
FAST: dict[str, Any] = {"heartbeat_interval": 0.1, "sweep_interval": 0.2, "worker_threads": 2}
ROWS = 23
SALES = (
    "city,amount,day\n"
    + "".join(f"{'Oslo' if i % 3 else 'Rome'},{i},2024-01-{i % 28 + 1:02d}\n" for i in range(ROWS))
).encode()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


@pytest.fixture
def container(client: Client) -> Container:
    built: Container = client.app.state.container
    return built


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> tuple[dict[str, str], str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": "ada"})
    assert created.status_code == 201, created.text
    body = created.json()
    return {"Authorization": f"Bearer {body['token']['token']}"}, body["user"]["id"]


async def _wait(client: Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(1000):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def _stats_done(
    client: Client, headers: dict[str, str], table_id: str, **params: Any
) -> dict[str, Any]:
    for _ in range(500):
        response = await client.get(f"{TABLES}/{table_id}/stats", headers=headers, params=params)
        stats: dict[str, Any] = response.json()
        if stats["status"] != "pending":
            return stats
        await asyncio.sleep(0.02)
    raise AssertionError("stats stayed pending")


async def _imported(client: Client, headers: dict[str, str]) -> str:
    """Table ``sales`` imported from SALES, its statistics done; returns its id."""
    uploaded = await client.post("/api/v1/files?name=sales.csv", headers=headers, content=SALES)
    assert uploaded.status_code == 201, uploaded.text
    created = await client.post(
        TABLES, headers=headers, json={"name": "sales", "file": uploaded.json()["id"]}
    )
    assert created.status_code == 202, created.text
    assert (await _wait(client, headers, created.json()["job"]["id"]))["status"] == "completed"
    table_id: str = created.json()["table"]["id"]
    assert (await _stats_done(client, headers, table_id))["status"] == "done"
    return table_id


async def _content(client: Client, headers: dict[str, str], table_id: str, version: int) -> dict[str, Any]:
    response = await client.get(f"/api/v1/assets/{table_id}/versions", headers=headers)
    by_number = {v["version"]: v["content"] for v in response.json()["items"]}
    content: dict[str, Any] = by_number[version]
    return content


async def _stats_jobs(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    listed = await client.get("/api/v1/jobs", headers=headers, params={"type": STATS_JOB})
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


def _amount(columns: list[dict[str, Any]]) -> dict[str, Any]:
    return next(c for c in columns if c["name"] == "amount")


async def test_a_variable_type_change_recomputes_the_statistics_in_a_job(
    client: Client, container: Container, ada: tuple[dict[str, str], str]
) -> None:
    headers = ada[0]
    table_id = await _imported(client, headers)
    patched = await client.patch(
        f"{TABLES}/{table_id}",
        headers=headers,
        json={"columns": [{"name": "amount", "variable_type": "categorical"}]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2
    assert patched.json()["stats"] in ("pending", "done")  # the job may be quick

    [job] = await _stats_jobs(client, headers)
    assert job["params"] == {"table": table_id, "version": 2}
    first, second = await _content(client, headers, table_id, 1), await _content(client, headers, table_id, 2)
    assert second["parts"] == first["parts"]
    assert second["stats"] == f"tables/{table_id}/{job['id']}/stats.json" != first["stats"]
    done = await _wait(client, headers, job["id"])
    assert done["status"] == "completed", done
    assert done["result"] == {"table": table_id, "version": 2, "stats": "done"}

    stats = await _stats_done(client, headers, table_id)
    assert stats["status"] == "done" and stats["rows"] == ROWS
    assert _amount(stats["columns"])["variable_type"] == "categorical"
    # The stored figures themselves record the new variable type (not only the route's view).
    stored = msgspec.json.decode(await read_blob(container.files.blobs, second["stats"]))
    assert _amount(stored["columns"])["variable_type"] == "categorical"
    old = await _stats_done(client, headers, table_id, version=1)
    assert _amount(old["columns"])["variable_type"] == "continuous"
    assert (await client.get(f"{TABLES}/{table_id}", headers=headers)).json()["stats"] == "done"


async def test_a_display_name_change_shares_the_statistics_and_submits_nothing(
    client: Client, ada: tuple[dict[str, str], str]
) -> None:
    headers = ada[0]
    table_id = await _imported(client, headers)
    patched = await client.patch(
        f"{TABLES}/{table_id}",
        headers=headers,
        # Setting the variable type it already has is no change either.
        json={"columns": [{"name": "amount", "display_name": "Amount", "variable_type": "continuous"}]},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["version"], patched.json()["stats"]) == (2, "done")
    assert await _stats_jobs(client, headers) == []
    first, second = await _content(client, headers, table_id, 1), await _content(client, headers, table_id, 2)
    assert second["stats"] == first["stats"]
    assert _amount((await _stats_done(client, headers, table_id))["columns"])["display_name"] == "Amount"


class _Held:
    """A ``JobSubmitter`` that keeps the jobs it is given, to submit them later (or never)."""

    def __init__(self, fail: bool = False) -> None:
        self.held: list[tuple[Principal, str, Mapping[str, Any], str | None]] = []
        self.fail = fail

    async def submit(
        self, actor: Principal, type_name: str, params: Mapping[str, Any], *, job_id: str | None = None
    ) -> Job:
        if self.fail:
            raise BackendUnavailable("the broker is down")
        self.held.append((actor, type_name, params, job_id))
        return None  # type: ignore[return-value]  # the caller does not use it


def _service(container: Container, jobs: _Held) -> TableService:
    tables = container.tables
    return TableService(tables.assets, tables.blobs, tables.files, jobs, resolver=tables.resolver)


async def test_the_new_statistics_are_pending_until_the_job_writes_them(
    client: Client, container: Container, ada: tuple[dict[str, str], str]
) -> None:
    headers, user_id = ada
    table_id = await _imported(client, headers)
    actor = await owner_principal(container.auth.users, user_id, "test")
    held = _Held()
    view = await _service(container, held).update(
        actor,
        table_id,
        columns=[
            ColumnChange(name="city", variable_type="categorical"),
            ColumnChange(name="day", variable_type="categorical"),
        ],
    )
    assert (view.version and view.version.version, view.stats) == (2, "pending")
    [(_, type_name, params, job_id)] = held.held
    assert (type_name, dict(params)) == (STATS_JOB, {"table": table_id, "version": 2})
    assert (await client.get(f"{TABLES}/{table_id}/stats", headers=headers)).json()["status"] == "pending"

    job = await container.jobs.submit(actor, type_name, params, job_id=job_id)
    assert (await _wait(client, headers, job.id))["status"] == "completed"
    stats = await _stats_done(client, headers, table_id)
    assert stats["status"] == "done"
    assert {c["name"]: c["variable_type"] for c in stats["columns"]} == {
        "city": "categorical",
        "amount": "continuous",
        "day": "categorical",
    }


async def test_a_stats_job_that_cannot_be_submitted_leaves_the_statistics_error(
    client: Client, container: Container, ada: tuple[dict[str, str], str]
) -> None:
    headers, user_id = ada
    table_id = await _imported(client, headers)
    actor = await owner_principal(container.auth.users, user_id, "test")
    view = await _service(container, _Held(fail=True)).update(
        actor, table_id, columns=[ColumnChange(name="amount", variable_type="categorical")]
    )
    # The change stands; only its statistics are missing, and say why.
    assert view.version is not None and view.version.version == 2
    assert (view.stats, view.stats_error) == ("error", "the statistics job could not be submitted")
    got = (await client.get(f"{TABLES}/{table_id}/stats", headers=headers)).json()
    assert got["status"] == "error" and "could not be submitted" in got["error"]
