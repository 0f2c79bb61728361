"""What MLflow's tracking server accepts, checked before anything is stored.

The limits are MLflow 3's (``mlflow/utils/validation.py``), with its messages, so that the REST face
answers as MLflow's server does:

- keys (param, metric and tag names) match ``^[/\\w.\\- :]*$``, are path-normalised (no ``..``,
  not ``.``, no leading ``/``, no ``//``) and at most 250 characters;
- a param value longer than 6000 characters, and a run tag value longer than 8000, is **truncated
  silently**: MLflow's server does so by default (``MLFLOW_TRUNCATE_LONG_VALUES=true``), and
  clients that log long values (a pip freeze as a tag) rely on it;
- metric values are floats (NaN and ±inf allowed), timestamps integers >= 0, steps integers, all
  within 64 bits;
- a batch holds at most 1000 metrics, 100 params, 100 tags, and 1000 of them together, and no
  param key twice;
- experiment tags: key at most 250, value at most 20000 characters (refused, not truncated).

Every check raises ``InvalidTrackingInput`` (MLflow's ``INVALID_PARAMETER_VALUE``).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Sequence
from typing import Final

from studio9.tracking.domain import (
    LOGGED_MODEL_ID_PATTERN,
    RUN_ID_PATTERN,
    DatasetInput,
    InvalidTrackingInput,
    LoggedModel,
    Metric,
    ModelOutput,
    Param,
    Run,
    RunTag,
)

KEY_PATTERN: Final = re.compile(r"[/\w.\- :]*")
MAX_KEY_LENGTH: Final = 250
MAX_PARAM_VALUE_LENGTH: Final = 6000
MAX_TAG_VALUE_LENGTH: Final = 8000
MAX_EXPERIMENT_TAG_VALUE_LENGTH: Final = 20_000
MAX_METRICS_PER_BATCH: Final = 1000
MAX_PARAMS_TAGS_PER_BATCH: Final = 100
MAX_ENTITIES_PER_BATCH: Final = 1000
#: ``search_runs`` returns at most this many runs a page.
MAX_RESULTS_LIMIT: Final = 50_000
MAX_DATASET_NAME_LENGTH: Final = 500
MAX_DATASET_DIGEST_LENGTH: Final = 36
MAX_LOGGED_MODEL_NAME_LENGTH: Final = 500
_INT64 = (-(2**63), 2**63 - 1)
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
    "colon(:) and slashes (/)."
)


def _invalid_value(path: str, value: object, message: str) -> str:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return f"Invalid value {shown} for parameter '{path}' supplied: {message}"


def check_key(key: object, path: str = "key") -> str:
    """``key`` if it is a usable param, metric or tag name; ``path`` names it in the message."""
    if not isinstance(key, str):
        raise InvalidTrackingInput(f"Missing value for required parameter '{path}'.", field=path)
    if not KEY_PATTERN.fullmatch(key):
        raise InvalidTrackingInput(_invalid_value(path, key, _BAD_CHARACTERS), field=path)
    normal = posixpath.normpath(key)
    # Keys may become file names (artifact paths): one must not resolve to another.
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        raise InvalidTrackingInput(
            _invalid_value(
                path,
                key,
                "Names may be treated as files in certain cases, and must not resolve to other "
                f"names when treated as such. This name would resolve to {normal!r}",
            ),
            field=path,
        )
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidTrackingInput(
            f"'{path}' exceeds the maximum length of {MAX_KEY_LENGTH} characters", field=path
        )
    return key


def _text(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise InvalidTrackingInput(_invalid_value(path, repr(value), "expected a string"), field=path)
    return value


def _int64(value: object, path: str, what: str, *, minimum: int = _INT64[0]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= _INT64[1]:
        raise InvalidTrackingInput(
            _invalid_value(path, repr(value), f"{what} must be an integer from {minimum} to {_INT64[1]}"),
            field=path,
        )
    return value


def check_param(param: Param, path: str = "params[0]") -> Param:
    """The param with its key checked and its value cut to 6000 characters."""
    check_key(param.key, f"{path}.key")
    value = _text(param.value, f"{path}.value")
    return param if len(value) <= MAX_PARAM_VALUE_LENGTH else Param(param.key, value[:MAX_PARAM_VALUE_LENGTH])


def check_tag(tag: RunTag, path: str = "tags[0]") -> RunTag:
    """The tag with its key checked and its value cut to 8000 characters."""
    check_key(tag.key, f"{path}.key")
    value = _text(tag.value, f"{path}.value")
    return tag if len(value) <= MAX_TAG_VALUE_LENGTH else RunTag(tag.key, value[:MAX_TAG_VALUE_LENGTH])


def check_metric(metric: Metric, path: str = "metrics[0]") -> Metric:
    """The metric point if its key, value, timestamp and step are acceptable."""
    check_key(metric.key, f"{path}.name")
    value: object = metric.value  # typed float, but callers parse wire input
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTrackingInput(
            _invalid_value(
                f"{path}.value",
                repr(value),
                f"Got invalid value {value!r} for metric '{metric.key}' (timestamp={metric.timestamp}). "
                "Please specify value as a valid double (64-bit floating point)",
            ),
            field=f"{path}.value",
        )
    _int64(metric.timestamp, f"{path}.timestamp", "Timestamp", minimum=0)
    _int64(metric.step, f"{path}.step", "Step")
    if metric.model_id is not None:
        check_logged_model_id(metric.model_id, f"{path}.model_id")
    if isinstance(value, float):
        return metric
    return Metric(metric.key, float(value), metric.timestamp, metric.step, metric.model_id)


def _limit(what: str, limit: int, count: int) -> None:
    if count > limit:
        raise InvalidTrackingInput(
            f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
            f"Please split up {what} across multiple requests and try again.",
            field="batch",
        )


def check_batch(
    metrics: Sequence[Metric], params: Sequence[Param], tags: Sequence[RunTag]
) -> tuple[tuple[Metric, ...], tuple[Param, ...], tuple[RunTag, ...]]:
    """The batch, each item checked (long values cut); raises for a batch over MLflow's limits or
    one that names a param key twice. Of tags named twice, the last counts."""
    _limit("metrics", MAX_METRICS_PER_BATCH, len(metrics))
    _limit("params", MAX_PARAMS_TAGS_PER_BATCH, len(params))
    _limit("tags", MAX_PARAMS_TAGS_PER_BATCH, len(tags))
    _limit("metrics, params, and tags", MAX_ENTITIES_PER_BATCH, len(metrics) + len(params) + len(tags))
    checked_metrics = tuple(check_metric(m, f"metrics[{i}]") for i, m in enumerate(metrics))
    checked_params = tuple(check_param(p, f"params[{i}]") for i, p in enumerate(params))
    keys = [p.key for p in checked_params]
    if duplicates := sorted({k for k in keys if keys.count(k) > 1}):
        raise InvalidTrackingInput(
            f"Duplicate parameter keys have been submitted: {duplicates}. Please ensure the request "
            "contains only one param value per param key.",
            field="params",
        )
    last = {t.key: t for t in (check_tag(t, f"tags[{i}]") for i, t in enumerate(tags))}
    return checked_metrics, checked_params, tuple(last.values())


def check_experiment_tag(key: str, value: str) -> tuple[str, str]:
    """An experiment tag's key and value if MLflow takes them (long values are refused)."""
    check_key(key, "key")
    if len(_text(value, "value")) > MAX_EXPERIMENT_TAG_VALUE_LENGTH:
        raise InvalidTrackingInput(
            f"'value' exceeds the maximum length of {MAX_EXPERIMENT_TAG_VALUE_LENGTH} characters",
            field="value",
        )
    return key, value


