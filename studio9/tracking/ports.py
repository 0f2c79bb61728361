"""What experiment tracking needs from storage: runs and their data, experiment tags, logged models.

An experiment is a catalog asset (kind ``experiment``); the store keys everything by its asset id
and refuses an id the catalog does not have (``ExperimentNotFound``). Deleting the asset takes
everything of the experiment with it.

Adapters: ``adapters/tracking_store/memory.py`` and ``adapters/tracking_store/sql.py`` (SQLite,
PostgreSQL), a store of the system of record (``studio9.database.Database.tracking``).
Contract: ``tests/contract/test_tracking_store.py``.

Every write checks its input first (``studio9.tracking.validation``: keys, lengths, batch sizes;
long param and tag values are cut to MLflow's limits) and refuses a deleted run (``RunNotActive``).
Pages are offset tokens (``studio9.tracking.search.encode_page_token``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Protocol

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind
from studio9.catalog.ports import AccessRule, Assets
from studio9.tracking.domain import (
    DatasetInput,
    Experiment,
    LifecycleStage,
    LoggedModel,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    Run,
    RunRecord,
    RunStatus,
    RunTag,
    ViewType,
)
from studio9.tracking.search import Comparison, OrderKey

__all__ = ["ExperimentCatalog", "ExperimentDirectory", "RunTracking", "TrackingStore"]


class ExperimentCatalog(Assets, Protocol):
    """**Protocol:** the catalog as experiments use it: ``Assets`` plus listing, renaming,
    deleting, and its access rule (``studio9.catalog.service.CatalogService``)."""

    rule: AccessRule

    async def list(
        self, actor: Principal, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        """The actor's own assets (of ``kind``), newest first, older than ``after``."""

    async def update(self, actor: Principal, asset_id: str, *, name: str | None = None) -> Asset:
        """Rename the asset (write access). Raises AssetNotFound, PermissionDenied, AssetNameTaken."""

    async def delete(self, actor: Principal, asset_id: str, *, force: bool = False) -> None:
        """Delete the asset and its content (ownership)."""


