"""The MLflow REST protocol's conventions, shared by every route of the MLflow face.

What unchanged mlflow clients expect (``docs/mlflow-protocol.md``):

- a GET carries its fields in the query string (repeated keys for lists, numbers as text);
  every other method a JSON object body, which old clients sometimes encode twice;
- success is exactly 200 with a JSON object (``{}`` when there is nothing to say);
- an error is ``{"error_code": ..., "message": ...}`` with MLflow's status for that code, never
  a 5xx for a client's mistake (clients retry 5xx for minutes);
- NaN and ±inf travel as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from studio9.errors import (
    BackendUnavailable,
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Studio9Error,
    Unauthenticated,
)
from studio9.json_depth import MAX_JSON_DEPTH, exceeds_depth
from studio9.urls import redact

log = structlog.get_logger()

#: Path prefixes the MLflow face serves: its errors take MLflow's shape, not RFC 9457's.
MLFLOW_PREFIXES: Final = (
    "/api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/ajax-api/3.0/mlflow",
)
JSON: Final = "application/json"

INVALID_PARAMETER_VALUE: Final = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST: Final = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS: Final = "RESOURCE_ALREADY_EXISTS"
ENDPOINT_NOT_FOUND: Final = "ENDPOINT_NOT_FOUND"
NOT_IMPLEMENTED: Final = "NOT_IMPLEMENTED"

#: MLflow's HTTP status per error code (``mlflow/exceptions.py``); any other code is a 500.
STATUS_OF_CODE: Final = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    "BAD_REQUEST": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    "RESOURCE_CONFLICT": 409,
    "REQUEST_LIMIT_EXCEEDED": 429,
    NOT_IMPLEMENTED: 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "INTERNAL_ERROR": 500,
}

# Most specific first.
_CODE_OF_ERROR: Final[tuple[tuple[type[Studio9Error], str], ...]] = (
    (InvalidInput, INVALID_PARAMETER_VALUE),
    (PayloadTooLarge, INVALID_PARAMETER_VALUE),
    (Unauthenticated, "UNAUTHENTICATED"),
    (PermissionDenied, "PERMISSION_DENIED"),
    (NotFound, RESOURCE_DOES_NOT_EXIST),
    (Conflict, "RESOURCE_CONFLICT"),
    (RateLimited, "REQUEST_LIMIT_EXCEEDED"),
    (BackendUnavailable, "TEMPORARILY_UNAVAILABLE"),
)

_ENCODER = msgspec.json.Encoder()
_EMPTY: Final = b"{}"


class MlflowError(InvalidInput):
    """An error the face raises with an explicit MLflow code (default INVALID_PARAMETER_VALUE)."""

    def __init__(self, message: str, code: str = INVALID_PARAMETER_VALUE, **details: Any) -> None:
        super().__init__(message, **details)
        self.code = code


def is_mlflow_path(path: str) -> bool:
    return path.startswith(MLFLOW_PREFIXES) or path.startswith("/api/2.0/mlflow-artifacts")


# -- answers --------------------------------------------------------------------------------------


def ok(body: Mapping[str, Any] | None = None) -> Response[bytes]:
    """A 200 with ``body`` as JSON (``{}`` when None or empty)."""
    return Response(_ENCODER.encode(body) if body else _EMPTY, status_code=200, media_type=JSON)


def error(code: str, message: str, status: int | None = None) -> Response[bytes]:
    return Response(
        _ENCODER.encode({"error_code": code, "message": message}),
        status_code=status or STATUS_OF_CODE.get(code, 500),
        media_type=JSON,
    )


def error_response(request: Request[Any, Any, Any], exc: BaseException) -> Response[bytes]:
    """Any exception raised under the MLflow face, as MLflow's error document."""
    if isinstance(exc, Studio9Error):
        code = getattr(exc, "code", None) or next(
            (c for kind, c in _CODE_OF_ERROR if isinstance(exc, kind)), "INTERNAL_ERROR"
        )
        answer = error(code, exc.message)
        if isinstance(exc, Unauthenticated):
            answer.headers["WWW-Authenticate"] = 'Bearer realm="studio9"'
        return answer
    if isinstance(exc, ValidationException):
        return error(INVALID_PARAMETER_VALUE, str(exc.detail))
    if isinstance(exc, HTTPException):
        if exc.status_code == 404:
            return error(ENDPOINT_NOT_FOUND, f"no MLflow endpoint {request.method} {request.url.path}")
        if exc.status_code == 405:
            return error(ENDPOINT_NOT_FOUND, f"no MLflow endpoint {request.method} {request.url.path}", 405)
        if exc.status_code < 500:
            return error("BAD_REQUEST", str(exc.detail), exc.status_code)
    log.error("request_failed", path=request.url.path, error=redact(repr(exc)), exc_info=exc)
    return error("INTERNAL_ERROR", "internal error; the request id identifies it in the server logs")


