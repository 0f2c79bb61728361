"""Tables over HTTP, through the whole app with its job workers (memory://, SQLite, PostgreSQL):
import a file (``tables.import``), read schema, rows, values, statistics and exports; bad input
fails the job naming the cause and leaves nothing readable; skip mode, lineage, copy, PATCH; and
another user meets a 404 on every table route of someone else's."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
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


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "bob")


async def _upload(client: Client, headers: dict[str, str], content: bytes, name: str = "sales.csv") -> str:
    response = await client.post(f"/api/v1/files?name={name}", headers=headers, content=content)
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def _wait(client: Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(1000):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def _import(
    client: Client,
    headers: dict[str, str],
    content: bytes,
    name: str = "sales",
    file_name: str = "sales.csv",
    **options: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Upload ``content``, import it as table ``name``; returns (table as created, finished job)."""
    file_id = await _upload(client, headers, content, file_name)
    response = await client.post(TABLES, headers=headers, json={"name": name, "file": file_id, **options})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["table"]["status"] == "saving" and created["table"]["version"] is None
    assert created["job"]["type"] == "tables.import"
    return created["table"], await _wait(client, headers, created["job"]["id"])


async def _stats_done(client: Client, headers: dict[str, str], table_id: str) -> dict[str, Any]:
    for _ in range(500):
        stats: dict[str, Any] = (await client.get(f"{TABLES}/{table_id}/stats", headers=headers)).json()
        if stats["status"] != "pending":
            return stats
        await asyncio.sleep(0.02)
    raise AssertionError("stats stayed pending")


