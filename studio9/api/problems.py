"""RFC 9457 problem details: the one place where errors become HTTP responses.

Domain errors (``studio9.errors``) and Litestar's own HTTP exceptions (unknown route,
wrong method, failed validation, oversized body, malformed JSON) all leave as
``application/problem+json`` with ``type``, ``title``, ``status``, ``detail`` and
``instance``, plus ``errors`` (per field) and ``request_id`` where known. Unexpected
exceptions are logged with their traceback and answered with a bare 500: no stack trace
or internal message reaches the client.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from studio9.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    MalformedRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    PreconditionFailed,
    RateLimited,
    Studio9Error,
    Unauthenticated,
)
from studio9.tracking.mlflow_face.protocol import error_response, is_mlflow_path
from studio9.urls import redact
from studio9.web.responses import PROBLEM_JSON

log = structlog.get_logger()

TYPE_PREFIX = "urn:studio9:problem:"
#: Details of a domain error that are answered as members of its problem document.
EXTENSIONS = ("dependents",)

# Most specific first: MalformedRequest is an InvalidInput.
STATUS_OF: dict[type[Studio9Error], int] = {
    MalformedRequest: 400,
    InvalidInput: 422,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    PreconditionFailed: 412,
    Conflict: 409,
    PayloadTooLarge: 413,
    RateLimited: 429,
    BackendUnavailable: 503,
}


def status_of(exc: Studio9Error) -> int:
    for kind, status in STATUS_OF.items():
        if isinstance(exc, kind):
            return status
    return 500


def status_for(exc: BaseException) -> int:
    """The HTTP status ``exc`` will be answered with."""
    if isinstance(exc, Studio9Error):
        return status_of(exc)
    if isinstance(exc, ValidationException):
        return 422 if any(isinstance(e, dict) and e.get("key") for e in exc.extra or ()) else 400
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def problem(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response[dict[str, Any]]:
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + phrase.lower().replace(" ", "-").replace("'", ""),
        "title": phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
    }
    if errors:
        body["errors"] = errors
    body.update(extensions or {})
    if request_id := request.scope.get("state", {}).get("request_id"):
        body["request_id"] = request_id
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _domain_error(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, Studio9Error)
    status = status_of(exc)
    errors = None
    if field := exc.details.get("field"):
        errors = [{"field": str(field), "message": exc.message}]
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="studio9"'
    # Extension members a domain error carries (``studio9.web.responses.Problem`` lists them).
    extensions = {key: exc.details[key] for key in EXTENSIONS if key in exc.details}
    return problem(request, status, exc.message, errors=errors, headers=headers, extensions=extensions)


def _http_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ValidationException):
        return _validation_problem(request, exc)
    headers = dict(exc.headers or {})
    if exc.status_code >= 500:
        log.error("request_failed", path=request.url.path, error=redact(repr(exc)), exc_info=exc)
    if exc.status_code == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="studio9"')
    detail = (
        exc.detail
        if exc.detail != HTTPStatus(exc.status_code).phrase
        else _DEFAULT_DETAIL.get(exc.status_code, exc.detail)
    )
    return problem(request, exc.status_code, detail, headers=headers)


_DEFAULT_DETAIL = {
    404: "no such resource",
    405: "method not allowed on this resource",
    413: "request body too large",
}


def _validation_problem(
    request: Request[Any, Any, Any], exc: ValidationException
) -> Response[dict[str, Any]]:
    entries = exc.extra if isinstance(exc.extra, list) else []
    if any(isinstance(e, dict) and e.get("key") == "data" and e.get("message") == "'data'" for e in entries):
        # Litestar's way of saying the body is absent: a KeyError for ``data``.
        return problem(request, 400, "request body is missing: send a JSON document")
    errors = [
        {"field": _field_name(e), "message": str(e.get("message")), "source": _source(e)}
        for e in entries
        if isinstance(e, dict) and e.get("key")
    ]
    if not errors:
        # Litestar raises a keyless validation error when the body cannot be decoded at all.
        return problem(
            request, 400, "request body is not valid JSON" if _is_decode_error(exc) else exc.detail
        )
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return problem(request, 422, f"invalid value for {fields}", errors=errors)


_MSGSPEC_PATH = re.compile(r"at `\$\.?([^`]*)`")
_MSGSPEC_MISSING = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def _field_name(entry: dict[str, Any]) -> str:
    """The offending field: msgspec names it inside the message when the key is the whole body."""
    key, message = str(entry.get("key")), str(entry.get("message", ""))
    if key != "data":
        return key
    path = _MSGSPEC_PATH.search(message)
    missing = _MSGSPEC_MISSING.search(message)
    parts = [p for p in (path.group(1) if path else "", missing.group(1) if missing else "") if p]
    return ".".join(parts) or "body"


def _source(entry: dict[str, Any]) -> str:
    source = str(entry.get("source", "body"))
    return source.removeprefix("ParamType.").lower()


def _is_decode_error(exc: ValidationException) -> bool:
    text = f"{exc.detail} {exc.extra}".lower()
    return "json" in text or "decod" in text or "malformed" in text


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("request_failed", path=request.url.path, error=redact(repr(exc)), exc_info=exc)
    return problem(request, 500, "internal error; the request id identifies it in the server logs")


def _mlflow_aware(handler: Any) -> Any:
    """``handler``, except under the MLflow face, whose clients read MLflow's error documents."""

    def handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        if is_mlflow_path(request.url.path):
            return error_response(request, exc)
        return handler(request, exc)  # type: ignore[no-any-return]

    return handle


def exception_handlers() -> ExceptionHandlersMap:
    """The app-level handler map (router 404/405 only reach app-level handlers)."""
    return {
        Studio9Error: _mlflow_aware(_domain_error),
        HTTPException: _mlflow_aware(_http_exception),
        Exception: _mlflow_aware(_unexpected),
    }