# -- request fields -------------------------------------------------------------------------------


async def fields(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The request's fields: the query string of a GET (a key given once is a string, given
    more than once a list), else the JSON object body (``{}`` when there is none)."""
    if request.method == "GET":
        found: dict[str, Any] = {}
        for key, value in request.query_params.multi_items():
            if key in found:
                previous = found[key]
                found[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                found[key] = value
        return found
    raw = await request.body()
    if not raw.strip():
        return {}
    if exceeds_depth(raw):
        raise MlflowError(f"request body is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = msgspec.json.decode(raw)
        if isinstance(body, str):  # some old clients encode the document twice
            body = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise MlflowError("request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise MlflowError("request body must be a JSON object")
    return body


def required(found: Mapping[str, Any], name: str) -> Any:
    value = found.get(name)
    if value is None or value == "":
        raise MlflowError(
            f"Missing value for required parameter '{name}'. See the API docs for more information "
            "about request parameters."
        )
    return value


def text(
    found: Mapping[str, Any], name: str, *, default: str | None = None, need: bool = False
) -> str | None:
    """A string field (``need``: present and not empty)."""
    value = required(found, name) if need else found.get(name, default)
    if value is None:
        return default
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected a string")
    return str(value)


def integer(
    found: Mapping[str, Any], name: str, *, default: int | None = None, need: bool = False
) -> int | None:
    """An integer field; numbers may come as text (query strings, int64 in JSON)."""
    value = required(found, name) if need else found.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected an integer")
    try:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise MlflowError(
            f"Invalid value {value!r} for parameter '{name}' supplied: expected an integer"
        ) from None


def boolean(found: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = found.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected true or false")


def strings(found: Mapping[str, Any], name: str) -> list[str]:
    """A repeated string field (absent: empty)."""
    value = found.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str | int) and not isinstance(v, bool) for v in items):
        raise MlflowError(f"Invalid value for parameter '{name}' supplied: expected a list of strings")
    return [str(v) for v in items]


def key_values(found: Mapping[str, Any], name: str) -> dict[str, str]:
    """A repeated ``{key, value}`` field as a dict (absent: empty)."""
    value = found.get(name) or []
    if not isinstance(value, list):
        raise MlflowError(f"Invalid value for parameter '{name}' supplied: expected a list")
    out: dict[str, str] = {}
    for i, entry in enumerate(value):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise MlflowError(f"Missing value for required parameter '{name}[{i}].key'.")
        raw = entry.get("value", "")
        out[entry["key"]] = raw if isinstance(raw, str) else str(raw)
    return out


def number(value: Any, name: str) -> float:
    """A double as the protobuf JSON mapping sends it: a number or ``NaN``/``Infinity``/``-Infinity``."""
    if isinstance(value, bool):
        raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        special = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
        if value in special:
            return special[value]
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError(f"Invalid value {value!r} for parameter '{name}' supplied: expected a number")


# -- encoding -------------------------------------------------------------------------------------


def double(value: float) -> float | str:
    """A double as MLflow's server sends it: NaN and ±inf as strings."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in tags.items()]
