"""Read-only SQL over tables through the whole app (memory://, SQLite and PostgreSQL): previews
joining tables named ``"user/name"`` and by id, refusals of SQL that writes, attaches or reads a
file, the same 404 for an unknown table and another user's, the time limit, and a ``tables.sql``
derive that makes a new table whose lineage lists its inputs.

The tables queried are made here as an import would leave them (a Parquet part in the blob
store, an asset with one version of the tables content), through the container's services.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.auth.domain import Principal
from studio9.auth.ports import owner_principal
from studio9.bootstrap import Container
from studio9.catalog.domain import AssetKind, AssetStatus
from studio9.config import Settings
from studio9.tables.derive import submit_derive
from studio9.tables.queries.service import SqlService
from studio9.tables.resolving import TableNotReadable
from studio9.tables.sql import QueryLimitExceeded
from studio9.tables.sql_limits import SqlLimits
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
PREVIEW = "/api/v1/sql/preview"
FAST: dict[str, Any] = {"heartbeat_interval": 0.1, "sweep_interval": 0.2, "worker_threads": 2}


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


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> tuple[dict[str, str], str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    body = created.json()
    return {"Authorization": f"Bearer {body['token']['token']}"}, body["user"]["id"]


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> tuple[dict[str, str], str]:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: dict[str, str]) -> tuple[dict[str, str], str]:
    return await _user(client, admin_headers, "bob")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _table(container: Container, owner_id: str, name: str, rows: dict[str, list[Any]]) -> str:
    """A library table of ``rows``, as a finished import leaves it; returns its id."""
    data = pa.table(rows)
    buffer = io.BytesIO()
    pq.write_table(data, buffer, compression="zstd")
    asset = await container.catalog.create(
        owner_id=owner_id, kind=AssetKind.TABLE, name=name, content=None, in_library=True
    )
    key = f"tables/{asset.id}/setup/part-00000.parquet"
    size = await container.files.blobs.put(key, _once(buffer.getvalue()))
    content = {
        "format": "parquet",
        "schema": [
            {"name": f.name, "type": "string", "variable_type": "categorical", "display_name": None}
            for f in data.schema
        ],
        "row_count": data.num_rows,
        "bytes": size,
        "parts": [key],
        "source": {"file": "setup", "format": "parquet"},
    }
    await container.catalog.add_version(asset.id, content, expected_latest=0, status=AssetStatus.ACTIVE)
    return asset.id


@pytest.fixture
async def ada_tables(container: Container, ada: tuple[dict[str, str], str]) -> tuple[str, str]:
    """Ada's ``customers`` and ``orders``; returns their ids."""
    customers = await _table(container, ada[1], "customers", {"id": [1, 2, 3], "name": ["Ann", "Bo", "Cy"]})
    orders = await _table(
        container, ada[1], "orders", {"customer": [1, 1, 2, 3, 3, 3], "amount": [10, 20, 5, 7, 8, 9]}
    )
    return customers, orders


async def _preview(client: Client, headers: dict[str, str], sql: str, **extra: Any) -> Any:
    return await client.post(PREVIEW, headers=headers, json={"sql": sql, **extra})


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


JOIN = """
    SELECT c.name, sum(o.amount) AS total, count(*) AS n
    FROM "ada/customers" c JOIN "{orders}" o ON o.customer = c.id
    GROUP BY c.name ORDER BY total DESC
"""


async def test_a_preview_joins_tables_named_by_user_and_name_and_by_id(
    client: Client, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    _, orders = ada_tables
    response = await _preview(client, ada[0], JOIN.format(orders=orders))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == [
        {"name": "name", "type": "VARCHAR"},
        {"name": "total", "type": "HUGEINT"},
        {"name": "n", "type": "BIGINT"},
    ]
    assert body["rows"] == [["Ann", 30, 2], ["Cy", 24, 3], ["Bo", 5, 1]]
    assert body["truncated"] is False

    limited = await _preview(client, ada[0], JOIN.format(orders=orders), limit=2)
    assert limited.json()["rows"] == [["Ann", 30, 2], ["Cy", 24, 3]]
    assert limited.json()["truncated"] is True


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO \"ada/customers\" VALUES (4, 'Di')",
        "ATTACH 'other.db' AS other",
        "SELECT * FROM read_csv('/etc/passwd')",
        'SELECT * FROM "ada/customers"; SELECT 1',
        "SELECT nonsense FROM",
    ],
)
async def test_sql_that_writes_attaches_or_reads_files_is_refused(
    client: Client, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str], sql: str
) -> None:
    problem = _problem(await _preview(client, ada[0], sql), 422)
    assert [e["field"] for e in problem["errors"]] == ["sql"]
    assert "root:" not in problem["detail"]  # nothing of /etc/passwd