def check_run_id(run_id: str, path: str = "run_id") -> str:
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id):
        raise InvalidTrackingInput(
            _invalid_value(path, run_id, "a run id is 32 lowercase hexadecimal digits"), field=path
        )
    return run_id


def check_logged_model_id(model_id: str, path: str = "model_id") -> str:
    if not isinstance(model_id, str) or not LOGGED_MODEL_ID_PATTERN.fullmatch(model_id):
        raise InvalidTrackingInput(
            _invalid_value(path, model_id, "a logged model id is 'm-' and 32 lowercase hexadecimal digits"),
            field=path,
        )
    return model_id


def check_new_run(run: Run) -> Run:
    """A run to create: a well-formed id and parent id, and times that fit in 64 bits."""
    check_run_id(run.id)
    if run.parent_run_id is not None:
        check_run_id(run.parent_run_id, "parent_run_id")
    for path, value in (("start_time", run.start_time), ("end_time", run.end_time)):
        if value is not None:
            _int64(value, path, "A time", minimum=0)
    return run


def check_end_time(end_time: int | None) -> int | None:
    return None if end_time is None else _int64(end_time, "end_time", "A time", minimum=0)


def check_dataset(dataset: DatasetInput, path: str = "datasets[0]") -> DatasetInput:
    """A dataset input with a name (<= 500) and digest (<= 36), and string tags."""
    for field, value, limit in (
        ("name", dataset.name, MAX_DATASET_NAME_LENGTH),
        ("digest", dataset.digest, MAX_DATASET_DIGEST_LENGTH),
    ):
        if not isinstance(value, str) or not value or len(value) > limit:
            raise InvalidTrackingInput(
                f"'{path}.dataset.{field}' must be 1-{limit} characters", field=f"{path}.{field}"
            )
    for key, value in dataset.tags.items():
        check_key(key, f"{path}.tags.key")
        _text(value, f"{path}.tags.value")
    return dataset


