"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models``) and ``/api/3.0/mlflow/server-info``.

A 3.x client's ``log_model`` creates a logged model (pending), uploads its files under the model's
``artifact_uri``, then finalizes it (``docs/mlflow-protocol.md`` §2.5, §3.4); ``runs:/<run>/<name>``
is resolved by searching the run's logged models by name. Server-info tells clients what the
artifact service does not offer (multipart, presigned transfers), so they never ask (§3.5).
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from litestar import Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from studio9.auth.domain import Principal
from studio9.tracking.domain import InvalidTrackingInput, LoggedModel, LoggedModelStatus, Param
from studio9.tracking.mlflow_face.protocol import (
    fields,
    integer,
    key_values,
    ok,
    required,
    strings,
    tag_list,
    text,
)
from studio9.tracking.service import TrackingService
from studio9.tracking.tokens import tokenize

MODELS: Final = "/api/2.0/mlflow/logged-models"
AJAX_MODELS: Final = "/ajax-api/2.0/mlflow/logged-models"
DEFAULT_SEARCH_RESULTS: Final = 50  # the proto's default
#: What server-info answers: no multipart or presigned transfers, no workspaces.
SERVER_INFO: Final = {
    "store_type": "SqlStore",
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "artifacts_presigned_only": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {},
}
#: The proto's numbers of the statuses (clients send names, but the server takes both).
_STATUS_NUMBERS: Final = {
    "1": LoggedModelStatus.PENDING,
    "2": LoggedModelStatus.READY,
    "3": LoggedModelStatus.UPLOAD_FAILED,
}
#: Filter attributes this server searches by, under their accepted spellings.
_FILTER_ATTRIBUTES: Final = {"name": "name", "source_run_id": "source_run_id"}
_ATTRIBUTE_PREFIXES: Final = ("attributes.", "attribute.", "attr.")
#: Data added to an audited create (tags, params) leaves no audit event; a search is a read.
_DATA: Final = {"audit": False}
_READS: Final = {"read_only": True}


def _both(path: str) -> list[str]:
    return [f"{MODELS}{path}", f"{AJAX_MODELS}{path}"]


