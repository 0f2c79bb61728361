"""The MLflow face's run routes (``/api/2.0/mlflow/runs/*``, ``metrics/get-history``;
``docs/mlflow-protocol.md`` §2.2-2.3, §2.8-2.9, §3.2), over ``TrackingService``.

Requests are read here (``run_id`` or the older ``run_uuid``; NaN and ±inf as strings; numbers
as text), checked by the service and its store (key names, lengths, batch sizes, immutable
params), and answered in MLflow's shapes (``encode``). Creating, updating, deleting and restoring
a run are audited; the data logged to a run (params, metrics, tags, inputs, outputs, model
history) is not, one event per data point being noise (``opt={"audit": False}``). Searches are
POSTs that only read (``read_only``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency

from studio9.auth.domain import Principal
from studio9.tracking.domain import (
    DatasetInput,
    LifecycleStage,
    Metric,
    ModelOutput,
    Param,
    RunStatus,
    RunTag,
    ViewType,
)
from studio9.tracking.mlflow_face.encode import metric_json, run_info_json, run_json
from studio9.tracking.mlflow_face.protocol import (
    MlflowError,
    fields,
    integer,
    key_values,
    number,
    ok,
    strings,
    text,
)
from studio9.tracking.service import TrackingService

MLFLOW: Final = "/api/2.0/mlflow"
AJAX: Final = "/ajax-api/2.0/mlflow"
_DATA: Final = {"audit": False}
_READS: Final = {"read_only": True}
#: ``runs/search``'s default page (MLflow's proto default); the store refuses more than 50000.
DEFAULT_MAX_RESULTS: Final = 1000
#: A metric history without ``max_results`` comes whole, as from MLflow's server: the store's
#: largest page.
HISTORY_ALL: Final = 1_000_000
#: The run tag MLflow 2 clients' ``log_model`` appends each model to (a JSON list).
LOGGED_MODELS_TAG: Final = "mlflow.log-model.history"
_MODEL_FIELDS: Final = ("artifact_path", "flavors", "utc_time_created", "run_id")
_MODEL_TAG_KEYS: Final = ("run_id", "utc_time_created", "artifact_path", "model_uuid")
#: ``RunStatus`` and ``ViewType`` by MLflow's enum numbers, which the server also takes.
_STATUS_NUMBERS: Final = {"1": "RUNNING", "2": "SCHEDULED", "3": "FINISHED", "4": "FAILED", "5": "KILLED"}
_VIEW_NUMBERS: Final = {"1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}

Found = Mapping[str, Any]
# Every handler takes the request, the caller and the service: short names keep them on one line.
Req = Request[Any, Any, Any]
Caller = NamedDependency[Principal]
Tracking = NamedDependency[TrackingService]


def _paths(suffix: str) -> list[str]:
    return [f"{MLFLOW}/{suffix}", f"{AJAX}/{suffix}"]


def _run_id(found: Found) -> str:
    """The run a request names: ``run_id``, else ``run_uuid`` (older clients send both)."""
    run_id = text(found, "run_id") or text(found, "run_uuid")
    if not run_id:
        raise MlflowError(
            "Missing value for required parameter 'run_id'. See the API docs for more information "
            "about request parameters."
        )
    return run_id


def _missing(path: str) -> MlflowError:
    return MlflowError(f"Missing value for required parameter '{path}'.")


def _metric(entry: Any, path: str = "") -> Metric:
    """One metric point of a request: key, value and timestamp required. ``path`` names a batch's
    entry in errors (``metrics[0]``); a ``log-metric`` request's fields are named bare."""

    def at(name: str) -> str:
        return f"{path}.{name}" if path else name

    if not isinstance(entry, dict):
        raise MlflowError(f"Invalid value for parameter '{path}' supplied: expected an object")
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise _missing(at("key"))
    for name in ("value", "timestamp"):
        if entry.get(name) in (None, ""):
            raise _missing(at(name))
    model_id = entry.get("model_id") or None
    if model_id is not None and not isinstance(model_id, str):
        raise MlflowError(f"Invalid value for parameter '{at('model_id')}' supplied: expected a string")
    return Metric(
        key,
        number(entry["value"], at("value")),
        integer(entry, "timestamp", default=0) or 0,
        integer(entry, "step", default=0) or 0,
        model_id,
    )