async def test_import_a_csv_and_read_it_every_way(client: Client, ada: dict[str, str]) -> None:
    table, job = await _import(client, ada, SALES)
    assert job["status"] == "completed", job
    assert job["result"]["rows"] == ROWS
    got = (await client.get(f"{TABLES}/{table['id']}", headers=ada)).json()
    assert (got["status"], got["version"], got["row_count"]) == ("active", 1, ROWS)
    assert [(c["name"], c["type"]) for c in got["columns"]] == [
        ("city", "string"),
        ("amount", "integer"),
        ("day", "date"),
    ]
    assert got["stats"] in ("pending", "done")
    # Every row exactly once, five at a time.
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 5}
    while True:
        page = (await client.get(f"{TABLES}/{table['id']}/rows", headers=ada, params=params)).json()
        assert len(page["rows"]) <= 5
        seen += [row["amount"] for row in page["rows"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == list(range(ROWS))
    ordered = await client.get(
        f"{TABLES}/{table['id']}/rows",
        headers=ada,
        params={"order": "amount:desc", "limit": 3, "columns": ["amount"], "filter": "\"city\" = 'Rome'"},
    )
    assert ordered.status_code == 200, ordered.text
    assert ordered.json()["rows"] == [{"amount": 21}, {"amount": 18}, {"amount": 15}]
    bad = await client.get(f"{TABLES}/{table['id']}/rows", headers=ada, params={"filter": "nope ="})
    assert bad.status_code == 422, bad.text
    values = (
        await client.get(f"{TABLES}/{table['id']}/values", headers=ada, params={"column": "city"})
    ).json()
    assert values["values"] == [{"value": "Oslo", "count": 15}, {"value": "Rome", "count": 8}]
    stats = await _stats_done(client, ada, table["id"])
    assert stats["status"] == "done" and stats["rows"] == ROWS
    assert [c["name"] for c in stats["columns"]] == ["city", "amount", "day"]
    csv = await client.get(f"{TABLES}/{table['id']}/export", headers=ada, params={"format": "csv"})
    assert csv.status_code == 200, csv.text
    assert "sales.csv" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[0] == '"city","amount","day"'
    assert len(csv.text.splitlines()) == ROWS + 1
    parquet = await client.get(f"{TABLES}/{table['id']}/export", headers=ada, params={"format": "parquet"})
    assert pq.read_table(io.BytesIO(parquet.content)).num_rows == ROWS
    listed = (await client.get(TABLES, headers=ada)).json()
    assert [t["id"] for t in listed["items"]] == [table["id"]]


@pytest.mark.parametrize(
    ("content", "file_name", "options", "cause"),
    [
        (b"a,b\n1,2\n3\n", "ragged.csv", {}, "row 2"),
        ("name\ncafé\n".encode("latin-1"), "latin.csv", {"encoding": "utf-8"}, "row 1"),
        (b"PAR1 this is not parquet PAR1", "garbage.parquet", {"format": "parquet"}, "garbage.parquet"),
        (b"", "empty.csv", {}, "empty.csv"),
    ],
)
async def test_bad_input_fails_the_job_and_leaves_nothing(
    client: Client, ada: dict[str, str], content: bytes, file_name: str, options: dict[str, Any], cause: str
) -> None:
    table, job = await _import(client, ada, content, file_name=file_name, **options)
    assert job["status"] == "failed", job
    assert job["error"]["code"] == "invalid_input", job["error"]
    assert cause in job["error"]["message"]
    got = (await client.get(f"{TABLES}/{table['id']}", headers=ada)).json()
    assert got["status"] == "error" and cause in got["error"]
    assert got["version"] is None
    for route in ("rows", "stats", "export"):
        response = await client.get(f"{TABLES}/{table['id']}/{route}", headers=ada)
        assert response.status_code == 409, response.text
    assert (await client.get(f"/api/v1/assets/{table['id']}/versions", headers=ada)).json()["items"] == []
    # Nothing of the failed import is left under the table's prefix.
    assert await client.app.state.container.files.blobs.delete_prefix(f"tables/{table['id']}/") == 0


async def test_a_bad_option_is_a_422_before_anything_is_made(client: Client, ada: dict[str, str]) -> None:
    file_id = await _upload(client, ada, SALES)
    for body, field in (
        ({"delimiter": ";;"}, "delimiter"),
        ({"encoding": "klingon"}, "encoding"),
        ({"columns": [{"name": "city", "type": "string", "variable_type": "continuous"}]}, "columns"),
    ):
        response = await client.post(TABLES, headers=ada, json={"name": "t", "file": file_id, **body})
        assert response.status_code == 422, response.text
        assert field in response.text
    assert (await client.get(TABLES, headers=ada)).json()["items"] == []
    await _import(client, ada, SALES, name="t")
    again = await client.post(TABLES, headers=ada, json={"name": "t", "file": file_id})
    assert again.status_code == 409, again.text


async def test_skip_mode_writes_rejected_rows(client: Client, ada: dict[str, str]) -> None:
    content = b"a,b\n1,2\n3\n4,5\n"
    table, job = await _import(client, ada, content, on_error="skip")
    assert job["status"] == "completed", job
    assert job["result"]["rejected"] == 1
    assert job["outputs"] == ["rejected.csv"]
    rejected = await client.get(f"/api/v1/jobs/{job['id']}/outputs/rejected.csv", headers=ada)
    assert "3" in rejected.text and "row" in rejected.text
    rows = (await client.get(f"{TABLES}/{table['id']}/rows", headers=ada)).json()["rows"]
    assert rows == [{"a": 1, "b": 2}, {"a": 4, "b": 5}]


async def test_a_hostile_column_name_round_trips_and_lineage_is_recorded(
    client: Client, ada: dict[str, str]
) -> None:
    name = '"; DROP TABLE users; --'
    content = f'id,"{name.replace(chr(34), chr(34) * 2)}"\n1,x\n2,y\n'.encode()
    table, job = await _import(client, ada, content)
    assert job["status"] == "completed", job
    got = (await client.get(f"{TABLES}/{table['id']}", headers=ada)).json()
    assert [c["name"] for c in got["columns"]] == ["id", name]
    rows = await client.get(
        f"{TABLES}/{table['id']}/rows", headers=ada, params={"columns": [name], "order": f"{name}:desc"}
    )
    assert rows.json()["rows"] == [{name: "y"}, {name: "x"}]
    file_id = job["params"]["file"]
    lineage = (await client.get(f"/api/v1/assets/{table['id']}/lineage", headers=ada)).json()
    assert [(e["input_id"], e["output_id"], e["output_version"], e["job_id"]) for e in lineage["edges"]] == [
        (file_id, table["id"], 1, job["id"])
    ]


async def test_copy_patch_and_delete(client: Client, ada: dict[str, str]) -> None:
    table, _ = await _import(client, ada, SALES)
    await _stats_done(client, ada, table["id"])
    patched = await client.patch(
        f"{TABLES}/{table['id']}",
        headers=ada,
        json={
            "name": "revenue",
            "description": "by city",
            "columns": [{"name": "amount", "display_name": "Amount (€)", "variable_type": "categorical"}],
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["name"], body["description"], body["version"]) == ("revenue", "by city", 2)
    amount = next(c for c in body["columns"] if c["name"] == "amount")
    assert (amount["display_name"], amount["variable_type"]) == ("Amount (€)", "categorical")
    stats = await _stats_done(client, ada, table["id"])
    assert next(c for c in stats["columns"] if c["name"] == "amount")["variable_type"] == "categorical"
    old = (await client.get(f"{TABLES}/{table['id']}", headers=ada, params={"version": 1})).json()
    assert next(c for c in old["columns"] if c["name"] == "amount")["variable_type"] == "continuous"
    refused = await client.patch(
        f"{TABLES}/{table['id']}",
        headers=ada,
        json={"columns": [{"name": "city", "variable_type": "continuous"}]},
    )
    assert refused.status_code == 422, refused.text

    copied = await client.post(f"{TABLES}/{table['id']}/copy", headers=ada, json={})
    assert copied.status_code == 201, copied.text
    copy = copied.json()
    assert (copy["name"], copy["row_count"], copy["version"]) == ("revenue (copy)", ROWS, 1)
    lineage = (await client.get(f"/api/v1/assets/{copy['id']}/lineage?direction=up", headers=ada)).json()
    assert (table["id"], 2) in {(e["input_id"], e["input_version"]) for e in lineage["edges"]}
    # Deleting the original (forced: the copy depends on it) leaves the copy whole.
    deleted = await client.delete(f"/api/v1/assets/{table['id']}?force=true", headers=ada)
    assert deleted.status_code == 204, deleted.text
    rows = await client.get(f"{TABLES}/{copy['id']}/rows", headers=ada, params={"limit": 1000})
    assert len(rows.json()["rows"]) == ROWS
    assert (await _stats_done(client, ada, copy["id"]))["status"] == "done"
    assert (await client.get(f"{TABLES}/{table['id']}", headers=ada)).status_code == 404


async def test_another_user_meets_404_on_every_table_route(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    base = f"{TABLES}/{table['id']}"
    for method, path, kwargs in (
        ("GET", base, {}),
        ("GET", f"{base}/rows", {}),
        ("GET", f"{base}/values", {"params": {"column": "city"}}),
        ("GET", f"{base}/stats", {}),
        ("GET", f"{base}/export", {}),
        ("PATCH", base, {"json": {"name": "mine"}}),
        ("POST", f"{base}/copy", {"json": {}}),
        ("DELETE", f"/api/v1/assets/{table['id']}", {}),
    ):
        response = await client.request(method, path, headers=bob, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get(TABLES, headers=bob)).json()["items"] == []
    # Nor may bob import ada's file.
    file_id = await _upload(client, ada, SALES)
    stolen = await client.post(TABLES, headers=bob, json={"name": "x", "file": file_id})
    assert stolen.status_code == 404, stolen.text
    assert (await client.get(base, headers=ada)).json()["status"] == "active"
