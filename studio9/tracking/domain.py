"""Experiment tracking's values: runs, their params, metrics, tags, dataset inputs and model
outputs, logged models, and the errors the tracking store raises.

An experiment is a catalog asset of kind ``experiment``: its name, owner and sharing are the
catalog's, and the tracking store keys everything by the asset's id (26 characters) and the run's
id. The shapes follow MLflow's tracking server, because an MLflow REST face serves them to
unchanged MLflow clients:

- enum values are MLflow's wire names (``RUNNING``, ``active``, ``LOGGED_MODEL_READY``);
- times are integer milliseconds since the epoch;
- each error carries the MLflow error code the REST face answers with (``code``), and, where
  MLflow's server has one, MLflow's message.

What MLflow accepts (key names, lengths, batch sizes) is checked by ``studio9.tracking.validation``.
Nothing heavy is imported here.
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Mapping
from typing import ClassVar, Final

import attrs

from studio9.catalog.domain import Asset
from studio9.errors import Conflict, InvalidInput, NotFound

#: MLflow's error codes, as the REST face sends them (``error_code``).
INVALID_PARAMETER_VALUE: Final = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST: Final = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS: Final = "RESOURCE_ALREADY_EXISTS"

#: A run id: 32 lowercase hex digits (``uuid4().hex``, as MLflow's server makes them).
RUN_ID_PATTERN: Final = re.compile(r"[0-9a-f]{32}")
#: A logged model id: ``m-`` and 32 lowercase hex digits.
LOGGED_MODEL_ID_PATTERN: Final = re.compile(r"m-[0-9a-f]{32}")
#: The tag that holds a run's name: MLflow keeps both in step (setting the tag renames the run).
RUN_NAME_TAG: Final = "mlflow.runName"
#: The tag that names a nested run's parent.
PARENT_RUN_TAG: Final = "mlflow.parentRunId"
#: The dataset input tag that says what a dataset was used for (``training``, ``eval``).
DATASET_CONTEXT_TAG: Final = "mlflow.data.context"


def new_run_id() -> str:
    """A fresh run id (``RUN_ID_PATTERN``)."""
    return uuid.uuid4().hex


def new_logged_model_id() -> str:
    """A fresh logged model id (``LOGGED_MODEL_ID_PATTERN``)."""
    return f"m-{uuid.uuid4().hex}"


class RunStatus(enum.StrEnum):
    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class LifecycleStage(enum.StrEnum):
    """A deleted run is kept (and can be restored) until its experiment goes."""

    ACTIVE = "active"
    DELETED = "deleted"


class ViewType(enum.StrEnum):
    """Which runs a search sees, by lifecycle stage."""

    ACTIVE_ONLY = "ACTIVE_ONLY"
    DELETED_ONLY = "DELETED_ONLY"
    ALL = "ALL"

    @property
    def stages(self) -> tuple[LifecycleStage, ...]:
        """The lifecycle stages this view includes."""
        if self is ViewType.ACTIVE_ONLY:
            return (LifecycleStage.ACTIVE,)
        if self is ViewType.DELETED_ONLY:
            return (LifecycleStage.DELETED,)
        return (LifecycleStage.ACTIVE, LifecycleStage.DELETED)


class LoggedModelStatus(enum.StrEnum):
    """A logged model is pending while its files upload, then ready (or failed)."""

    PENDING = "LOGGED_MODEL_PENDING"
    READY = "LOGGED_MODEL_READY"
    UPLOAD_FAILED = "LOGGED_MODEL_UPLOAD_FAILED"


# -- runs -----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Run:
    """A run's info (MLflow's ``RunInfo``).

    ``owner_id`` is the Studio9 user who made it; ``user_name`` is what MLflow calls ``user_id``
    (the user's name, as the client sent it). ``start_time``/``end_time`` are milliseconds.
    """

    id: str
    experiment_id: str
    name: str = ""
    owner_id: str
    user_name: str = ""
    status: RunStatus = RunStatus.RUNNING
    start_time: int | None = None
    end_time: int | None = None
    lifecycle_stage: LifecycleStage = LifecycleStage.ACTIVE
    artifact_uri: str = ""
    parent_run_id: str | None = None


@attrs.frozen
class Param:
    """A run's (or logged model's) parameter: immutable per run once logged."""

    key: str
    value: str


@attrs.frozen
class RunTag:
    """A run's tag: mutable (a new value overwrites)."""

    key: str
    value: str


@attrs.frozen
class Metric:
    """One point of a metric's history: ``value`` may be NaN or ±inf; ``timestamp`` in ms.

    Positional (key, value, timestamp, step, model_id): a page of runs holds thousands of these,
    and positional construction is the cheaper one.
    """

    key: str
    value: float
    timestamp: int
    step: int = 0
    #: The logged model the point was recorded for (MLflow 3), if any.
    model_id: str | None = None

    @property
    def identity(self) -> tuple[str, int, int, bool, float]:
        """What makes two points the same point (MLflow de-duplicates them): key, timestamp, step
        and value, NaN equal to NaN. ``model_id`` is not part of it."""
        nan = math.isnan(self.value)
        return (self.key, self.timestamp, self.step, nan, 0.0 if nan else self.value)

    @property
    def recency(self) -> tuple[int, int, bool, float]:
        """The run shows the point with the largest recency as the metric's latest value: MLflow's
        (step, timestamp, value), with NaN below every number."""
        nan = math.isnan(self.value)
        return (self.step, self.timestamp, not nan, 0.0 if nan else self.value)


