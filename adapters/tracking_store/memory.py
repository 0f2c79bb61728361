"""TrackingStore held in dictionaries: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.tracking``)
Features: thread-safe · every call one step under one lock, so ``log_batch`` is all or nothing ·
          the SQL tables' foreign keys to ``assets`` kept by hand
Extra:    none

Given the catalog (``assets``), runs, experiment tags and logged models of an unknown experiment
are refused; ``asset_deleted`` (which ``MemoryDatabase`` has the catalog call on every delete)
forgets the experiment, as the SQL foreign keys' ON DELETE CASCADE does. Searches filter and sort
with ``studio9.tracking.matching``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

from studio9.catalog.ports import CatalogStore
from studio9.tracking.domain import (
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    DatasetInput,
    ExperimentNotFound,
    LifecycleStage,
    LoggedModel,
    LoggedModelAlreadyExists,
    LoggedModelNotFound,
    LoggedModelStatus,
    Metric,
    ModelOutput,
    Param,
    ParamChanged,
    Run,
    RunAlreadyExists,
    RunData,
    RunNotActive,
    RunNotFound,
    RunRecord,
    RunStatus,
    RunTag,
    TagNotFound,
    ViewType,
)
from studio9.tracking.matching import matches, page_of, sort_key
from studio9.tracking.search import Comparison, OrderKey
from studio9.tracking.validation import (
    check_batch,
    check_dataset,
    check_end_time,
    check_experiment_tag,
    check_logged_model,
    check_max_results,
    check_new_run,
    check_outputs,
    check_param,
    check_tag,
)

if TYPE_CHECKING:
    from studio9.tracking.ports import TrackingStore

#: ``metric_history`` pages hold at most this many points, as on SQL.
MAX_HISTORY_PAGE = 1_000_000


@attrs.define
class _RunRows:
    """What a run has besides its info."""

    params: dict[str, str] = attrs.field(factory=dict)
    tags: dict[str, str] = attrs.field(factory=dict)
    history: dict[str, dict[tuple[object, ...], Metric]] = attrs.field(factory=dict)
    latest: dict[str, Metric] = attrs.field(factory=dict)
    inputs: dict[tuple[str, str], DatasetInput] = attrs.field(factory=dict)
    outputs: set[ModelOutput] = attrs.field(factory=set)


class MemoryTrackingStore:
    """Runs, experiment tags and logged models in dictionaries."""

    def __init__(self, assets: CatalogStore | None = None) -> None:
        self._assets = assets
        self._lock = threading.Lock()
        self._runs: dict[str, Run] = {}
        self._rows: dict[str, _RunRows] = {}
        self._experiment_tags: dict[str, dict[str, str]] = {}
        self._models: dict[str, LoggedModel] = {}

    def asset_deleted(self, asset_id: str) -> None:
        """Forget the experiment (the SQL foreign keys' ON DELETE CASCADE)."""
        with self._lock:
            self._forget(asset_id)

    async def _check_experiment(self, experiment_id: str) -> None:
        # Outside the lock: the catalog takes its own.
        if self._assets is not None and not await self._assets.find([experiment_id]):
            raise ExperimentNotFound(experiment_id)

    # -- runs -------------------------------------------------------------------------------------

    async def create_run(self, run: Run, tags: Sequence[RunTag] = ()) -> RunRecord:
        check_new_run(run)
        stored = {t.key: t.value for t in (check_tag(t, f"tags[{i}]") for i, t in enumerate(tags))}
        if run.name:
            stored[RUN_NAME_TAG] = check_tag(RunTag(RUN_NAME_TAG, run.name)).value
        if run.parent_run_id is not None:
            stored[PARENT_RUN_TAG] = run.parent_run_id
        await self._check_experiment(run.experiment_id)
        with self._lock:
            if run.id in self._runs:
                raise RunAlreadyExists(run.id)
            self._runs[run.id] = run
            self._rows[run.id] = _RunRows(tags=dict(stored))
        return RunRecord(run=run, data=RunData(tags=stored))

    async def get_run(self, run_id: str) -> RunRecord:
        with self._lock:
            return self._record(self._run(run_id))

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run:
        check_end_time(end_time)
        with self._lock:
            run = self._active(run_id)
            run = attrs.evolve(
                run,
                status=run.status if status is None else RunStatus(status),
                end_time=run.end_time if end_time is None else end_time,
                name=run.name if name is None else name,
            )
            self._runs[run_id] = run
            if name is not None:
                self._rows[run_id].tags[RUN_NAME_TAG] = check_tag(RunTag(RUN_NAME_TAG, name)).value
            return run

    async def set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        with self._lock:
            run = self._run(run_id)
            self._runs[run_id] = attrs.evolve(run, lifecycle_stage=LifecycleStage(stage))

    async def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        metrics, params, tags = check_batch(metrics, params, tags)
        with self._lock:
            self._active(run_id)
            rows = self._rows[run_id]
            # Every check before the first change: the batch is all or nothing.
            for param in params:
                old = rows.params.get(param.key)
                if old is not None and old != param.value:
                    raise ParamChanged(run_id, param.key, old, param.value)
            rows.params.update((p.key, p.value) for p in params)
            for metric in metrics:
                points = rows.history.setdefault(metric.key, {})
                first = points.setdefault(metric.identity, metric)
                if first.model_id is None and metric.model_id is not None:
                    points[metric.identity] = metric
                latest = rows.latest.get(metric.key)
                if latest is None or metric.recency > latest.recency:
                    rows.latest[metric.key] = metric
            for tag in tags:
                rows.tags[tag.key] = tag.value
                if tag.key == RUN_NAME_TAG:  # MLflow keeps the tag and the run's name in step
                    self._runs[run_id] = attrs.evolve(self._runs[run_id], name=tag.value)

    async def metric_history(
        self, run_id: str, key: str, *, max_results: int, page_token: str | None = None
    ) -> tuple[tuple[Metric, ...], str | None]:
        check_max_results(max_results, MAX_HISTORY_PAGE)
        with self._lock:
            self._run(run_id)
            points = list(self._rows[run_id].history.get(key, {}).values())
        points.sort(key=lambda m: (m.step, m.timestamp, *m.identity[3:]))  # NaN after the numbers
        page, next_token = page_of(points, page_token, max_results)
        return tuple(page), next_token

    async def delete_tag(self, run_id: str, key: str) -> None:
        with self._lock:
            self._active(run_id)
            if self._rows[run_id].tags.pop(key, None) is None:
                raise TagNotFound(key, "run", run_id)

    async def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        checked = [check_dataset(d, f"datasets[{i}]") for i, d in enumerate(datasets)]
        with self._lock:
            self._active(run_id)
            inputs = self._rows[run_id].inputs
            for dataset in checked:
                inputs.setdefault((dataset.name, dataset.digest), dataset)

    async def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        checked = check_outputs(outputs)
        with self._lock:
            self._active(run_id)
            self._rows[run_id].outputs.update(checked)

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
        check_max_results(max_results)
        experiments, stages = set(experiment_ids), ViewType(view).stages
        with self._lock:
            found = [
                self._record(run)
                for run in self._runs.values()
                if run.experiment_id in experiments and run.lifecycle_stage in stages
            ]
        found = [r for r in found if matches(r, comparisons)]
        found.sort(key=lambda r: sort_key(r, order_by))
        page, next_token = page_of(found, page_token, max_results)
        return tuple(page), next_token

    # -- experiments ------------------------------------------------------------------------------

    async def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        checked = dict(check_experiment_tag(k, v) for k, v in tags.items())
        await self._check_experiment(experiment_id)
        with self._lock:
            self._experiment_tags.setdefault(experiment_id, {}).update(checked)

    async def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        with self._lock:
            if self._experiment_tags.get(experiment_id, {}).pop(key, None) is None:
                raise TagNotFound(key, "experiment", experiment_id)

    async def experiment_tags(self, experiment_ids: Collection[str]) -> Mapping[str, Mapping[str, str]]:
        with self._lock:
            return {i: dict(sorted(self._experiment_tags.get(i, {}).items())) for i in experiment_ids}

    async def forget_experiment(self, experiment_id: str) -> None:
        with self._lock:
            self._forget(experiment_id)

    # -- logged models ----------------------------------------------------------------------------

    async def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        model = check_logged_model(model)
        await self._check_experiment(model.experiment_id)
        with self._lock:
            if model.id in self._models:
                raise LoggedModelAlreadyExists(model.id)
            self._models[model.id] = model
        return model

    async def get_logged_model(self, model_id: str) -> LoggedModel:
        with self._lock:
            return self._model(model_id)

    async def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus, *, at: int
    ) -> LoggedModel:
        with self._lock:
            model = attrs.evolve(
                self._model(model_id), status=LoggedModelStatus(status), last_updated_timestamp=at
            )
            self._models[model_id] = model
            return model

    async def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        checked = {t.key: t.value for t in (check_tag(RunTag(k, v)) for k, v in tags.items())}
        with self._lock:
            model = self._model(model_id)
            self._models[model_id] = attrs.evolve(model, tags={**model.tags, **checked})

    async def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        with self._lock:
            model = self._model(model_id)
            if key not in model.tags:
                raise TagNotFound(key, "logged model", model_id)
            self._models[model_id] = attrs.evolve(
                model, tags={k: v for k, v in model.tags.items() if k != key}
            )

    async def log_logged_model_params(self, model_id: str, params: Sequence[Param]) -> None:
        checked = {p.key: p.value for p in (check_param(p, f"params[{i}]") for i, p in enumerate(params))}
        with self._lock:
            model = self._model(model_id)
            self._models[model_id] = attrs.evolve(model, params={**model.params, **checked})

    async def search_logged_models(
        self,
        experiment_ids: Collection[str],
        *,
        name: str | None = None,
        source_run_id: str | None = None,
        max_results: int,
        page_token: str | None = None,
    ) -> tuple[tuple[LoggedModel, ...], str | None]:
        check_max_results(max_results)
        experiments = set(experiment_ids)
        with self._lock:
            found = [
                m
                for m in self._models.values()
                if m.experiment_id in experiments
                and (name is None or m.name == name)
                and (source_run_id is None or m.source_run_id == source_run_id)
            ]
        found.sort(key=lambda m: m.id)
        found.sort(key=lambda m: m.creation_timestamp, reverse=True)
        page, next_token = page_of(found, page_token, max_results)
        return tuple(page), next_token

    # -- under the lock ---------------------------------------------------------------------------

    def _run(self, run_id: str) -> Run:
        run = self._runs.get(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def _active(self, run_id: str) -> Run:
        run = self._run(run_id)
        if run.lifecycle_stage is not LifecycleStage.ACTIVE:
            raise RunNotActive(run_id, run.lifecycle_stage)
        return run

    def _model(self, model_id: str) -> LoggedModel:
        model = self._models.get(model_id)
        if model is None:
            raise LoggedModelNotFound(model_id)
        return model

    def _record(self, run: Run) -> RunRecord:
        rows = self._rows[run.id]
        return RunRecord(
            run=run,
            data=RunData(params=dict(rows.params), metrics=dict(rows.latest), tags=dict(rows.tags)),
            inputs=tuple(rows.inputs[k] for k in sorted(rows.inputs)),
            outputs=tuple(sorted(rows.outputs, key=lambda o: (o.step, o.model_id))),
        )

    def _forget(self, experiment_id: str) -> None:
        for run_id in [i for i, r in self._runs.items() if r.experiment_id == experiment_id]:
            del self._runs[run_id]
            del self._rows[run_id]
        self._experiment_tags.pop(experiment_id, None)
        for model_id in [i for i, m in self._models.items() if m.experiment_id == experiment_id]:
            del self._models[model_id]


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[TrackingStore] = MemoryTrackingStore
