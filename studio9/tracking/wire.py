"""The native tracking routes' JSON shapes (msgspec structs) and their builders from domain values.

Times of runs and metric points are integer milliseconds since the epoch, as the tracking store
and its filter language (``attributes.start_time > 1700000000000``) count them; an experiment's
``created_at``/``updated_at`` are its catalog asset's (RFC 3339), as for every other asset.

JSON has no NaN nor infinities: a metric value that is one travels as the string ``"NaN"``,
``"Infinity"`` or ``"-Infinity"`` both ways, as MLflow's REST API sends them.

Keys (of params, metrics and tags) are what ``studio9.tracking.validation.check_key`` accepts,
written as a pattern here so that the OpenAPI document states it and the decoder refuses a bad
key with the field that holds it.
"""

import math
from datetime import datetime
from typing import Annotated, Final, Literal

import msgspec

from studio9.catalog.domain import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, NAME_PATTERN
from studio9.tracking.domain import (
    RUN_ID_PATTERN,
    DatasetInput,
    Experiment,
    LifecycleStage,
    Metric,
    ModelOutput,
    RunRecord,
    RunStatus,
    ViewType,
)
from studio9.tracking.validation import (
    MAX_EXPERIMENT_TAG_VALUE_LENGTH,
    MAX_KEY_LENGTH,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VALUE_LENGTH,
)

#: A NaN or an infinity, as JSON carries it.
SpecialValue = Literal["NaN", "Infinity", "-Infinity"]
_SPECIAL: Final[dict[str, float]] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

# ``check_key``: segments of ``[/\w.\- :]`` joined by single slashes, none of them ``.`` or
# ``..``, the whole not starting with ``..`` (a key may become a file name).
_SEGMENT = r"(?!\.\.?(?:/|$))[\w.\- :]+"
KEY_PATTERN: Final = f"(?!\\.\\.){_SEGMENT}(?:/{_SEGMENT})*"
Key = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH, pattern=f"^(?:{KEY_PATTERN})$")]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, pattern=f"^(?:{NAME_PATTERN.pattern})$")]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
ExperimentTagValue = Annotated[str, msgspec.Meta(max_length=MAX_EXPERIMENT_TAG_VALUE_LENGTH)]
RunName = Annotated[str, msgspec.Meta(max_length=MAX_TAG_VALUE_LENGTH)]
RunId = Annotated[str, msgspec.Meta(pattern=f"^{RUN_ID_PATTERN.pattern}$")]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Step = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
MetricValue = float | SpecialValue


# -- experiments ------------------------------------------------------------------------------------


class ExperimentIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Description = ""
    tags: dict[Key, ExperimentTagValue] | None = None


class ExperimentChangesIn(msgspec.Struct, forbid_unknown_fields=True):
    """What to change: ``name`` (the description is the asset's: ``PATCH /api/v1/assets/{id}``)."""

    name: Name | None = None


class ExperimentTagIn(msgspec.Struct, forbid_unknown_fields=True):
    value: ExperimentTagValue


class ExperimentOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str
    description: str
    tags: dict[str, str]
    #: Where its runs' artifacts live, as MLflow clients address them (``mlflow-artifacts:/<id>``).
    artifact_location: str
    created_at: datetime
    updated_at: datetime


class ExperimentListOut(msgspec.Struct):
    items: list[ExperimentOut]
    next_cursor: str | None


def experiment_out(experiment: Experiment) -> ExperimentOut:
    asset = experiment.asset
    return ExperimentOut(
        id=asset.id,
        name=asset.name,
        owner_id=asset.owner_id,
        description=asset.description,
        tags=dict(experiment.tags),
        artifact_location=experiment.artifact_location,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
    )


# -- runs -----------------------------------------------------------------------------------------


class RunIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new run: ``parent_run_id`` nests it under a run the caller may read; ``start_time``
    (ms) defaults to now."""

    name: RunName = ""
    parent_run_id: RunId | None = None
    tags: dict[Key, str] | None = None
    start_time: Millis | None = None


class RunChangesIn(msgspec.Struct, forbid_unknown_fields=True):
    """What to change: finishing a run is ``{"status": "FINISHED", "end_time": <ms>}``."""

    status: RunStatus | None = None
    end_time: Millis | None = None
    name: RunName | None = None


class MetricIn(msgspec.Struct, forbid_unknown_fields=True):
    """One point: ``timestamp`` (ms) defaults to the time of the request, ``step`` to 0."""

    key: Key
    value: MetricValue
    step: Step = 0
    timestamp: Millis | None = None


class LogIn(msgspec.Struct, forbid_unknown_fields=True):
    """One batch, stored all or nothing. A param is immutable once logged (logging it again with
    another value is a 422); a tag logged again takes the new value."""

    params: Annotated[dict[Key, str], msgspec.Meta(max_length=MAX_PARAMS_TAGS_PER_BATCH)] | None = None
    metrics: Annotated[list[MetricIn], msgspec.Meta(max_length=MAX_METRICS_PER_BATCH)] | None = None
    tags: Annotated[dict[Key, str], msgspec.Meta(max_length=MAX_PARAMS_TAGS_PER_BATCH)] | None = None


class SearchIn(msgspec.Struct, forbid_unknown_fields=True):
    """MLflow's run search: ``filter`` in its language (``metrics.rmse < 0.5 and params.alpha =
    '0.1'``), ``order_by`` as ``["metrics.rmse ASC", "attributes.start_time DESC"]``; experiments
    the caller may not read have no runs."""

    experiment_ids: Annotated[list[str], msgspec.Meta(min_length=1, max_length=100)]
    filter: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    order_by: Annotated[list[str], msgspec.Meta(max_length=20)] | None = None
    view: ViewType = ViewType.ACTIVE_ONLY
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    #: The ``next_cursor`` of the page before, unchanged.
    cursor: Annotated[str, msgspec.Meta(max_length=400)] | None = None


class PointOut(msgspec.Struct):
    value: MetricValue
    step: int
    timestamp: int


class DatasetOut(msgspec.Struct):
    name: str
    digest: str
    source_type: str
    source: str
    schema: str | None
    profile: str | None
    tags: dict[str, str]


class ModelOutputOut(msgspec.Struct):
    model_id: str
    step: int


class RunOut(msgspec.Struct):
    """A run, its params, tags and the latest point of each metric (``metrics``: by key)."""

    id: str
    experiment_id: str
    name: str
    owner_id: str
    user_name: str
    status: RunStatus
    start_time: int | None
    end_time: int | None
    lifecycle_stage: LifecycleStage
    parent_run_id: str | None
    artifact_uri: str
    params: dict[str, str]
    metrics: dict[str, PointOut]
    tags: dict[str, str]
    inputs: list[DatasetOut]
    outputs: list[ModelOutputOut]


class RunPageOut(msgspec.Struct):
    items: list[RunOut]
    next_cursor: str | None


class HistoryOut(msgspec.Struct):
    """A metric's points, by step then timestamp."""

    items: list[PointOut]
    next_cursor: str | None


def metric_value(value: MetricValue) -> float:
    """The float a wire value stands for."""
    return _SPECIAL[value] if isinstance(value, str) else value


def wire_value(value: float) -> MetricValue:
    """A float as the wire carries it: NaN and the infinities as strings."""
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def point_out(metric: Metric) -> PointOut:
    return PointOut(value=wire_value(metric.value), step=metric.step, timestamp=metric.timestamp)


def _dataset_out(dataset: DatasetInput) -> DatasetOut:
    return DatasetOut(
        name=dataset.name,
        digest=dataset.digest,
        source_type=dataset.source_type,
        source=dataset.source,
        schema=dataset.schema,
        profile=dataset.profile,
        tags=dict(dataset.tags),
    )


def _output_out(output: ModelOutput) -> ModelOutputOut:
    return ModelOutputOut(model_id=output.model_id, step=output.step)


def run_out(record: RunRecord) -> RunOut:
    run, data = record.run, record.data
    return RunOut(
        id=run.id,
        experiment_id=run.experiment_id,
        name=run.name,
        owner_id=run.owner_id,
        user_name=run.user_name,
        status=run.status,
        start_time=run.start_time,
        end_time=run.end_time,
        lifecycle_stage=run.lifecycle_stage,
        parent_run_id=run.parent_run_id,
        artifact_uri=run.artifact_uri,
        params=dict(data.params),
        metrics={key: point_out(metric) for key, metric in data.metrics.items()},
        tags=dict(data.tags),
        inputs=[_dataset_out(d) for d in record.inputs],
        outputs=[_output_out(o) for o in record.outputs],
    )
