"""OpenLineage run events: the shape of ``run_event`` (the spec's required fields and facets), and
the sink that never fails the job emitting them (a refusing bus, an unreachable endpoint)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from adapters.event_publisher.memory import MemoryEventPublisher
from adapters.lineage_sink.http import TOPIC, HttpLineageSink
from studio9.catalog.openlineage import (
    PRODUCER,
    RUN_EVENT_SCHEMA,
    LineageDataset,
    run_event,
    run_id,
    table_fields,
)
from studio9.errors import BackendUnavailable
from studio9.messaging.domain import Event

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _facet_ok(facet: dict[str, object]) -> None:
    assert facet["_producer"] == PRODUCER
    assert str(facet["_schemaURL"]).startswith("https://openlineage.io/spec/facets/")


def test_a_complete_event_has_every_required_field_and_the_outputs_schema() -> None:
    event = run_event(
        "COMPLETE",
        job_id="J1",
        job_type="tables.import",
        at=AT,
        inputs=[LineageDataset(asset_id="F1", kind="file", version=1)],
        outputs=[
            LineageDataset(
                asset_id="T1",
                version=2,
                name="sales",
                owner="ada",
                fields=[("city", "string"), ("n", "integer")],
            )
        ],
    )
    assert event["eventType"] == "COMPLETE"
    assert datetime.fromisoformat(event["eventTime"]) == AT
    assert (event["producer"], event["schemaURL"]) == (PRODUCER, RUN_EVENT_SCHEMA)
    assert uuid.UUID(event["run"]["runId"]).version == 5
    assert event["job"]["namespace"] and event["job"]["name"] == "tables.import.J1"
    _facet_ok(event["job"]["facets"]["jobType"])
    assert event["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    (file,) = event["inputs"]
    assert (file["namespace"], file["name"]) == (event["job"]["namespace"], "F1")
    assert file["facets"]["version"]["datasetVersion"] == "1"
    assert "schema" not in file["facets"] and "symlinks" not in file["facets"]
    (table,) = event["outputs"]
    assert table["name"] == "T1"
    schema = table["facets"]["schema"]
    _facet_ok(schema)
    assert schema["fields"] == [{"name": "city", "type": "string"}, {"name": "n", "type": "integer"}]
    assert table["facets"]["version"]["datasetVersion"] == "2"
    assert table["facets"]["symlinks"]["identifiers"] == [
        {"namespace": event["job"]["namespace"], "name": "ada/sales", "type": "TABLE"}
    ]


def test_a_run_id_is_stable_per_job_and_differs_between_jobs() -> None:
    assert run_id("J1") == run_id("J1") != run_id("J2")
    start = run_event("START", job_id="J1", job_type="tables.sql", at=AT, sql="SELECT 1")
    assert start["run"]["runId"] == run_id("J1")
    assert start["job"]["facets"]["sql"]["query"] == "SELECT 1"
    assert (start["inputs"], start["outputs"], start["run"]["facets"]) == ([], [], {})


def test_a_failure_carries_its_message_and_a_naive_time_is_refused() -> None:
    fail = run_event("FAIL", job_id="J1", job_type="tables.import", at=AT, error="row 3: bad " * 500)
    facet = fail["run"]["facets"]["errorMessage"]
    _facet_ok(facet)
    assert facet["programmingLanguage"] == "PYTHON" and facet["message"].startswith("row 3: bad")
    assert len(facet["message"]) == 2000
    with pytest.raises(ValueError, match="timezone"):
        run_event("START", job_id="J1", job_type="tables.import", at=datetime(2026, 1, 1))


def test_table_fields_reads_a_table_versions_content() -> None:
    content = {"schema": [{"name": "a", "type": "float", "variable_type": "continuous"}]}
    assert table_fields(content) == [("a", "float")]
    assert table_fields({}) is None and table_fields(None) is None


class _RefusingPublisher:
    async def publish(self, events: Sequence[Event]) -> None:
        raise BackendUnavailable("the events backend is down")

    async def ping(self) -> None:
        raise BackendUnavailable("the events backend is down")

    async def aclose(self) -> None:
        pass


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_the_sink_publishes_on_the_bus() -> None:
    bus = MemoryEventPublisher()
    seen: list[Event] = []
    bus.subscribe(seen.append, prefix="openlineage.")
    event = run_event("START", job_id="J1", job_type="tables.import", at=AT)
    await HttpLineageSink(bus, timeout=1.0).emit(event)
    assert [(e.topic, e.subject_id, e.version, e.at, dict(e.payload)) for e in seen] == [
        (TOPIC, run_id("J1"), 1, AT, event)
    ]


async def test_the_sink_never_raises_and_logs_no_credentials() -> None:
    url = f"http://lineage:s3cret@127.0.0.1:{_closed_port()}/api/v1/lineage"
    sink = HttpLineageSink(_RefusingPublisher(), url, timeout=1.0)
    with capture_logs() as logs:
        await sink.emit(run_event("FAIL", job_id="J1", job_type="tables.import", at=AT, error="x"))
    assert [entry["event"] for entry in logs] == ["openlineage_publish_failed", "openlineage_post_failed"]
    assert "s3cret" not in repr(logs) and "127.0.0.1" in logs[1]["url"]
