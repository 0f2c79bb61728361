"""What the routes accept and answer that Litestar cannot see, for the OpenAPI document.

Litestar derives the document from the routes' signatures. Three things it gets short:

* **Bodies are decoded and encoded by msgspec**, so their schemas are msgspec's own
  (``msgspec.json.schema_components``): Litestar's rendering loses ``additionalProperties:
  false`` of structs that forbid unknown fields, and bounds of zero.
* **Checks made past the decoder** — a username's characters, a password's length, config names
  and tags, the registered job types and their params, cursors — come from the constants of the
  module that makes each check. Where a check is code rather than a constant (a queue URL, an
  upload's name, a time), the form it accepts is written here, with the check named beside it.
* **Bodies a route streams** (an upload in, a download or an export out) are bytes.

The conformance test (``tests/integration/test_openapi_conformance.py``) holds the document and
the routes together: a request these schemas allow that a route refuses fails it.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec
from litestar.routes import HTTPRoute

from studio9.auth.domain import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_PATTERN
from studio9.config.domain import MAX_TAGS, NAME_PATTERN, TAG_PATTERN
from studio9.jobs.service import MAX_ATTEMPTS_LIMIT
from studio9.messaging.streams.domain import HTTP_SOURCE, PARAM_NAME, STREAM_ID
from studio9.ml.domain import ALIAS_PATTERN
from studio9.predictions.domain import IMPORT_ID
from studio9.web.paging import CURSOR_DESCRIPTION, ID_CURSOR, SEARCH_CURSOR

if TYPE_CHECKING:
    from litestar.routes import BaseRoute

    from studio9.jobs.ports import JobType

REF = "#/components/schemas/{name}"
_BINARY: Final = {"type": "string", "format": "binary"}


def _exactly(pattern: str) -> dict[str, Any]:
    return {"type": "string", "pattern": f"^(?:{pattern})$"}


# Years 0001-9999 (Python's datetime), upper-case ``T``/``Z``, no leap second: the part of
# RFC 3339 that ``datetime.fromisoformat`` reads; ``format`` keeps months, days and offsets real.
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_TIME_OR_DATE: Final = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"},
        {
            "type": "string",
            "format": "date-time",
            "pattern": (
                f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-5][0-9]"
                r"(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
            ),
        },
    ]
}


# The queue URLs the stream sources' adapters take (``adapters/stream_source/``: the SQS queue
# name rule and the options each knows), in the common form; the adapters check the rest.
_SQS_SOURCE = r"sqs://[A-Za-z0-9_-]{1,80}(?:\.fifo)?(?:\?region=[a-z0-9-]{1,32})?"
_AMQP_SOURCE = (
    r"amqp://(?:[A-Za-z0-9._~-]+:[A-Za-z0-9._~-]+@)?[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?"
    r"(?::[1-9][0-9]{0,3})?(?:/(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*)?\?queue=[A-Za-z0-9._:-]{1,255}(?:&declare=(?:true|false))?"
)


def _cursor(pattern: str) -> dict[str, Any]:
    return {"description": CURSOR_DESCRIPTION, "schema": _exactly(pattern)}


#: Each list route's cursor: the key its service pages by.
CURSORS: Mapping[str, dict[str, Any]] = {
    "ListUsers": _cursor(ID_CURSOR),
    "ListFiles": _cursor(ID_CURSOR),
    "ListStreamJobs": _cursor(ID_CURSOR),
    "ListStreams": _cursor(STREAM_ID.pattern),
    "ListConfigSettings": _cursor(NAME_PATTERN.pattern),
    "ListJobs": _cursor(f"{ID_CURSOR}|{SEARCH_CURSOR}"),
    "ListPredictions": _cursor(f"{IMPORT_ID}-[0-9]{{10}}"),
}

#: Parameters named alike on every operation under a path.
BY_PREFIX: Mapping[str, Mapping[str, dict[str, Any]]] = {
    "/api/v1/services/{service}/config-settings": {
        "service": {"schema": _exactly(NAME_PATTERN.pattern)},
        "name": {"schema": _exactly(NAME_PATTERN.pattern)},
        # ``studio9.config.service._version_of``: ``*``, or the ETag a read answered.
        "if-match": {
            "description": "`*`, or the `ETag` of a read: the change is made only if it is still current.",
            "schema": _exactly(r'\*|(?:W/)?"[0-9]{1,18}"'),
        },
    },
    "/api/v1/streams/{stream_id}": {"stream_id": {"schema": _exactly(STREAM_ID.pattern)}},
    "/api/v1/predictions": {"from": {"schema": _TIME_OR_DATE}, "to": {"schema": _TIME_OR_DATE}},
    # ``latest`` (reserved: the newest version) reads and predicts; setting it is refused (422).
    "/api/v1/models/{name}/aliases/{alias}": {
        "alias": {"schema": _exactly(f"latest|{ALIAS_PATTERN.pattern}")}
    },
    "/api/v1/models/{name}/versions/{version}": {"version": {"schema": {"type": "integer", "minimum": 1}}},
}

#: The import reads the skops file as the raw body.
MODEL_BODY: Final = {
    "required": True,
    "description": "The model's skops file (`skops.io.dump`), as the raw body.",
    "content": {"application/octet-stream": {"schema": _BINARY}},
}

#: The upload reads its body as a stream, so Litestar sees none to document.
UPLOAD_BODY: Final = {
    "required": True,
    "description": (
        "The file's bytes as the raw body (its Content-Type is kept as the file's), or a "
        "`multipart/form-data` body with one part named `file`."
    ),
    "content": {
        "application/octet-stream": {"schema": _BINARY},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {"file": _BINARY},
                "additionalProperties": False,
            }
        },
    },
}
# The name may also come from a filename (Content-Disposition, or the part's), an alternative
# the document cannot express; a letter, digit or ``_`` outside any ``/`` survives
# ``studio9.files.domain.clean_name``.
UPLOAD_NAME: Final = {
    "required": True,
    "description": "The file's name (its base name is kept).",
    "schema": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": r"^[^/\\]*\w[^/\\]*$"},
}

#: Streamed answers of a known media type (any other stream is documented as ``*/*``).
STREAMED: Mapping[str, tuple[str, ...]] = {
    "ExportPredictions": ("text/csv", "application/vnd.apache.parquet"),
}


def structs_of(routes: Iterable[BaseRoute]) -> list[type[msgspec.Struct]]:
    """Every msgspec struct a route takes or answers (its body, its answers, their fields')."""
    found: dict[type[msgspec.Struct], None] = {}
    for route in routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            signature = handler.parsed_fn_signature
            annotations = [signature.return_type.annotation]
            if body := signature.parameters.get("data"):
                annotations.append(body.annotation)
            annotations += [spec.data_container for spec in (handler.responses or {}).values()]
            for annotation in annotations:
                found.update(dict.fromkeys(_structs_in(annotation)))
    return list(found)


def _structs_in(annotation: Any) -> Iterable[type[msgspec.Struct]]:
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        yield annotation
    for argument in typing.get_args(annotation):
        yield from _structs_in(argument)


def describe(
    document: dict[str, Any], *, structs: Iterable[type[msgspec.Struct]], job_types: Iterable[JobType] | None
) -> None:
    """Put the facts above into ``document``, the JSON form of the OpenAPI document.

    ``job_types`` None (a document made before the app started): ``type`` and ``job_type``
    stay any string.
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    _, components = msgspec.json.schema_components(tuple(structs), ref_template=REF)
    schemas.update(components)
    _checked_fields(schemas)
    if job_types is not None:
        _job_types(schemas, list(job_types))
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                _describe(path, operation)


def _checked_fields(schemas: dict[str, Any]) -> None:
    """Body fields checked past the decoder, by the modules named in their values."""
    user = schemas["UserIn"]["properties"]
    user["username"]["pattern"] = f"^{USERNAME_PATTERN.pattern}$"
    _string(user["password"]).update(minLength=PASSWORD_MIN_LENGTH, maxLength=PASSWORD_MAX_LENGTH)
    tags = schemas["SettingIn"]["properties"]["tags"]
    tags.update(maxItems=MAX_TAGS, items=_exactly(TAG_PATTERN.pattern))
    for name in ("StreamIn", "StreamPatch"):
        fields = schemas[name]["properties"]
        fields["item_param"]["pattern"] = f"^{PARAM_NAME.pattern}$"
        fields["params"]["description"] = "A template copied into every job; it may not set `item_param`."
        fields["source"].update(
            description=(
                f"`{HTTP_SOURCE}` (items are pushed), or a queue to read them from where this server "
                "has the `cloud` extras: `sqs://queue?region=…` or `amqp://user:pass@host/vhost?queue=…`."
            ),
            pattern=f"^(?:{HTTP_SOURCE}|{_SQS_SOURCE}|{_AMQP_SOURCE})$",
        )
    # A table is made from an uploaded file or from SQL: exactly one of the two.
    schemas["TableIn"]["oneOf"] = [{"required": ["file"]}, {"required": ["sql"]}]
    submit = schemas["SubmitIn"]["properties"]
    submit["priority"].update(minimum=-100, maximum=100)
    _integer(submit["max_attempts"]).update(minimum=1, maximum=MAX_ATTEMPTS_LIMIT)


def _job_types(schemas: dict[str, Any], job_types: list[JobType]) -> None:
    """A submitted job names a registered type and carries that type's params."""
    names = [t.name for t in job_types]
    _, params = msgspec.json.schema_components(tuple(t.params for t in job_types), ref_template=REF)
    schemas.update(params)
    base = schemas["SubmitIn"]
    variants = []
    for job_type in job_types:
        needs_params = bool(params[job_type.params.__name__].get("required"))
        variants.append(
            {
                **base,
                "title": f"SubmitIn[{job_type.name}]",
                "properties": {
                    **base["properties"],
                    "type": {"const": job_type.name},
                    "params": {"$ref": REF.format(name=job_type.params.__name__)},
                },
                "required": ["type", "params"] if needs_params else ["type"],
            }
        )
    schemas["SubmitIn"] = {
        "title": "SubmitIn",
        "description": "A job of a registered type (`GET /api/v1/job-types`) with that type's params.",
        "oneOf": variants,
    }
    for name in ("StreamIn", "StreamPatch"):
        schemas[name]["properties"]["job_type"] = {"type": "string", "enum": names}


def _describe(path: str, operation: dict[str, Any]) -> None:
    op_id = operation.get("operationId", "")
    rules = {
        name: rule
        for prefix, by_name in BY_PREFIX.items()
        if path.startswith(prefix)
        for name, rule in by_name.items()
    }
    if op_id in CURSORS:
        rules["cursor"] = CURSORS[op_id]
    if op_id == "UploadFile":
        operation["requestBody"] = UPLOAD_BODY
        rules["name"] = UPLOAD_NAME
    if op_id == "ImportModel":
        operation["requestBody"] = MODEL_BODY
    for parameter in operation.get("parameters", []):
        _not_null(parameter)
        if rule := rules.get(parameter["name"]):
            parameter.update(rule)
    for code, response in operation.get("responses", {}).items():
        if code.startswith("2"):
            _streamed(response, STREAMED.get(op_id, ("*/*",)))


def _not_null(parameter: dict[str, Any]) -> None:
    """An absent parameter is None to the route; a query string cannot send ``null``."""
    schema = parameter.get("schema", {})
    options = schema.get("oneOf", [])
    kept = [o for o in options if o.get("type") != "null"]
    if len(options) == 2 and len(kept) == 1:
        del schema["oneOf"]
        parameter["schema"] = {**kept[0], **schema}


def _streamed(response: dict[str, Any], media_types: tuple[str, ...]) -> None:
    # Litestar documents a Stream (or a Redirect) as JSON of any shape; it is bytes.
    content = response.get("content", {})
    if content.get("application/json", {}).get("schema") == {}:
        response["content"] = {media_type: {"schema": _BINARY} for media_type in media_types}


def _string(schema: dict[str, Any]) -> dict[str, Any]:
    return _branch(schema, "string")


def _integer(schema: dict[str, Any]) -> dict[str, Any]:
    return _branch(schema, "integer")


def _branch(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    """The part of ``schema`` (itself, or one of its ``anyOf``) for values of type ``kind``."""
    if schema.get("type") == kind:
        return schema
    return next(option for option in schema.get("anyOf", []) if option.get("type") == kind)
