"""The OpenAPI document is the API: every status, media type and parameter format it really has.

Litestar builds the document from the routes' signatures; what a signature cannot say is added
here, in one place, from facts:

* **Statuses a route's own code raises** (403, 409, 412, 429, a second success code) are declared
  next to the route: ``responses=problems(403, 409) | also(202, JobOut, "being stopped")``
  (``studio9.web.responses``, which the contexts' routes import).
* **Statuses that follow from a route's shape** are added to every operation by ``complete``:
  a token (401; 503, since the token is checked in the database), a JSON body (400 malformed,
  413 too large, 422 invalid), path parameters (404), query or header parameters (422), and 500.
* **Public routes** (``studio9.api.security.is_public``, the rule the middleware applies) declare
  ``security: []``; every other operation keeps the document's ``BearerToken``.
* **Formats the routes check but their signatures do not carry** (cursors, ids, times; a
  streamed upload or download) come from the modules that check or produce them
  (``studio9.api.openapi_facts``).

Every error is a ``Problem`` (RFC 9457) served as ``application/problem+json``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import Components, OpenAPI, SecurityScheme

from studio9.web.responses import MEANING, PROBLEM_JSON, Problem

PROBLEM_REF = "#/components/schemas/Problem"
BEARER = "BearerToken"

_HEADERS: Mapping[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": '`Bearer realm="studio9"`', "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}},
}


def openapi_config(
    *,
    version: str,
    public: Callable[[str, str], bool],
    facts: Callable[[dict[str, Any]], None],
    render: OpenAPIRenderPlugin,
) -> OpenAPIConfig:
    """The app's OpenAPI settings: the document at ``/schema/openapi.json``, completed by
    ``complete`` (``public(method, path)`` says which routes need no token; ``facts`` adds the
    formats routes check), and the docs page ``render``."""
    config = _Config(
        title="Studio9",
        version=version,
        path="/schema",
        security=[{BEARER: []}],
        components=Components(
            security_schemes={
                BEARER: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="An API token: `POST /api/v1/auth/tokens`, or `studio9 users create`.",
                )
            }
        ),
        render_plugins=[render],
    )
    config.finish = lambda document: _finish(document, public, facts)
    return config


def _finish(
    document: dict[str, Any], public: Callable[[str, str], bool], facts: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    facts(document)  # first: a body it documents (an upload) brings its 400, 413 and 422
    return complete(document, public)


def complete(document: dict[str, Any], public: Callable[[str, str], bool]) -> dict[str, Any]:
    """``document`` with public routes marked and every status each operation can answer."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    # From the structs themselves: Litestar's rendering of the optional fields is clumsier.
    schemas.update(_problem_schemas())
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "delete", "patch"}:
                is_public = public(method.upper(), path)
                if is_public:
                    operation["security"] = []
                _complete_responses(operation, is_public)
    return document


def _complete_responses(operation: dict[str, Any], is_public: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    # Litestar documents its own validation error (JSON, another shape); ours is a Problem.
    bad = responses.get("400", {}).get("content", {}).get("application/json", {}).get("schema", {})
    if bad.get("description") == "Validation Exception":
        del responses["400"]
    kinds = {p.get("in") for p in operation.get("parameters", [])}
    derived = {500}
    if not is_public:
        derived |= {401, 503}
    if "requestBody" in operation:
        derived |= {400, 413, 422}
    if "path" in kinds:
        derived.add(404)
    if kinds & {"query", "header"}:
        derived.add(422)
    for status in sorted(derived):
        responses.setdefault(str(status), _problem_response(status))
    for code, response in responses.items():
        if code in {"401", "429"}:
            response.setdefault("headers", {}).update(copy.deepcopy(_HEADERS[int(code)]))
    operation["responses"] = dict(sorted(responses.items()))


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": MEANING.get(status, HTTPStatus(status).phrase),
        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _problem_schemas() -> dict[str, Any]:
    """``Problem`` and ``FieldError`` as JSON Schema (components of the document)."""
    _, components = msgspec.json.schema_components([Problem], ref_template="#/components/schemas/{name}")
    return components


class _Config(OpenAPIConfig):
    """Litestar's config, whose document runs ``finish`` on its JSON form.

    Litestar builds the document lazily, on the first request for it, and offers no hook
    after its paths are made; the document's own ``to_schema`` is the one place to finish it.
    """

    finish: Callable[[dict[str, Any]], dict[str, Any]]

    def to_openapi_schema(self) -> OpenAPI:
        base = super().to_openapi_schema()
        document = _Document(**{f.name: getattr(base, f.name) for f in fields(base)})
        document.finish = self.finish
        return document


@dataclass
class _Document(OpenAPI):
    finish: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def _exclude_fields(self) -> set[str]:
        return {"finish"}

    def to_schema(self) -> dict[str, Any]:
        schema = super().to_schema()
        return self.finish(schema) if self.finish else schema
