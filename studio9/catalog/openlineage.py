"""OpenLineage run events for the catalog's jobs: values in, JSON-able dicts out (no I/O).

A job that reads and writes assets (``tables.import``, ``tables.sql``) tells lineage tools
(Marquez, DataHub, OpenMetadata) what it did with ``run_event``: ``START`` when it begins,
``COMPLETE`` once its version is added (with the output's schema), ``FAIL`` when it fails for good.
The shape is the OpenLineage spec's ``RunEvent`` (``spec/OpenLineage.json``, 2-0-2):

- ``run.runId`` is a UUID derived from the job id (``uuid5``), so every attempt of a retried
  job, and each of its events, belongs to the one run;
- ``job`` is ``{namespace, name: <job type>.<job id>}``, with the ``jobType`` facet naming the
  job type (and the ``sql`` facet for a query);
- a dataset is an asset at a version. Its ``name`` is the asset id: stable across renames and
  unique, where ``<owner>/<asset name>`` changes with a rename and is not unique outside the
  library; that readable name is its ``symlinks`` facet, the version its ``version`` facet
  (``datasetVersion``), its columns its ``schema`` facet;
- one ``namespace`` for jobs and datasets (``DEFAULT_NAMESPACE`` unless the caller names one):
  the assets of one deployment live in one catalog.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal

import attrs

from studio9 import __version__

__all__ = [
    "DEFAULT_NAMESPACE",
    "PRODUCER",
    "RUN_EVENT_SCHEMA",
    "EventType",
    "LineageDataset",
    "run_event",
    "run_id",
    "table_fields",
]

#: What identifies these events' producer (a URI, as the spec asks).
PRODUCER: Final = f"urn:studio9:{__version__}"
RUN_EVENT_SCHEMA: Final = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
DEFAULT_NAMESPACE: Final = "studio9://catalog"
_FACETS: Final = "https://openlineage.io/spec/facets"
_SCHEMA_FACET: Final = f"{_FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
_VERSION_FACET: Final = f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
_SYMLINKS_FACET: Final = f"{_FACETS}/1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet"
_ERROR_FACET: Final = f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
_JOB_TYPE_FACET: Final = f"{_FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
_SQL_FACET: Final = f"{_FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"
#: Fixed, so the same job id gives the same run id in every process.
_RUN_IDS: Final = uuid.UUID("4b0f6a52-7d1e-5c3a-9f0e-2f5d2c1b9a71")
_MAX_MESSAGE: Final = 2000

EventType = Literal["START", "COMPLETE", "FAIL", "ABORT"]


@attrs.frozen(kw_only=True)
class LineageDataset:
    """An asset as a job read or wrote it. ``version`` None: not known yet (an output at START);
    ``fields`` None: no schema known; ``name`` and ``owner`` (a user id or name) make the
    readable ``<owner>/<name>`` alias when known."""

    asset_id: str
    kind: str = "table"
    version: int | None = None
    name: str | None = None
    owner: str | None = None
    fields: Sequence[tuple[str, str]] | None = None


def run_id(job_id: str) -> str:
    """The OpenLineage run id of a job: a UUID, the same for every attempt and event of it."""
    return str(uuid.uuid5(_RUN_IDS, job_id))


def table_fields(content: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    """``(name, type)`` of each column of a table version's content (None: no schema there)."""
    schema = (content or {}).get("schema")
    if not isinstance(schema, list):
        return None
    return [(str(c["name"]), str(c.get("type") or "")) for c in schema if isinstance(c, Mapping)]


def run_event(
    event_type: EventType,
    *,
    job_id: str,
    job_type: str,
    at: datetime,
    inputs: Sequence[LineageDataset] = (),
    outputs: Sequence[LineageDataset] = (),
    error: str | None = None,
    sql: str | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> dict[str, Any]:
    """The ``RunEvent`` of one transition of a job's run (``at`` must be timezone-aware).

    ``error`` (for FAIL) becomes the ``errorMessage`` run facet; ``sql`` the job's ``sql`` facet.
    """
    if at.tzinfo is None:
        raise ValueError("an OpenLineage eventTime needs a timezone")
    run_facets: dict[str, Any] = {}
    if error is not None:
        run_facets["errorMessage"] = {
            **_facet(_ERROR_FACET),
            "message": error[:_MAX_MESSAGE],
            "programmingLanguage": "PYTHON",
        }
    job_facets: dict[str, Any] = {
        "jobType": {
            **_facet(_JOB_TYPE_FACET),
            "processingType": "BATCH",
            "integration": "STUDIO9",
            "jobType": job_type,
        }
    }
    if sql is not None:
        job_facets["sql"] = {**_facet(_SQL_FACET), "query": sql}
    return {
        "eventType": event_type,
        "eventTime": at.isoformat(),
        "run": {"runId": run_id(job_id), "facets": run_facets},
        "job": {"namespace": namespace, "name": f"{job_type}.{job_id}", "facets": job_facets},
        "inputs": [_dataset(d, namespace) for d in inputs],
        "outputs": [_dataset(d, namespace) for d in outputs],
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
    }


def _dataset(dataset: LineageDataset, namespace: str) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if dataset.fields is not None:
        facets["schema"] = {
            **_facet(_SCHEMA_FACET),
            "fields": [{"name": name, "type": kind} for name, kind in dataset.fields],
        }
    if dataset.version is not None:
        facets["version"] = {**_facet(_VERSION_FACET), "datasetVersion": str(dataset.version)}
    if dataset.name is not None:
        alias = f"{dataset.owner}/{dataset.name}" if dataset.owner else dataset.name
        facets["symlinks"] = {
            **_facet(_SYMLINKS_FACET),
            "identifiers": [{"namespace": namespace, "name": alias, "type": dataset.kind.upper()}],
        }
    return {"namespace": namespace, "name": dataset.asset_id, "facets": facets}


def _facet(schema_url: str) -> dict[str, str]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url}
