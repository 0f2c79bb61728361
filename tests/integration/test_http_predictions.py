"""Predictions end to end in one process: upload a file, run ``predictions.import``, then page
through, export and count the predictions over HTTP — on memory://, SQLite and PostgreSQL sinks."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from studio9.errors import BackendUnavailable
from studio9.predictions import EXPORT_SCHEMA, MalformedPredictions, PredictionService
from studio9.predictions.jobs import import_job_type
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]
ROWS = 25
FAST: dict[str, Any] = {"heartbeat_interval": 0.1, "sweep_interval": 0.2, "worker_threads": 2}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return memory_settings(tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


def predictions_csv(rows: int = ROWS, *, bad: dict[int, tuple[str, str]] | None = None) -> bytes:
    """``rows`` predictions with every kind of column; ``bad`` replaces (column, value) in a row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["item_key", "label", "confidence", "probabilities", "camera"]
    writer.writerow(header)
    for row in range(1, rows + 1):
        line = [f"item-{row}", "cat", "0.75", '{"cat": 0.75, "dog": 0.25}', f"c{row}"]
        values = dict(zip(header, line, strict=True))
        if bad and row in bad:
            column, value = bad[row]
            values[column] = value
        writer.writerow(values.values())
    return buffer.getvalue().encode()


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> tuple[dict[str, str], str]:
    created = (await client.post("/api/v1/users", headers=admin_headers, json={"username": name})).json()
    return {"Authorization": f"Bearer {created['token']['token']}"}, created["user"]["id"]


async def _upload(client: Client, headers: dict[str, str], content: bytes, name: str = "p.csv") -> str:
    response = await client.post(f"/api/v1/files?name={name}", headers=headers, content=content)
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def _import(client: Client, headers: dict[str, str], file_id: str, **params: Any) -> dict[str, Any]:
    """Submit ``predictions.import`` and wait until it ends; returns the job."""
    body = {"type": "predictions.import", "params": {"file": file_id, "model_id": "m1", **params}}
    response = await client.post("/api/v1/jobs", headers=headers, json=body)
    assert response.status_code == 201, response.text
    job_id = response.json()["id"]
    for _ in range(500):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