async def test_an_unknown_table_and_another_users_table_get_the_same_404(
    client: Client,
    container: Container,
    ada: tuple[dict[str, str], str],
    bob: tuple[dict[str, str], str],
    ada_tables: tuple[str, str],
) -> None:
    customers, _ = ada_tables
    answers = {}
    for name in ("ada/customers", customers, "ada/nothing", "nobody/customers", "01JNOTANID"):
        problem = _problem(await _preview(client, bob[0], f'SELECT * FROM "{name}"'), 404)
        answers[name] = problem["detail"]
        assert problem["detail"] == (
            f'no table named "{name}": name tables as "owner/name" or by id, in double quotes'
        )
    # Bob's own table of the same name does not make Ada's readable either.
    await _table(container, bob[1], "customers", {"id": [9]})
    mine = await _preview(client, bob[0], 'SELECT * FROM "bob/customers"')
    assert mine.json()["rows"] == [[9]]
    _problem(await _preview(client, bob[0], 'SELECT * FROM "bob/customers", "ada/customers"'), 404)


async def test_a_table_still_being_written_is_not_readable(
    client: Client, container: Container, ada: tuple[dict[str, str], str]
) -> None:
    await container.catalog.create(
        owner_id=ada[1], kind=AssetKind.TABLE, name="pending", content=None, in_library=True
    )
    problem = _problem(await _preview(client, ada[0], 'SELECT * FROM "ada/pending"'), 409)
    assert "still being written" in problem["detail"]


