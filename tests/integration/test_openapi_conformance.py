"""The OpenAPI document is the API: Schemathesis over every operation, against the app in-process.

Every operation gets a bounded number of generated requests (its examples, the coverage phase's
boundary and missing-parameter cases, then fuzzed ones; valid and invalid data alike), made with
a fixed seed so a run is repeatable, each answered by an app on memory:// backends with an
admin token. Each answer must pass:

* ``not_a_server_error``: no 5xx;
* ``status_code_conformance``: its status is one the operation documents;
* ``content_type_conformance``: its media type is documented for that status;
* ``response_schema_conformance``: its body matches the documented schema;
* ``positive_data_acceptance``: a request the document calls valid is not refused (2xx, 3xx,
  401, 403, 404, 409, 412 or 429: a valid request about an object that does not exist, or is
  in a state that forbids it, is still valid);
* ``ignored_auth``: an operation that documents a token refuses a request without one.

Each operation runs on a fresh app (one per operation, shared by its examples): positive data
for ``GET /api/v1/jobs/{job_id}`` names a job that does not exist, and 404 is documented.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from litestar import Litestar
from litestar.testing import TestClient
from schemathesis.python import asgi

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import memory_settings

#: Generated requests per operation and phase: enough to reach every documented status of each
#: operation, few enough that the whole run stays well under a minute on two cores.
EXAMPLES = 12
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "positive_data_acceptance",
    "ignored_auth",
)
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261206,
        "generation": {"mode": "all", "max-examples": EXAMPLES, "deterministic": True, "database": "none"},
        "checks": {
            "enabled": False,
            **{name: {"enabled": True} for name in CHECKS},
            # Schemathesis' default list without 5xx (never acceptable here), plus 412: a
            # well-formed If-Match that is not the current version is a state conflict, like 409.
            "positive_data_acceptance": {
                "enabled": True,
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "429"],
            },
        },
        # What no JSON Schema here states is a 422 on a request the document calls valid: SQL
        # text its parser refuses; a share naming not exactly one of user, group and email; a
        # library cursor (opaque, bound to the query that made it) from another query; a model
        # file that is no skops file; an alias named ``latest`` (reserved) set or removed; rows
        # that do not fit the model's input schema; a run search's filter or order in MLflow's
        # search language that its parser refuses, or a cursor (a store page token) it cannot read.
        "operations": [
            {
                "include-operation-id": operation_id,
                "checks": {
                    "positive_data_acceptance": {
                        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429"]
                    }
                },
            }
            for operation_id in (
                "PreviewSql",
                "CreateTable",
                "ShareAsset",
                "SearchLibrary",
                "ImportModel",
                "SetModelAlias",
                "DeleteModelAlias",
                "PredictByAlias",
                "PredictByVersion",
                "SearchRuns",
            )
        ],
        # Links between operations are not declared: there is no stateful phase to run.
        "phases": {"stateful": {"enabled": False}},
    }
)


def _document() -> dict[str, Any]:
    """The document as a started app serves it: its job types exist once the app runs."""
    with tempfile.TemporaryDirectory() as tmp, TestClient(_app(memory_settings(Path(tmp)))) as client:
        response = client.get("/schema/openapi.json")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document


def _app(settings: Settings) -> Litestar:
    # No background loops: the supervisor and the indexer would only add noise to the answers.
    return create_app(settings, background=False)


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
PUBLIC = {("get", "/health"), ("get", "/about"), ("post", "/api/v1/auth/tokens")}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in DOCUMENT["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "responses" in operation
    ]


def test_public_routes_declare_no_security_and_the_others_a_token() -> None:
    assert DOCUMENT["security"] == [{"BearerToken": []}]
    for method, path, operation in _operations():
        if (method, path) in PUBLIC:
            assert operation["security"] == [], path
        else:
            assert "security" not in operation, path  # the document's BearerToken
            assert "401" in operation["responses"], path


def test_every_error_is_a_problem_document() -> None:
    problem = DOCUMENT["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "instance",
        "errors",
        "request_id",
        "dependents",
    }
    for method, path, operation in _operations():
        for code, response in operation["responses"].items():
            if int(code) >= 400 and (path, code) != ("/health", "503"):  # a degraded health report
                assert response["content"] == PROBLEM, f"{method} {path} {code}"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return memory_settings(tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="module")
def app(settings: Settings) -> Litestar:
    return _app(settings)


@pytest.fixture
def client(app: Litestar, settings: Settings) -> Iterator[tuple[asgi.ASGIClient, str]]:
    """A client of a freshly started app, and its admin token (written when it starts)."""
    with asgi.get_client(app) as client:
        yield client, (settings.data_dir / "admin-token").read_text().strip()
    asgi.shutdown_lifespans()


@schema.parametrize()
# One app per operation, on purpose: its examples share it, and the next operation starts clean.
@hypothesis.settings(suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture])
def test_operation_conforms(
    case: schemathesis.Case, app: Litestar, client: tuple[asgi.ASGIClient, str]
) -> None:
    session, token = client
    # Checks that send requests of their own (ignored_auth) reach the same app, in-process.
    case.operation.app = case.operation.schema.app = app
    _pair_cursor_with_its_query(case)
    case.call_and_validate(session=session, headers={"Authorization": f"Bearer {token}"})


def _pair_cursor_with_its_query(case: schemathesis.Case) -> None:
    """A ``/jobs`` cursor is valid only with the query that made it: a text search's cursor with
    the same ``q``, an id without ``q`` (the document says so in words: parameters are
    independent in OpenAPI). A cursor generated beside the other kind of query is dropped."""
    query = case.query
    if case.operation.label != "GET /api/v1/jobs" or not query or "cursor" not in query:
        return
    if query.get("q") or len(str(query["cursor"])) != 26:
        del query["cursor"]