def _pairs(found: Found, name: str) -> list[tuple[str, str]]:
    """A repeated ``{key, value}`` field in order, duplicates kept (a batch naming a param twice
    is refused by the store); values that are not strings are written as text, as clients do."""
    entries = found.get(name) or []
    if not isinstance(entries, list):
        raise MlflowError(f"Invalid value for parameter '{name}' supplied: expected a list")
    out: list[tuple[str, str]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
            raise _missing(f"{name}[{i}].key")
        raw = entry.get("value")
        out.append((entry["key"], "" if raw is None else raw if isinstance(raw, str) else str(raw)))
    return out


# -- runs -----------------------------------------------------------------------------------------


@post(_paths("runs/create"), include_in_schema=False, status_code=200)
async def create_run(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """A ``mlflow.parentRunId`` tag makes it a nested run; experiment ``"0"`` is the caller's
    Default."""
    found = await fields(request)
    record = await tracking_service.create_run(
        principal,
        text(found, "experiment_id") or "0",
        name=text(found, "run_name", default="") or "",
        start_time=integer(found, "start_time"),
        tags=key_values(found, "tags"),
        user_name=text(found, "user_id"),
    )
    return ok({"run": run_json(record)})


@get(_paths("runs/get"), include_in_schema=False)
async def get_run(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    found = await fields(request)
    return ok({"run": run_json(await tracking_service.run(principal, _run_id(found)))})


@post(_paths("runs/update"), include_in_schema=False, status_code=200)
async def update_run(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """An unknown ``status`` is ignored, as MLflow's server does (observed: 200, unchanged)."""
    found = await fields(request)
    written = text(found, "status")
    written = _STATUS_NUMBERS.get(written or "", written) or ""
    status = RunStatus(written) if written in RunStatus.__members__ else None
    run = await tracking_service.update_run(
        principal,
        _run_id(found),
        status=status,
        end_time=integer(found, "end_time"),
        name=text(found, "run_name") or None,
    )
    return ok({"run_info": run_info_json(run)})


async def _set_lifecycle(
    request: Req, principal: Principal, service: TrackingService, stage: LifecycleStage
) -> Response[bytes]:
    found = await fields(request)
    await service.set_lifecycle(principal, _run_id(found), stage)
    return ok()


@post(_paths("runs/delete"), include_in_schema=False, status_code=200)
async def delete_run(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Marks the run deleted (it stays, restorable, until its experiment goes)."""
    return await _set_lifecycle(request, principal, tracking_service, LifecycleStage.DELETED)


@post(_paths("runs/restore"), include_in_schema=False, status_code=200)
async def restore_run(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    return await _set_lifecycle(request, principal, tracking_service, LifecycleStage.ACTIVE)


# -- data -----------------------------------------------------------------------------------------


@post(_paths("runs/log-parameter"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_param(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Logging a param again with its value is fine; with another one is 400 (params are
    immutable). A value over 6000 characters is cut, as MLflow's server does."""
    found = await fields(request)
    key = text(found, "key", need=True) or ""
    param = Param(key, text(found, "value", default="") or "")
    await tracking_service.log_batch(principal, _run_id(found), params=[param])
    return ok()


@post(_paths("runs/log-metric"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_metric(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    found = await fields(request)
    metric = _metric(found)
    await tracking_service.log_batch(principal, _run_id(found), metrics=[metric])
    return ok()


@post(_paths("runs/set-tag"), include_in_schema=False, status_code=200, opt=_DATA)
async def set_tag(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Tags overwrite; ``mlflow.runName`` renames the run."""
    found = await fields(request)
    tag = RunTag(text(found, "key", need=True) or "", text(found, "value", default="") or "")
    await tracking_service.log_batch(principal, _run_id(found), tags=[tag])
    return ok()


@post(_paths("runs/delete-tag"), include_in_schema=False, status_code=200, opt=_DATA)
async def delete_tag(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    found = await fields(request)
    await tracking_service.delete_tag(principal, _run_id(found), text(found, "key", need=True) or "")
    return ok()


@post(_paths("runs/log-batch"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_batch(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """All of the batch or nothing of it (the store checks it whole first)."""
    found = await fields(request)
    entries = found.get("metrics") or []
    if not isinstance(entries, list):
        raise MlflowError("Invalid value for parameter 'metrics' supplied: expected a list")
    await tracking_service.log_batch(
        principal,
        _run_id(found),
        metrics=[_metric(entry, f"metrics[{i}]") for i, entry in enumerate(entries)],
        params=[Param(k, v) for k, v in _pairs(found, "params")],
        tags=[RunTag(k, v) for k, v in _pairs(found, "tags")],
    )
    return ok()


@post(_paths("runs/log-inputs"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_inputs(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Datasets the run used; MLflow 3's ``models`` (model inputs) are not kept."""
    found = await fields(request)
    entries = found.get("datasets") or []
    if not isinstance(entries, list):
        raise MlflowError("Invalid value for parameter 'datasets' supplied: expected a list")
    datasets = [_dataset_input(entry, f"datasets[{i}]") for i, entry in enumerate(entries)]
    await tracking_service.log_inputs(principal, _run_id(found), datasets)
    return ok()


def _dataset_input(entry: Any, path: str) -> DatasetInput:
    dataset = entry.get("dataset") if isinstance(entry, dict) else None
    if not isinstance(dataset, dict):
        raise _missing(f"{path}.dataset")
    return DatasetInput(
        name=text(dataset, "name", default="") or "",
        digest=text(dataset, "digest", default="") or "",
        source_type=text(dataset, "source_type", default="") or "",
        source=text(dataset, "source", default="") or "",
        schema=text(dataset, "schema"),
        profile=text(dataset, "profile"),
        tags=dict(_pairs(entry, "tags")),
    )


@post(_paths("runs/outputs"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_outputs(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """The logged models the run produced (MLflow 3's ``log_model``)."""
    found = await fields(request)
    entries = found.get("models")
    if not isinstance(entries, list) or not entries:
        raise _missing("models")
    outputs: list[ModelOutput] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("model_id"):
            raise _missing(f"models[{i}].model_id")
        outputs.append(ModelOutput(text(entry, "model_id") or "", integer(entry, "step", default=0) or 0))
    await tracking_service.log_outputs(principal, _run_id(found), outputs)
    return ok()


@post(_paths("runs/log-model"), include_in_schema=False, status_code=200, opt=_DATA)
async def log_model(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """MLflow 2's ``log_model``: the model's summary (MLflow's ``Model.get_tags_dict``) appended to
    the run's ``mlflow.log-model.history`` tag. Two of these at once on one run may keep only one
    (a read, then a write); the client ignores this route's errors, so nothing else depends on it.
    A history that would pass the tag's 8000 characters is refused rather than cut to broken JSON."""
    found = await fields(request)
    run_id = _run_id(found)
    model_json = text(found, "model_json", need=True) or ""
    try:
        model = msgspec.json.decode(model_json)
    except msgspec.DecodeError:
        raise MlflowError("Malformed model info: 'model_json' is not valid JSON.") from None
    if not isinstance(model, dict):
        raise MlflowError("Malformed model info: 'model_json' must be a JSON object.")
    if missing := sorted(set(_MODEL_FIELDS) - model.keys()):
        raise MlflowError(f"Model json is missing mandatory fields: {missing}")
    summary: dict[str, Any] = {k: model[k] for k in _MODEL_TAG_KEYS if k in model}
    flavors = model["flavors"]
    summary["flavors"] = (
        {
            name: {k: v for k, v in conf.items() if k != "config"} if isinstance(conf, dict) else conf
            for name, conf in flavors.items()
        }
        if isinstance(flavors, dict)
        else flavors
    )
    record = await tracking_service.run(principal, run_id)
    history: Any = []
    if (previous := record.data.tags.get(LOGGED_MODELS_TAG)) is not None:
        try:
            history = msgspec.json.decode(previous)
        except msgspec.DecodeError:
            history = None
        if not isinstance(history, list):
            raise MlflowError(f"The run's tag '{LOGGED_MODELS_TAG}' is not a JSON list.")
    value = msgspec.json.encode([*history, summary]).decode()
    if len(value) > 8000:
        raise MlflowError(f"The run's '{LOGGED_MODELS_TAG}' would exceed 8000 characters.")
    await tracking_service.log_batch(principal, run_id, tags=[RunTag(LOGGED_MODELS_TAG, value)])
    return ok()


# -- reads ----------------------------------------------------------------------------------------


@post(_paths("runs/search"), include_in_schema=False, status_code=200, opt=_READS)
async def search_runs(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Runs of the experiments the caller may read (others have none); both answer keys are left
    out when empty, as MLflow's server does."""
    found = await fields(request)
    view = text(found, "run_view_type", default="ACTIVE_ONLY") or "ACTIVE_ONLY"
    view = _VIEW_NUMBERS.get(view, view)
    if view not in ViewType.__members__:
        raise MlflowError(f"Invalid value for parameter 'run_view_type' supplied: {view!r}")
    runs, next_token = await tracking_service.search_runs(
        principal,
        strings(found, "experiment_ids"),
        filter=text(found, "filter"),
        order_by=strings(found, "order_by"),
        max_results=integer(found, "max_results", default=DEFAULT_MAX_RESULTS) or 0,
        page_token=text(found, "page_token") or None,
        view=ViewType(view),
    )
    answer: dict[str, Any] = {}
    if runs:
        answer["runs"] = [run_json(record) for record in runs]
    if next_token:
        answer["next_page_token"] = next_token
    return ok(answer)


@get(_paths("metrics/get-history"), include_in_schema=False)
async def metric_history(request: Req, principal: Caller, tracking_service: Tracking) -> Response[bytes]:
    """Points by step, timestamp and value; a key never logged has none (``{}``)."""
    found = await fields(request)
    points, next_token = await tracking_service.metric_history(
        principal,
        _run_id(found),
        text(found, "metric_key", need=True) or "",
        max_results=integer(found, "max_results", default=HISTORY_ALL) or 0,
        page_token=text(found, "page_token") or None,
    )
    answer: dict[str, Any] = {}
    if points:
        answer["metrics"] = [metric_json(m) for m in points]
    if next_token:
        answer["next_page_token"] = next_token
    return ok(answer)


ROUTES: list[Any] = [
    create_run,
    get_run,
    update_run,
    delete_run,
    restore_run,
    log_param,
    log_metric,
    set_tag,
    delete_tag,
    log_batch,
    log_inputs,
    log_outputs,
    log_model,
    search_runs,
    metric_history,
]
