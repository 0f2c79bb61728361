"""What a route declares about its own responses, for the OpenAPI document.

Statuses a route's own code raises (403, 409, 412, 429, a second success code) are declared
next to the route: ``responses=problems(403, 409) | also(202, JobOut, "being stopped")``. The
statuses that follow from a route's shape are added to every operation by the app
(``studio9.api.openapi``). Every error is a ``Problem`` (RFC 9457) served as
``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import msgspec
from litestar.openapi import ResponseSpec

PROBLEM_JSON = "application/problem+json"

#: What each error status means on this API (the problem's ``detail`` says the particulars).
MEANING: Mapping[int, str] = {
    400: "The request cannot be parsed: malformed JSON, too deeply nested, or a broken multipart body.",
    401: "No bearer token, or one that is unknown, expired or revoked.",
    403: "The token's user lacks the role this needs (admin).",
    404: "No such resource, or one that belongs to someone the caller cannot see.",
    409: "The resource's current state forbids the change.",
    412: "The resource changed since it was read (If-Match, or a concurrent change).",
    413: "The request body is over its limit.",
    422: "A parameter or body field is invalid; `errors[]` names each one.",
    429: "Too many failed logins: wait `Retry-After` seconds.",
    500: "An unexpected error; `request_id` finds it in the server logs.",
    503: "A backend (database, broker, index, blob store, sink) does not answer; retry later.",
}

#: The second success of a download: where the blob store can presign (S3), the bytes are there.
REDIRECT = "A redirect (`Location`) to a short-lived URL of the blob store (S3, `STUDIO9_BLOB_REDIRECTS`)."


class FieldError(msgspec.Struct, omit_defaults=True):
    """One invalid field of a 422 answer."""

    field: str
    message: str
    source: str | msgspec.UnsetType = msgspec.UNSET


class Dependent(msgspec.Struct, omit_defaults=True):
    """An asset derived from the one a refused delete names (kind and name only if the caller
    may read it)."""

    id: str
    kind: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem document: every error this API answers has this shape.

    Extension members: ``errors`` (422: each invalid field), ``request_id`` (finds the request
    in the server logs) and ``dependents`` (a delete refused with 409 because other assets were
    derived from the asset: every one of them).
    """

    type: str
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | msgspec.UnsetType = msgspec.UNSET
    request_id: str | msgspec.UnsetType = msgspec.UNSET
    dependents: list[Dependent] | msgspec.UnsetType = msgspec.UNSET


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` for the error statuses a route's own code raises, each a ``Problem``."""
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=MEANING.get(status, HTTPStatus(status).phrase),
            generate_examples=False,
        )
        for status in statuses
    }


def also(status: int, body: Any, description: str) -> dict[int, ResponseSpec]:
    """``responses=`` for a second success status (``body`` None: no content, e.g. a redirect)."""
    return {status: ResponseSpec(data_container=body, description=description, generate_examples=False)}