class TrackingStore(Protocol):
    """Runs, their params, metrics, tags, inputs and outputs; experiment tags; logged models."""

    # -- runs -------------------------------------------------------------------------------------

    async def create_run(self, run: Run, tags: Sequence[RunTag] = ()) -> RunRecord:
        """Store a new run with its first tags. The run's name and parent are written as the tags
        ``mlflow.runName`` and ``mlflow.parentRunId`` too (over the same tags given). Raises
        ExperimentNotFound, RunAlreadyExists, InvalidTrackingInput."""

    async def get_run(self, run_id: str) -> RunRecord:
        """The run with its params, latest metrics, tags, inputs and outputs. Raises RunNotFound."""

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run:
        """Change what is given (a new name also sets the ``mlflow.runName`` tag); the run. Raises
        RunNotFound, RunNotActive."""

    async def set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        """Delete (``deleted``) or restore (``active``) the run. Raises RunNotFound."""

    async def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        """Record the batch, all of it or nothing.

        Metric points already recorded (same key, timestamp, step and value) are skipped (a point
        sent again with a ``model_id`` keeps the first one it had); each key's latest point is the
        one with the largest ``Metric.recency``. A param logged again with its value is fine, with
        another one raises ParamChanged and records nothing of the batch. Tags overwrite; the tag
        ``mlflow.runName`` renames the run. Raises RunNotFound, RunNotActive, InvalidTrackingInput.
        """

    async def metric_history(
        self, run_id: str, key: str, *, max_results: int, page_token: str | None = None
    ) -> tuple[tuple[Metric, ...], str | None]:
        """A page of the metric's points by step, timestamp and value, and the next page's token
        (None after the last). No points for a key never logged. Raises RunNotFound."""

    async def delete_tag(self, run_id: str, key: str) -> None:
        """Raises RunNotFound, RunNotActive, TagNotFound."""

    async def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        """Record the datasets the run used; one already recorded (same name and digest) is kept
        as it is. Raises RunNotFound, RunNotActive, InvalidTrackingInput."""

    async def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        """Record logged models the run produced (idempotent). Raises RunNotFound, RunNotActive."""

    async def search_runs(
        self,
        experiment_ids: Collection[str],
        comparisons: Sequence[Comparison] = (),
        order_by: Sequence[OrderKey] = (),
        *,
        max_results: int,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> tuple[tuple[RunRecord, ...], str | None]:
        """A page of the experiments' runs (in ``view``) that satisfy every comparison, in the order
        of ``studio9.tracking.matching``, and the next page's token (None after the last page).
        ``max_results`` is 1 to 50000. Unknown experiment ids have no runs. Raises
        InvalidTrackingInput (a bad page token, ``max_results`` out of range)."""

    # -- experiment tags --------------------------------------------------------------------------

    async def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        """Set (overwrite) the experiment's tags given. Raises ExperimentNotFound,
        InvalidTrackingInput."""

    async def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        """Raises TagNotFound."""

    async def experiment_tags(self, experiment_ids: Collection[str]) -> Mapping[str, Mapping[str, str]]:
        """Each experiment id given -> its tags by key (empty when it has none), in one query."""

    # -- logged models ----------------------------------------------------------------------------

    async def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        """Store a new logged model with its tags and params; the model as stored. Raises
        ExperimentNotFound, LoggedModelAlreadyExists, InvalidTrackingInput."""

    async def get_logged_model(self, model_id: str) -> LoggedModel:
        """Raises LoggedModelNotFound."""

    async def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus, *, at: int
    ) -> LoggedModel:
        """Set the model's status (``READY`` once its files are uploaded, or ``UPLOAD_FAILED``) and
        its last update time (ms); the model. Raises LoggedModelNotFound."""

    async def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        """Set (overwrite) the model's tags given. Raises LoggedModelNotFound, InvalidTrackingInput."""

    async def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        """Raises LoggedModelNotFound, TagNotFound."""

    async def log_logged_model_params(self, model_id: str, params: Sequence[Param]) -> None:
        """Set the model's params given (a key set again takes the new value). Raises
        LoggedModelNotFound, InvalidTrackingInput."""

    async def search_logged_models(
        self,
        experiment_ids: Collection[str],
        *,
        name: str | None = None,
        source_run_id: str | None = None,
        max_results: int,
        page_token: str | None = None,
    ) -> tuple[tuple[LoggedModel, ...], str | None]:
        """A page of the experiments' logged models (of that name, from that run, when given),
        newest first (then by id), and the next page's token (None after the last)."""

    # -- experiments ------------------------------------------------------------------------------

    async def forget_experiment(self, experiment_id: str) -> None:
        """Remove everything of the experiment: runs and their data, tags, logged models."""


class ExperimentDirectory(Protocol):
    """**Protocol:** finding and making a caller's experiments (``studio9.tracking.experiments``)."""

    async def by_name(self, actor: Principal, name: str) -> Experiment:
        """Raises ExperimentNotFound."""

    async def create(
        self, actor: Principal, name: str, *, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> Experiment:
        """Raises ExperimentAlreadyExists, InvalidInput."""


class RunTracking(Protocol):
    """**Protocol:** runs as another context logs them, as a caller (``studio9.tracking.service``;
    ``ml.train`` logs its parent and candidate runs through it)."""

    @property
    def experiments(self) -> ExperimentDirectory:
        """Where the runs' experiments are found or made."""

    def clock_ms(self) -> int:
        """Now, in milliseconds since the epoch."""

    async def create_run(
        self,
        actor: Principal,
        experiment_id: str,
        *,
        name: str = "",
        start_time: int | None = None,
        tags: Mapping[str, str] | None = None,
        user_name: str | None = None,
        parent_run_id: str | None = None,
        run_id: str | None = None,
    ) -> RunRecord:
        """Raises ExperimentNotFound, PermissionDenied, RunAlreadyExists, InvalidInput."""

    async def run(self, actor: Principal, run_id: str) -> RunRecord:
        """Raises RunNotFound."""

    async def update_run(
        self,
        actor: Principal,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run: ...

    async def log_batch(
        self,
        actor: Principal,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None: ...

    async def log_inputs(self, actor: Principal, run_id: str, datasets: Sequence[DatasetInput]) -> None: ...