async def test_a_query_over_its_time_limit_is_refused(
    container: Container, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    hurried = SqlService(container.table_resolver, SqlLimits(preview_timeout_s=0.2))
    actor = await owner_principal(container.auth.users, ada[1], "test")
    slow = 'SELECT sum(hash(r.range + o.amount) % 7) FROM "ada/orders" o, range(10000000000) r'
    with pytest.raises(QueryLimitExceeded) as raised:
        await hurried.preview(actor, slow)
    assert raised.value.details["field"] == "sql"  # a 422 naming sql
    assert "longer than its limit of 0.2 s" in raised.value.message


async def _principal(container: Container, user_id: str) -> Principal:
    return await owner_principal(container.auth.users, user_id, "test")


async def _finished(client: Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(400):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_derive_makes_a_table_whose_lineage_lists_its_inputs(
    client: Client, container: Container, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    customers, orders = ada_tables
    created = await client.post(
        "/api/v1/tables",
        headers=ada[0],
        json={"name": "totals", "sql": JOIN.format(orders=orders), "description": "spend per customer"},
    )
    assert created.status_code == 202, created.text
    table_id, job_id = created.json()["table"]["id"], created.json()["job"]["id"]
    assert created.json()["table"]["status"] == "saving"
    done = await _finished(client, ada[0], job_id)
    assert (done["type"], done["status"]) == ("tables.sql", "completed"), done
    assert done["result"]["rows"] == 3

    table = (await client.get(f"/api/v1/assets/{table_id}", headers=ada[0])).json()
    assert (table["status"], table["latest_version"]) == ("active", 1)
    content = table["version"]["content"]
    assert content["parts"] == [f"tables/{table_id}/{job_id}/1/part-00000.parquet"]
    assert [(c["name"], c["type"]) for c in content["schema"]] == [
        ("name", "string"),
        ("total", "integer"),  # DuckDB's sum of integers (a HUGEINT), stored as the integer it is
        ("n", "integer"),
    ]
    assert content["source"]["tables"] == {"ada/customers": [customers, 1], orders: [orders, 1]}

    rows = await _preview(client, ada[0], 'SELECT name, n FROM "ada/totals" ORDER BY n')
    assert rows.json()["rows"] == [["Bo", 1], ["Ann", 2], ["Cy", 3]]
    page = await client.get(f"/api/v1/tables/{table_id}/rows", headers=ada[0], params={"order": "total"})
    assert [row["total"] for row in page.json()["rows"]] == [5, 24, 30]

    lineage = (await client.get(f"/api/v1/assets/{table_id}/lineage?direction=up", headers=ada[0])).json()
    assert sorted((e["input_id"], e["input_version"], e["job_id"]) for e in lineage["edges"]) == sorted(
        [(customers, 1, job_id), (orders, 1, job_id)]
    )
    assert {e["output_id"] for e in lineage["edges"]} == {table_id}


async def test_a_derive_that_fails_marks_its_table_error_and_its_job_invalid_input(
    client: Client, container: Container, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    asset, job = await submit_derive(
        await _principal(container, ada[1]),
        name="broken",
        sql='SELECT CAST(name AS INTEGER) AS n FROM "ada/customers"',
        tables=container.table_resolver,
        assets=container.catalog,
        jobs=container.jobs,
    )
    done = await _finished(client, ada[0], job.id)
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "invalid_input"
    assert "Ann" in done["error"]["message"]  # DuckDB's conversion error names the value
    table = (await client.get(f"/api/v1/assets/{asset.id}", headers=ada[0])).json()
    assert (table["status"], table["latest_version"]) == ("error", 0)
    assert table["error"] == done["error"]["message"]
    problem = _problem(await _preview(client, ada[0], 'SELECT * FROM "ada/broken"'), 409)
    assert "failed" in problem["detail"]
    with pytest.raises(TableNotReadable):
        await container.table_resolver.latest(await _principal(container, ada[1]), "ada/broken")


async def test_a_derive_of_refused_sql_or_unknown_tables_creates_nothing(
    client: Client,
    ada: tuple[dict[str, str], str],
    bob: tuple[dict[str, str], str],
    ada_tables: tuple[str, str],
) -> None:
    refused = await client.post(
        "/api/v1/tables", headers=ada[0], json={"name": "t", "sql": "ATTACH 'x.db' AS x"}
    )
    assert [e["field"] for e in _problem(refused, 422)["errors"]] == ["sql"]
    unknown = await client.post(
        "/api/v1/tables", headers=bob[0], json={"name": "t", "sql": 'SELECT * FROM "ada/customers"'}
    )
    _problem(unknown, 404)
    for headers in (ada[0], bob[0]):
        listed = await client.get("/api/v1/assets?kind=table", headers=headers)
        assert "t" not in [a["name"] for a in listed.json()["items"]]


async def test_a_derived_table_gets_its_statistics(
    client: Client, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    _, orders = ada_tables
    created = await client.post(
        "/api/v1/tables", headers=ada[0], json={"name": "totals", "sql": JOIN.format(orders=orders)}
    )
    assert created.status_code == 202, created.text
    table_id, job_id = created.json()["table"]["id"], created.json()["job"]["id"]
    assert (await _finished(client, ada[0], job_id))["status"] == "completed"

    # Computed by the job, before it completes: never pending once the table is there.
    table = (await client.get(f"/api/v1/tables/{table_id}", headers=ada[0])).json()
    assert (table["status"], table["stats"]) == ("active", "done"), table
    content = (await client.get(f"/api/v1/assets/{table_id}", headers=ada[0])).json()["version"]["content"]
    assert content["stats"] == f"tables/{table_id}/{job_id}/1/stats.json"
    stats = (await client.get(f"/api/v1/tables/{table_id}/stats", headers=ada[0])).json()
    assert (stats["status"], stats["rows"]) == ("done", 3), stats
    columns = {c["name"]: c for c in stats["columns"]}
    assert list(columns) == ["name", "total", "n"]
    assert columns["n"]["variable_type"] == "continuous"
    assert (columns["n"]["min"], columns["n"]["max"]) == (1, 3), columns["n"]


async def test_previews_at_once_each_get_a_locked_database_of_their_own(
    client: Client, ada: tuple[dict[str, str], str], ada_tables: tuple[str, str]
) -> None:
    # The container's previews run on databases opened ahead of demand; several at once must
    # each get their own, locked to the tables they name.
    _, orders = ada_tables
    queries = [JOIN.format(orders=orders), "SELECT * FROM read_csv('/etc/passwd')"] * 4
    answers = await asyncio.gather(*(_preview(client, ada[0], sql) for sql in queries))
    for sql, response in zip(queries, answers, strict=True):
        if "passwd" in sql:
            assert "Permission Error" in _problem(response, 422)["detail"]
        else:
            assert response.json()["rows"] == [["Ann", 30, 2], ["Cy", 24, 3], ["Bo", 5, 1]]
    settings = await _preview(client, ada[0], "SELECT current_setting('lock_configuration') AS locked")
    assert settings.json()["rows"] == [[True]]