async def _all(client: Client, headers: dict[str, str], **filters: Any) -> list[dict[str, Any]]:
    """Every prediction the caller sees, following ``next_cursor`` a page of 10 at a time."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 10, **filters}
    while True:
        response = await client.get("/api/v1/predictions", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


async def _round_trip(client: Client, headers: dict[str, str]) -> None:
    """Import, read back, export both ways, count, and re-import: the same on every sink."""
    file_id = await _upload(client, headers, predictions_csv())
    job = await _import(client, headers, file_id, model_version="v2", stream_id="cam-1")
    assert job["status"] == "completed", job["error"]
    assert job["attempt"] == 1 and job["progress"] == 1.0
    result = job["result"]
    assert result == {
        "import_id": result["import_id"],
        "rows": ROWS,
        "rejected": 0,
        "replaced": False,
        "output": None,
    }

    items = await _all(client, headers)
    assert [p["item_key"] for p in items] == [f"item-{i}" for i in range(1, ROWS + 1)]
    first = items[0]
    assert first["import_id"] == result["import_id"]
    assert (first["model_id"], first["model_version"], first["stream_id"]) == ("m1", "v2", "cam-1")
    assert first["source_job_id"] is None
    assert (first["label"], first["confidence"]) == ("cat", 0.75)
    assert first["probabilities"] == {"cat": 0.75, "dog": 0.25}
    assert first["extra"] == {"camera": "c1"}
    assert await _all(client, headers, model_id="other") == []
    assert len(await _all(client, headers, stream_id="cam-1", model_id="m1")) == ROWS

    exported = await client.get("/api/v1/predictions/export", headers=headers, params={"format": "csv"})
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'filename="predictions.csv"' in exported.headers["content-disposition"]
    table = pcsv.read_csv(pa.py_buffer(exported.content))
    assert table.column_names == EXPORT_SCHEMA.names
    assert table.column("item_key").to_pylist() == [p["item_key"] for p in items]

    parquet = await client.get("/api/v1/predictions/export?format=parquet&model_id=m1", headers=headers)
    assert parquet.status_code == 200, parquet.text
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    assert 'filename="predictions.parquet"' in parquet.headers["content-disposition"]
    table = pq.read_table(pa.py_buffer(parquet.content))
    assert table.schema.equals(EXPORT_SCHEMA)
    assert table.column("id").to_pylist() == [p["id"] for p in items]

    counts = (await client.get("/api/v1/predictions/daily-counts", headers=headers)).json()
    day = first["created_at"][:10]
    assert counts == {"items": [{"day": day, "model_id": "m1", "count": ROWS}]}
    tomorrow = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    assert len(await _all(client, headers, **{"from": day, "to": tomorrow})) == ROWS
    assert await _all(client, headers, **{"from": f"{tomorrow}T00:00:00Z"}) == []
    assert await _all(client, headers, **{"to": day}) == []

    # The same bytes again (another upload, same SHA-256, no source job): still one copy.
    again = await _import(client, headers, await _upload(client, headers, predictions_csv(), "again.csv"))
    assert again["status"] == "completed", again["error"]
    assert (again["result"]["rows"], again["result"]["replaced"]) == (ROWS, True)
    items = await _all(client, headers)
    assert len(items) == ROWS
    assert {p["import_id"] for p in items} == {again["result"]["import_id"]}


async def test_import_list_export_count_and_reimport_on_memory(
    client: Client, admin_headers: dict[str, str]
) -> None:
    await _round_trip(client, admin_headers)


async def test_the_same_on_a_sqlite_sink(tmp_path: Path) -> None:
    settings = memory_settings(tmp_path, sink_url=f"sqlite:///{tmp_path}/p.db", **FAST)
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as client:
        headers = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        await _round_trip(client, headers)
    assert (tmp_path / "p.db").is_file()


@pytest.mark.service("postgres")
async def test_the_same_on_a_postgresql_sink(tmp_path: Path, postgres_url: str) -> None:
    settings = memory_settings(tmp_path, sink_url=postgres_url, **FAST)
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as client:
        headers = {"Authorization": f"Bearer {(settings.data_dir / 'admin-token').read_text().strip()}"}
        await _round_trip(client, headers)
        bad = await _upload(client, headers, predictions_csv(bad={4: ("label", "")}))
        failed = await _import(client, headers, bad, model_id="m2")
        assert failed["status"] == "failed" and "row 4" in failed["error"]["message"]
        assert await _all(client, headers, model_id="m2") == []


async def test_an_explicit_source_job_is_a_copy_of_its_own(
    client: Client, admin_headers: dict[str, str]
) -> None:
    file_id = await _upload(client, admin_headers, predictions_csv(5))
    plain = await _import(client, admin_headers, file_id)
    sourced = await _import(client, admin_headers, file_id, source_job_id="train-7")
    rerun = await _import(client, admin_headers, file_id, source_job_id="train-7")
    assert [j["result"]["replaced"] for j in (plain, sourced, rerun)] == [False, False, True]
    assert len(await _all(client, admin_headers)) == 10
    from_source = await _all(client, admin_headers, source_job_id="train-7")
    assert {p["import_id"] for p in from_source} == {rerun["result"]["import_id"]}


async def test_a_parquet_file_is_imported_by_format(client: Client, admin_headers: dict[str, str]) -> None:
    table = pa.table({"item_key": ["a", "b"], "label": ["x", "y"], "confidence": [0.5, 1.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    file_id = await _upload(client, admin_headers, buffer.getvalue(), "p.parquet")
    job = await _import(client, admin_headers, file_id, format="parquet")
    assert job["status"] == "completed", job["error"]
    items = await _all(client, admin_headers)
    assert [(p["item_key"], p["confidence"]) for p in items] == [("a", 0.5), ("b", 1.0)]


async def test_a_malformed_row_fails_the_job_naming_it_and_loads_nothing(
    client: Client, admin_headers: dict[str, str]
) -> None:
    file_id = await _upload(client, admin_headers, predictions_csv(bad={3: ("confidence", "1.5")}))
    job = await _import(client, admin_headers, file_id)
    assert job["status"] == "failed"
    assert job["error"]["message"] == "row 3: confidence 1.5 is not between 0 and 1"
    assert job["attempt"] == 1  # a bad file is not worth a retry
    assert job["outputs"] == []
    assert await _all(client, admin_headers) == []


async def test_skip_mode_loads_the_rest_and_writes_rejected_csv(
    client: Client, admin_headers: dict[str, str]
) -> None:
    content = predictions_csv(bad={2: ("label", ""), 7: ("probabilities", "[1, 2]")})
    job = await _import(client, admin_headers, await _upload(client, admin_headers, content), on_error="skip")
    assert job["status"] == "completed", job["error"]
    assert job["result"]["rows"] == ROWS - 2
    assert (job["result"]["rejected"], job["result"]["output"]) == (2, "rejected.csv")
    assert job["outputs"] == ["rejected.csv"]
    download = await client.get(f"/api/v1/jobs/{job['id']}/outputs/rejected.csv", headers=admin_headers)
    assert download.status_code == 200
    rejected = list(csv.DictReader(io.StringIO(download.text)))
    assert [(r["row"], r["reason"]) for r in rejected] == [
        ("2", "label is empty"),
        ("7", "probabilities is not a JSON object"),
    ]
    assert '"item_key":"item-2"' in rejected[0]["values"]
    assert len(await _all(client, admin_headers)) == ROWS - 2


async def test_equal_files_of_two_owners_or_two_models_are_separate_imports(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, _ = await _user(client, admin_headers, "ada")
    content = predictions_csv(4)
    first = await _import(client, admin_headers, await _upload(client, admin_headers, content), model_id="m")
    other_model = await _import(
        client, admin_headers, await _upload(client, admin_headers, content), model_id="n"
    )
    other_owner = await _import(client, ada, await _upload(client, ada, content), model_id="m")
    # Nobody's import replaced anybody else's: the key is (owner, model, source job, file).
    assert [j["result"]["replaced"] for j in (first, other_model, other_owner)] == [False, False, False]
    assert len(await _all(client, admin_headers)) == 12
    assert len(await _all(client, ada)) == 4


async def test_users_see_only_their_own_predictions(client: Client, admin_headers: dict[str, str]) -> None:
    ada, ada_id = await _user(client, admin_headers, "ada")
    bob, _ = await _user(client, admin_headers, "bob")
    admin_id = (await client.get("/api/v1/auth/me", headers=admin_headers)).json()["id"]
    ada_job = await _import(client, ada, await _upload(client, ada, predictions_csv(3)), model_id="ada-m")
    admin_file = await _upload(client, admin_headers, predictions_csv(4))
    await _import(client, admin_headers, admin_file, model_id="admin-m")
    assert ada_job["status"] == "completed", ada_job["error"]

    mine = await _all(client, ada)
    assert len(mine) == 3 and {p["owner_id"] for p in mine} == {ada_id}
    assert await _all(client, ada, owner=admin_id) == mine  # the owner filter is the caller's own
    assert await _all(client, bob) == []
    assert len(await _all(client, admin_headers)) == 7
    assert await _all(client, admin_headers, owner=ada_id) == mine

    counts = (await client.get("/api/v1/predictions/daily-counts", headers=ada)).json()["items"]
    assert [(c["model_id"], c["count"]) for c in counts] == [("ada-m", 3)]
    exported = await client.get("/api/v1/predictions/export", headers=bob)
    assert exported.status_code == 200
    empty = pcsv.read_csv(pa.py_buffer(exported.content))  # a header, no rows
    assert (empty.column_names, empty.num_rows) == (EXPORT_SCHEMA.names, 0)

    # A file of someone else's cannot be imported: the job fails as if it did not exist.
    stolen = await _import(client, ada, admin_file)
    assert stolen["status"] == "failed" and "not found" in stolen["error"]["message"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("", {"limit": "0"}, "limit"),
        ("", {"limit": "5000"}, "limit"),
        ("", {"cursor": "not-a-cursor"}, "cursor"),
        ("", {"model_id": "two words"}, "model_id"),
        ("", {"from": "2026-01-01T00:00:00"}, "from"),
        ("", {"from": "yesterday"}, "from"),
        ("/daily-counts", {"stream_id": "-bad"}, "stream_id"),
        ("/export", {"format": "xml"}, "format"),
        ("/export", {"to": "2026-01-01T00:00:00"}, "to"),
    ],
)
async def test_bad_filters_are_422_naming_the_parameter(
    client: Client, admin_headers: dict[str, str], path: str, params: dict[str, str], field: str
) -> None:
    response = await client.get(f"/api/v1/predictions{path}", headers=admin_headers, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_a_reversed_range_is_empty_not_an_error(client: Client, admin_headers: dict[str, str]) -> None:
    # The OpenAPI document cannot relate two parameters: a range that ends before it starts is
    # what it says, nothing; a time past datetime's range in UTC is before or after everything.
    backwards = {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01"}
    for path in ("", "/daily-counts"):
        response = await client.get(f"/api/v1/predictions{path}", headers=admin_headers, params=backwards)
        assert (response.status_code, response.json()["items"]) == (200, [])
    edges = {"from": "0001-01-01T00:00:00+01:00", "to": "9999-12-31T23:59:59-01:00"}
    response = await client.get("/api/v1/predictions", headers=admin_headers, params=edges)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"file": "f1"}, "params.model_id"),
        ({"model_id": "m1"}, "params.file"),
        ({"file": "f1", "model_id": "two words"}, "params.model_id"),
        ({"file": "f1", "model_id": "m1", "on_error": "ignore"}, "params.on_error"),
        ({"file": "f1", "model_id": "m1", "format": "xlsx"}, "params.format"),
        ({"file": "f1", "model_id": "m1", "source_job_id": ""}, "params.source_job_id"),
        ({"file": "f1", "model_id": "m1", "owner": "someone"}, "params.owner"),
    ],
)
async def test_bad_import_params_are_422_at_submit(
    client: Client, admin_headers: dict[str, str], params: dict[str, Any], field: str
) -> None:
    body = {"type": "predictions.import", "params": params}
    response = await client.post("/api/v1/jobs", headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_the_job_type_is_listed_and_routes_need_a_token(
    client: Client, admin_headers: dict[str, str]
) -> None:
    types = (await client.get("/api/v1/job-types", headers=admin_headers)).json()["items"]
    (listed,) = [t for t in types if t["name"] == "predictions.import"]
    assert listed["max_attempts"] == 3
    assert {"file", "model_id", "on_error"} <= set(
        listed["params_schema"]["$defs"]["ImportParams"]["properties"]
    )
    for path in ("", "/export", "/daily-counts"):
        assert (await client.get(f"/api/v1/predictions{path}")).status_code == 401


def test_only_outages_are_retried() -> None:
    job_type = import_job_type(PredictionService(sink=None))  # type: ignore[arg-type]  # never called
    assert job_type.is_retryable(BackendUnavailable("sink down"))
    assert job_type.is_retryable(ConnectionResetError())
    assert not job_type.is_retryable(MalformedPredictions(3, "label is empty"))