def check_outputs(outputs: Sequence[ModelOutput]) -> tuple[ModelOutput, ...]:
    for index, output in enumerate(outputs):
        check_logged_model_id(output.model_id, f"models[{index}].model_id")
        _int64(output.step, f"models[{index}].step", "Step")
    return tuple(outputs)


def check_logged_model(model: LoggedModel) -> LoggedModel:
    """A logged model to create: a well-formed id, a name, checked tags and params (long values
    cut as for runs)."""
    check_logged_model_id(model.id)
    bad = ("/", ":", ".", "%", '"', "'")
    if not model.name or any(c in model.name for c in bad):
        raise InvalidTrackingInput(
            f"Invalid model name ({model.name!r}) provided. Model name must be a non-empty string and "
            f"cannot contain the following characters: {bad}",
            field="name",
        )
    if len(model.name) > MAX_LOGGED_MODEL_NAME_LENGTH:
        raise InvalidTrackingInput(
            f"'name' exceeds the maximum length of {MAX_LOGGED_MODEL_NAME_LENGTH} characters", field="name"
        )
    if model.source_run_id is not None:
        check_run_id(model.source_run_id, "source_run_id")
    tags = {t.key: t.value for t in (check_tag(RunTag(k, v)) for k, v in model.tags.items())}
    params = {p.key: p.value for p in (check_param(Param(k, v)) for k, v in model.params.items())}
    return LoggedModel(
        id=model.id,
        experiment_id=model.experiment_id,
        name=model.name,
        artifact_location=model.artifact_location,
        creation_timestamp=_int64(model.creation_timestamp, "creation_timestamp", "A time", minimum=0),
        last_updated_timestamp=_int64(
            model.last_updated_timestamp, "last_updated_timestamp", "A time", minimum=0
        ),
        status=model.status,
        source_run_id=model.source_run_id,
        model_type=model.model_type,
        tags=tags,
        params=params,
    )


def check_max_results(max_results: int, limit: int = MAX_RESULTS_LIMIT) -> int:
    """``max_results`` if it is 1 to ``limit``."""
    if isinstance(max_results, bool) or not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise InvalidTrackingInput(
            f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive "
            f"integer of at most {limit}",
            field="max_results",
        )
    return max_results
