"""Runs and logged models, as a caller may see and change them: one service under both faces.

The native routes (``/api/v1/experiments``, ``/api/v1/runs``) and the MLflow face
(``/api/2.0/mlflow``) both call this service, so both obey one access policy: reading a run
needs read access to its experiment, logging to it needs write access (see
``studio9.tracking.experiments``). Someone who may not read the experiment is told the run does
not exist, as the catalog answers for assets.

A run never moves between experiments, so which experiment a run is in is remembered for the
life of the process (bounded); the access answer itself expires (``ExperimentService.check``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Access
from studio9.tracking.domain import (
    PARENT_RUN_TAG,
    RUN_ID_PATTERN,
    RUN_NAME_TAG,
    DatasetInput,
    ExperimentNotFound,
    InvalidTrackingInput,
    LifecycleStage,
    LoggedModel,
    LoggedModelNotFound,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    Run,
    RunNotFound,
    RunRecord,
    RunStatus,
    RunTag,
    ViewType,
    artifact_root,
    new_logged_model_id,
    new_run_id,
)
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.ports import TrackingStore
from studio9.tracking.search import parse_filter, parse_order_by

_REMEMBERED_RUNS: Final = 65_536


def run_artifact_uri(experiment_id: str, run_id: str) -> str:
    return f"{artifact_root(experiment_id)}/{run_id}/artifacts"


def logged_model_artifact_uri(experiment_id: str, model_id: str) -> str:
    return f"{artifact_root(experiment_id)}/models/{model_id}/artifacts"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@attrs.define
class TrackingService:
    experiments: ExperimentService
    store: TrackingStore
    clock_ms: Callable[[], int] = now_ms
    _run_experiment: OrderedDict[str, str] = attrs.field(factory=OrderedDict, init=False)

    # -- runs -----------------------------------------------------------------------------------

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
        """A new ``RUNNING`` run in the experiment (write access). A name given both as ``name``
        and as the ``mlflow.runName`` tag must agree; the parent may also come as the
        ``mlflow.parentRunId`` tag. ``run_id``: the id to give the run (Studio9's own jobs derive
        theirs, so that a retry finds its run), else a fresh one. Raises ExperimentNotFound,
        PermissionDenied, InvalidInput, RunAlreadyExists (a given ``run_id`` that exists)."""
        if run_id is not None and not RUN_ID_PATTERN.fullmatch(run_id):
            raise InvalidTrackingInput(f"a run id is 32 lowercase hex digits, not {run_id!r}", field="run_id")
        real = await self.experiments.check(actor, experiment_id, Access.WRITE)
        given = dict(tags or {})
        tag_name = given.pop(RUN_NAME_TAG, None)
        if name and tag_name is not None and tag_name != name:
            raise InvalidTrackingInput(
                f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                f"different values (run_name='{name}', mlflow.runName='{tag_name}').",
                field="run_name",
            )
        parent = parent_run_id or given.pop(PARENT_RUN_TAG, None)
        if parent is not None:
            await self._experiment_of(actor, parent, Access.READ)
        run_id = run_id or new_run_id()
        run = Run(
            id=run_id,
            experiment_id=real,
            name=name or tag_name or "",
            owner_id=actor.user_id,
            user_name=user_name if user_name is not None else actor.username,
            status=RunStatus.RUNNING,
            start_time=start_time if start_time is not None else self.clock_ms(),
            artifact_uri=run_artifact_uri(real, run_id),
            parent_run_id=parent,
        )
        record = await self.store.create_run(run, [RunTag(k, v) for k, v in given.items()])
        self._remember(run_id, real)
        return record

    async def run(self, actor: Principal, run_id: str) -> RunRecord:
        """Raises RunNotFound (also for a run of an experiment the caller may not read)."""
        await self._experiment_of(actor, run_id, Access.READ)
        return await self.store.get_run(run_id)

    async def update_run(
        self,
        actor: Principal,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run:
        await self._experiment_of(actor, run_id, Access.WRITE)
        return await self.store.update_run(run_id, status=status, end_time=end_time, name=name)

    async def set_lifecycle(self, actor: Principal, run_id: str, stage: LifecycleStage) -> None:
        """Delete (``deleted``) or restore (``active``) a run."""
        await self._experiment_of(actor, run_id, Access.WRITE)
        await self.store.set_lifecycle(run_id, stage)

    async def log_batch(
        self,
        actor: Principal,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        await self._experiment_of(actor, run_id, Access.WRITE)
        await self.store.log_batch(run_id, metrics=metrics, params=params, tags=tags)

    async def delete_tag(self, actor: Principal, run_id: str, key: str) -> None:
        await self._experiment_of(actor, run_id, Access.WRITE)
        await self.store.delete_tag(run_id, key)

    async def log_inputs(self, actor: Principal, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        await self._experiment_of(actor, run_id, Access.WRITE)
        await self.store.log_inputs(run_id, datasets)

    async def log_outputs(self, actor: Principal, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        await self._experiment_of(actor, run_id, Access.WRITE)
        await self.store.log_outputs(run_id, outputs)

    async def metric_history(
        self, actor: Principal, run_id: str, key: str, *, max_results: int, page_token: str | None = None
    ) -> tuple[tuple[Metric, ...], str | None]:
        await self._experiment_of(actor, run_id, Access.READ)
        return await self.store.metric_history(run_id, key, max_results=max_results, page_token=page_token)

    async def search_runs(
        self,
        actor: Principal,
        experiment_ids: Sequence[str],
        *,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        page_token: str | None = None,
        view: ViewType = ViewType.ACTIVE_ONLY,
    ) -> tuple[tuple[RunRecord, ...], str | None]:
        """MLflow's run search over the experiments the caller may read (others have no runs).
        Raises InvalidTrackingInput for a bad filter, order or page token."""
        comparisons = parse_filter(filter)
        order = parse_order_by(order_by)
        readable = await self.experiments.readable(actor, experiment_ids)
        return await self.store.search_runs(
            readable, comparisons, order, max_results=max_results, page_token=page_token, view=view
        )

    async def experiment_of_run(self, actor: Principal, run_id: str, needed: Access = Access.READ) -> str:
        """The run's experiment id, if the caller has ``needed`` access to it. Raises RunNotFound,
        PermissionDenied."""
        return await self._experiment_of(actor, run_id, needed)

    # -- logged models --------------------------------------------------------------------------

    async def create_logged_model(
        self,
        actor: Principal,
        experiment_id: str,
        *,
        name: str,
        source_run_id: str | None = None,
        model_type: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> LoggedModel:
        real = await self.experiments.check(actor, experiment_id, Access.WRITE)
        if source_run_id:
            await self._experiment_of(actor, source_run_id, Access.READ)
        model_id = new_logged_model_id()
        at = self.clock_ms()
        model = LoggedModel(
            id=model_id,
            experiment_id=real,
            name=name,
            artifact_location=logged_model_artifact_uri(real, model_id),
            creation_timestamp=at,
            last_updated_timestamp=at,
            source_run_id=source_run_id or None,
            model_type=model_type,
            tags=dict(tags or {}),
            params=dict(params or {}),
        )
        return await self.store.create_logged_model(model)

    async def logged_model(
        self, actor: Principal, model_id: str, needed: Access = Access.READ
    ) -> LoggedModel:
        """Raises LoggedModelNotFound (also for one in an experiment the caller may not read)."""
        model = await self.store.get_logged_model(model_id)
        try:
            await self.experiments.check(actor, model.experiment_id, needed)
        except ExperimentNotFound:
            raise LoggedModelNotFound(model_id) from None
        return model

    async def finalize_logged_model(
        self, actor: Principal, model_id: str, status: LoggedModelStatus
    ) -> LoggedModel:
        await self.logged_model(actor, model_id, Access.WRITE)
        return await self.store.finalize_logged_model(model_id, status, at=self.clock_ms())

    async def set_logged_model_tags(self, actor: Principal, model_id: str, tags: Mapping[str, str]) -> None:
        await self.logged_model(actor, model_id, Access.WRITE)
        await self.store.set_logged_model_tags(model_id, tags)

    async def delete_logged_model_tag(self, actor: Principal, model_id: str, key: str) -> None:
        await self.logged_model(actor, model_id, Access.WRITE)
        await self.store.delete_logged_model_tag(model_id, key)

    async def log_logged_model_params(self, actor: Principal, model_id: str, params: Sequence[Param]) -> None:
        await self.logged_model(actor, model_id, Access.WRITE)
        await self.store.log_logged_model_params(model_id, params)

    async def search_logged_models(
        self,
        actor: Principal,
        experiment_ids: Sequence[str],
        *,
        name: str | None = None,
        source_run_id: str | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> tuple[tuple[LoggedModel, ...], str | None]:
        readable = await self.experiments.readable(actor, experiment_ids)
        return await self.store.search_logged_models(
            readable, name=name, source_run_id=source_run_id, max_results=max_results, page_token=page_token
        )

    # -- helpers --------------------------------------------------------------------------------

    async def _experiment_of(self, actor: Principal, run_id: str, needed: Access) -> str:
        experiment_id = self._run_experiment.get(run_id)
        if experiment_id is None:
            experiment_id = (await self.store.get_run(run_id)).run.experiment_id
            self._remember(run_id, experiment_id)
        try:
            return await self.experiments.check(actor, experiment_id, needed)
        except ExperimentNotFound:
            raise RunNotFound(run_id) from None

    def _remember(self, run_id: str, experiment_id: str) -> None:
        self._run_experiment[run_id] = experiment_id
        if len(self._run_experiment) > _REMEMBERED_RUNS:
            self._run_experiment.popitem(last=False)
