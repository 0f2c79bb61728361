"""OpenLineage run events of the jobs that read and write assets, through the whole app (memory://):
an import POSTs START then COMPLETE (the file in, the table with its schema out) to
``STUDIO9_OPENLINEAGE_URL``, a ragged CSV START then FAIL, a derive names every table it read;
the same events go on the in-process event bus, topic ``openlineage.run``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.catalog.openlineage import run_id
from studio9.config import Settings
from studio9.messaging.domain import Event
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]
SALES = b"city,amount\nOslo,1\nRome,2\n"
RAGGED = b"city,amount\nOslo,1\nRome,2,3\n"


class _Collector(ThreadingHTTPServer):
    received: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(json.loads(body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def collector() -> Iterator[_Collector]:
    """A local OpenLineage endpoint keeping every event POSTed to it."""
    server = _Collector(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def settings(tmp_path: Path, collector: _Collector) -> Settings:
    host, port = collector.server_address[:2]
    return memory_settings(
        tmp_path,
        openlineage_url=f"http://{host!s}:{port}/api/v1/lineage",
        heartbeat_interval=0.1,
        sweep_interval=0.2,
        worker_threads=2,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


@pytest.fixture
def bus_events(client: Client) -> list[Event]:
    seen: list[Event] = []
    client.app.state.container.backends["events"].subscribe(seen.append, prefix="openlineage.")
    return seen


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": "ada"})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


async def _wait(client: Client, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    for _ in range(1000):
        job: dict[str, Any] = (await client.get(f"/api/v1/jobs/{job_id}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


async def _import(client: Client, headers: dict[str, str], content: bytes) -> tuple[str, str, dict[str, Any]]:
    """Upload and import ``content`` as table ``sales``: (file id, table id, finished job)."""
    uploaded = await client.post("/api/v1/files?name=sales.csv", headers=headers, content=content)
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    created = await client.post("/api/v1/tables", headers=headers, json={"name": "sales", "file": file_id})
    assert created.status_code == 202, created.text
    return file_id, created.json()["table"]["id"], await _wait(client, headers, created.json()["job"]["id"])


def _of(events: list[dict[str, Any]], job_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["job"]["name"].endswith("." + job_id)]


def _check_shape(event: dict[str, Any], job_type: str, job_id: str) -> None:
    assert {"eventType", "eventTime", "run", "job", "inputs", "outputs", "producer", "schemaURL"} <= set(
        event
    )
    assert event["run"]["runId"] == run_id(job_id)
    assert event["job"]["name"] == f"{job_type}.{job_id}"
    assert event["job"]["facets"]["jobType"]["jobType"] == job_type


async def test_an_import_sends_start_then_complete_with_the_tables_schema(
    client: Client, collector: _Collector, bus_events: list[Event], ada: dict[str, str]
) -> None:
    file_id, table_id, job = await _import(client, ada, SALES)
    assert job["status"] == "completed", job
    sent = _of(collector.received, job["id"])
    assert [e["eventType"] for e in sent] == ["START", "COMPLETE"]
    for event in sent:
        _check_shape(event, "tables.import", job["id"])
        assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in event["inputs"]] == [
            (file_id, "1")
        ]
        assert [d["name"] for d in event["outputs"]] == [table_id]
    start, complete = sent
    assert "schema" not in start["outputs"][0]["facets"]
    output = complete["outputs"][0]["facets"]
    assert output["version"]["datasetVersion"] == "1"
    assert output["schema"]["fields"] == [
        {"name": "city", "type": "string"},
        {"name": "amount", "type": "integer"},
    ]
    assert output["symlinks"]["identifiers"][0]["name"].endswith("/sales")
    # The same events on the in-process bus, one run.
    on_bus = [e for e in bus_events if e.payload["job"]["name"].endswith(job["id"])]
    assert [e.payload for e in on_bus] == sent
    assert {e.topic for e in on_bus} == {"openlineage.run"}
    assert [e.version for e in on_bus] == [1, 3]

    # A derive names every table it read, at its version, and the query.
    derived = await client.post(
        "/api/v1/tables",
        headers=ada,
        json={"name": "big", "sql": 'SELECT city FROM "ada/sales" WHERE amount > 1'},
    )
    assert derived.status_code == 202, derived.text
    done = await _wait(client, ada, derived.json()["job"]["id"])
    assert done["status"] == "completed", done
    sent = _of(collector.received, done["id"])
    assert [e["eventType"] for e in sent] == ["START", "COMPLETE"]
    _check_shape(sent[1], "tables.sql", done["id"])
    assert sent[1]["job"]["facets"]["sql"]["query"].startswith("SELECT city")
    assert [(d["name"], d["facets"]["version"]["datasetVersion"]) for d in sent[1]["inputs"]] == [
        (table_id, "1")
    ]
    assert sent[1]["outputs"][0]["name"] == derived.json()["table"]["id"]
    assert sent[1]["outputs"][0]["facets"]["schema"]["fields"] == [{"name": "city", "type": "string"}]


async def test_a_ragged_csv_sends_start_then_fail_with_the_message(
    client: Client, collector: _Collector, bus_events: list[Event], ada: dict[str, str]
) -> None:
    file_id, table_id, job = await _import(client, ada, RAGGED)
    assert job["status"] == "failed", job
    sent = _of(collector.received, job["id"])
    assert [e["eventType"] for e in sent] == ["START", "FAIL"]
    fail = sent[1]
    _check_shape(fail, "tables.import", job["id"])
    assert [d["name"] for d in fail["inputs"]] == [file_id]
    assert [d["name"] for d in fail["outputs"]] == [table_id]
    assert "version" not in fail["outputs"][0]["facets"]
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert message.startswith("row 2: the row has 3 values"), message
    assert [e.payload["eventType"] for e in bus_events if e.subject_id == run_id(job["id"])] == [
        "START",
        "FAIL",
    ]