@attrs.frozen(kw_only=True)
class DatasetInput:
    """A dataset a run used. One per (name, digest) in a run; ``tags`` are the input's tags, of
    which ``mlflow.data.context`` says what for."""

    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema: str | None = None
    profile: str | None = None
    tags: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def context(self) -> str | None:
        """The ``mlflow.data.context`` tag (``training``, ``eval``…), if set."""
        return self.tags.get(DATASET_CONTEXT_TAG)


@attrs.frozen
class ModelOutput:
    """A logged model a run produced, at ``step``."""

    model_id: str
    step: int = 0


@attrs.frozen(kw_only=True)
class RunData:
    """A run's params, tags, and its latest metric point per key (``Metric.recency``)."""

    params: Mapping[str, str] = attrs.field(factory=dict)
    metrics: Mapping[str, Metric] = attrs.field(factory=dict)
    tags: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RunRecord:
    """A run with everything MLflow returns of it: data, dataset inputs (by name, digest) and model
    outputs (by step, model id)."""

    run: Run
    data: RunData = attrs.field(factory=RunData)
    inputs: tuple[DatasetInput, ...] = ()
    outputs: tuple[ModelOutput, ...] = ()


# -- logged models --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class LoggedModel:
    """A model logged in an experiment (MLflow 3), whose files live at ``artifact_location``."""

    id: str
    experiment_id: str
    name: str
    artifact_location: str
    creation_timestamp: int
    last_updated_timestamp: int
    status: LoggedModelStatus = LoggedModelStatus.PENDING
    source_run_id: str | None = None
    model_type: str = ""
    tags: Mapping[str, str] = attrs.field(factory=dict)
    params: Mapping[str, str] = attrs.field(factory=dict)


# -- experiments ----------------------------------------------------------------------------------

#: The experiment id MLflow clients use when none was set: the caller's ``Default``.
DEFAULT_EXPERIMENT_ID: Final = "0"
DEFAULT_EXPERIMENT_NAME: Final = "Default"
MAX_EXPERIMENT_NAME_LENGTH: Final = 255


def artifact_root(experiment_id: str) -> str:
    """Where the experiment's artifacts live, as MLflow clients address them."""
    return f"mlflow-artifacts:/{experiment_id}"


class ExperimentAlreadyExists(Conflict):
    code: ClassVar[str] = RESOURCE_ALREADY_EXISTS

    def __init__(self, name: str) -> None:
        super().__init__(f"Experiment(name={name}) already exists.", field="name")


class InvalidExperimentName(InvalidInput):
    code: ClassVar[str] = INVALID_PARAMETER_VALUE


@attrs.frozen(kw_only=True)
class Experiment:
    """An experiment as the tracking faces show it: the asset and its tags."""

    asset: Asset
    tags: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def id(self) -> str:
        return self.asset.id

    @property
    def artifact_location(self) -> str:
        return artifact_root(self.asset.id)


# -- errors ---------------------------------------------------------------------------------------


class InvalidTrackingInput(InvalidInput):
    """Tracking input MLflow's server refuses (400 ``INVALID_PARAMETER_VALUE`` on its REST face)."""

    code: ClassVar[str] = INVALID_PARAMETER_VALUE


class ParamChanged(InvalidTrackingInput):
    """A param logged again with another value: params are immutable per run."""

    def __init__(self, run_id: str, key: str, old: str, new: str) -> None:
        super().__init__(
            f"Changing param values is not allowed. Param with key='{key}' was already logged with "
            f"value='{old}' for run ID='{run_id}'. Attempted logging new value '{new}'.",
            field="params",
            key=key,
        )
        self.run_id = run_id
        self.key = key
        self.old = old
        self.new = new


class RunNotActive(InvalidTrackingInput):
    """A change to a deleted run: restore it first."""

    def __init__(self, run_id: str, stage: LifecycleStage) -> None:
        super().__init__(
            f"The run {run_id} must be in the 'active' state. Current state is {stage}.", run_id=run_id
        )
        self.run_id = run_id


class RunNotFound(NotFound):
    code: ClassVar[str] = RESOURCE_DOES_NOT_EXIST

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run with id={run_id} not found", run_id=run_id)
        self.run_id = run_id


class ExperimentNotFound(NotFound):
    """No experiment asset with this id (the catalog has none)."""

    code: ClassVar[str] = RESOURCE_DOES_NOT_EXIST

    def __init__(self, experiment_id: str) -> None:
        super().__init__(f"No Experiment with id={experiment_id} exists", experiment_id=experiment_id)
        self.experiment_id = experiment_id


class LoggedModelNotFound(NotFound):
    code: ClassVar[str] = RESOURCE_DOES_NOT_EXIST

    def __init__(self, model_id: str) -> None:
        super().__init__(f"Logged model with ID '{model_id}' not found.", model_id=model_id)
        self.model_id = model_id


class TagNotFound(NotFound):
    """A tag delete of a key the run (or experiment, or logged model) does not have."""

    code: ClassVar[str] = RESOURCE_DOES_NOT_EXIST

    def __init__(self, key: str, owner: str, owner_id: str) -> None:
        super().__init__(f"No tag with name: {key} in {owner} with id {owner_id}", key=key)
        self.key = key


class RunAlreadyExists(Conflict):
    code: ClassVar[str] = RESOURCE_ALREADY_EXISTS

    def __init__(self, run_id: str) -> None:
        super().__init__(f"Run with id={run_id} already exists", run_id=run_id)
        self.run_id = run_id


class LoggedModelAlreadyExists(Conflict):
    code: ClassVar[str] = RESOURCE_ALREADY_EXISTS

    def __init__(self, model_id: str) -> None:
        super().__init__(f"Logged model with ID '{model_id}' already exists.", model_id=model_id)
        self.model_id = model_id


class ExperimentNameNotFound(ExperimentNotFound):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.message = f"Could not find experiment with name '{name}'"
        self.args = (self.message,)