def logged_model_json(model: LoggedModel) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel`` message (``info`` and ``data``)."""
    info: dict[str, Any] = {
        "model_id": model.id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "creation_timestamp_ms": model.creation_timestamp,
        "last_updated_timestamp_ms": model.last_updated_timestamp,
        "artifact_uri": model.artifact_location,
        "status": model.status.value,
        "model_type": model.model_type,
        "tags": tag_list(model.tags),
    }
    if model.source_run_id:
        info["source_run_id"] = model.source_run_id
    return {"info": info, "data": {"params": tag_list(model.params), "metrics": []}}


@post(_both(""), include_in_schema=False, status_code=200)
async def create_logged_model(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    found = await fields(request)
    model = await tracking_service.create_logged_model(
        principal,
        text(found, "experiment_id", need=True) or "",
        # MLflow's server names an unnamed model itself.
        name=text(found, "name") or f"model-{secrets.token_hex(4)}",
        source_run_id=text(found, "source_run_id") or None,
        model_type=text(found, "model_type") or "",
        params=key_values(found, "params"),
        tags=key_values(found, "tags"),
    )
    return ok({"model": logged_model_json(model)})


@get(_both("/{model_id:str}"), include_in_schema=False)
async def get_logged_model(
    model_id: FromPath[str],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    return ok({"model": logged_model_json(await tracking_service.logged_model(principal, model_id))})


@patch(_both("/{model_id:str}"), include_in_schema=False, status_code=200)
async def finalize_logged_model(
    request: Request[Any, Any, Any],
    model_id: FromPath[str],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    status = _status(text(await fields(request), "status", need=True) or "")
    model = await tracking_service.finalize_logged_model(principal, model_id, status)
    return ok({"model": logged_model_json(model)})


@patch(_both("/{model_id:str}/tags"), include_in_schema=False, status_code=200, opt=_DATA)
async def set_logged_model_tags(
    request: Request[Any, Any, Any],
    model_id: FromPath[str],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    tags = key_values(await fields(request), "tags")
    await tracking_service.set_logged_model_tags(principal, model_id, tags)
    return ok()


@delete(_both("/{model_id:str}/tags/{key:path}"), include_in_schema=False, status_code=200, opt=_DATA)
async def delete_logged_model_tag(
    model_id: FromPath[str],
    key: FromPath[str],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    await tracking_service.delete_logged_model_tag(principal, model_id, key.removeprefix("/"))
    return ok()


@post(_both("/{model_id:str}/params"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_logged_model_params(
    request: Request[Any, Any, Any],
    model_id: FromPath[str],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    params = [Param(k, v) for k, v in key_values(await fields(request), "params").items()]
    await tracking_service.log_logged_model_params(principal, model_id, params)
    return ok()


@post(_both("/search"), include_in_schema=False, status_code=200, opt=_READS)
async def search_logged_models(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
) -> Response[bytes]:
    found = await fields(request)
    experiment_ids = strings(found, "experiment_ids") or required(found, "experiment_ids")
    wanted = parse_logged_model_filter(text(found, "filter") or "")
    if wanted is None:
        return ok()  # the filter contradicts itself: nothing matches
    models, next_token = await tracking_service.search_logged_models(
        principal,
        experiment_ids,
        name=wanted.get("name"),
        source_run_id=wanted.get("source_run_id"),
        max_results=integer(found, "max_results", default=DEFAULT_SEARCH_RESULTS) or DEFAULT_SEARCH_RESULTS,
        page_token=text(found, "page_token") or None,
    )
    body: dict[str, Any] = {}
    if models:
        body["models"] = [logged_model_json(m) for m in models]
    if next_token:
        body["next_page_token"] = next_token
    return ok(body)


@get(["/api/3.0/mlflow/server-info", "/ajax-api/3.0/mlflow/server-info"], include_in_schema=False)
async def server_info() -> Response[bytes]:
    return ok(SERVER_INFO)


# -- helpers --------------------------------------------------------------------------------------


def parse_logged_model_filter(filter_text: str) -> dict[str, str] | None:
    """The attributes a logged-model filter asks for: ``name = '…'`` and ``source_run_id = '…'``
    comparisons joined by ``AND`` (optionally as ``attributes.name``); None when it asks for two
    values of one attribute. Raises InvalidTrackingInput for anything else."""
    tokens = tokenize(filter_text)
    wanted: dict[str, str] = {}
    contradicts = False
    at = 0
    while at < len(tokens):
        if at:
            if not tokens[at].is_("AND"):
                raise _unsupported(filter_text)
            at += 1
        clause = tokens[at : at + 3]
        if len(clause) < 3:
            raise _unsupported(filter_text)
        name, op, value = clause
        literal = value.string()
        attribute = _FILTER_ATTRIBUTES.get(_strip_prefix(name.text.lower())) if name.kind == "name" else None
        if attribute is None or op.text not in {"=", "=="} or literal is None:
            raise _unsupported(filter_text)
        contradicts |= wanted.setdefault(attribute, literal) != literal
        at += 3
    return None if contradicts else wanted


def _strip_prefix(name: str) -> str:
    for prefix in _ATTRIBUTE_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def _unsupported(filter_text: str) -> InvalidTrackingInput:
    return InvalidTrackingInput(
        f"Invalid filter '{filter_text}': this server searches logged models by name = '...' and "
        "source_run_id = '...', joined by AND",
        field="filter",
    )


def _status(value: str) -> LoggedModelStatus:
    try:
        return _STATUS_NUMBERS.get(value) or LoggedModelStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in LoggedModelStatus)
        raise InvalidTrackingInput(
            f"Invalid value '{value}' for parameter 'status' supplied: expected one of {known}",
            field="status",
        ) from None


ROUTES = [
    create_logged_model,
    search_logged_models,
    get_logged_model,
    finalize_logged_model,
    set_logged_model_tags,
    delete_logged_model_tag,
    log_logged_model_params,
    server_info,
]
