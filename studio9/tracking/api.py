"""HTTP routes of experiment tracking, under ``/api/v1/experiments`` and ``/api/v1/runs``.

The native face of the store the MLflow face (``/api/2.0/mlflow``) also serves: one
``ExperimentService`` and one ``TrackingService`` under both, so a run logged by an MLflow
client reads here and the other way round. An experiment is a catalog asset: reading it and its
runs needs read access (else 404, as if it did not exist), logging and changing need write
(else 403), deleting the experiment needs ownership. ``{experiment_id}`` ``0`` is the caller's
``Default`` experiment.

Times of runs and metric points are milliseconds since the epoch; a metric value that is NaN or
an infinity travels as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, both ways
(``studio9.tracking.wire``).
"""

import contextlib
from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post, put
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from studio9.auth.domain import Principal
from studio9.catalog.domain import Access
from studio9.tracking.artifacts import ArtifactService
from studio9.tracking.domain import LifecycleStage, Metric, Param, RunTag, TagNotFound
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.service import TrackingService, now_ms
from studio9.tracking.wire import (
    ExperimentChangesIn,
    ExperimentIn,
    ExperimentListOut,
    ExperimentOut,
    ExperimentTagIn,
    HistoryOut,
    LogIn,
    RunChangesIn,
    RunIn,
    RunOut,
    RunPageOut,
    SearchIn,
    experiment_out,
    metric_value,
    point_out,
    run_out,
)
from studio9.web.paging import ID_CURSOR, keyset_page
from studio9.web.responses import problems

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")]
#: A page of a metric's history starts at a store page token (base64).
HistoryCursor = Annotated[
    str | None,
    QueryParameter(
        pattern="^[A-Za-z0-9+/]{1,400}={0,2}$", description="the `next_cursor` of the page before, unchanged"
    ),
]


class ExperimentController(Controller):
    path = "/experiments"
    tags = ["experiments"]

    @post("/", operation_id="CreateExperiment", status_code=201, responses=problems(409))
    async def create_experiment(
        self,
        data: JSONBody[ExperimentIn],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> ExperimentOut:
        """A new experiment of the caller's (409 if they have one of that name)."""
        experiment = await experiment_service.create(
            principal, data.name, tags=data.tags, description=data.description
        )
        return experiment_out(experiment)

    @get("/", operation_id="ListExperiments")
    async def list_experiments(
        self,
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ExperimentListOut:
        """The caller's experiments, newest first (those shared with them are in the library:
        ``GET /api/v1/assets?kind=experiment&scope=shared``)."""
        items, next_cursor = await keyset_page(
            lambda limit, after: experiment_service.mine(principal, limit=limit, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda experiment: experiment.id,
        )
        return ExperimentListOut(items=[experiment_out(e) for e in items], next_cursor=next_cursor)

    @get("/{experiment_id:str}", operation_id="GetExperiment")
    async def get_experiment(
        self,
        experiment_id: FromPath[str],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> ExperimentOut:
        """The experiment and its tags."""
        return experiment_out(await experiment_service.get(principal, experiment_id))

    @patch("/{experiment_id:str}", operation_id="UpdateExperiment", responses=problems(403, 409))
    async def update_experiment(
        self,
        experiment_id: FromPath[str],
        data: JSONBody[ExperimentChangesIn],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> ExperimentOut:
        """Rename the experiment (409 if the owner has another of that name)."""
        if data.name is None:
            asset = await experiment_service.require(principal, experiment_id, Access.WRITE)
            return experiment_out(await experiment_service.get(principal, asset.id))
        return experiment_out(await experiment_service.rename(principal, experiment_id, data.name))

    @delete_route(
        "/{experiment_id:str}", operation_id="DeleteExperiment", status_code=204, responses=problems(403)
    )
    async def delete_experiment(
        self,
        experiment_id: FromPath[str],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> None:
        """Delete the experiment with its runs, their data and artifacts (its owner, admins)."""
        await experiment_service.delete(principal, experiment_id)

    @put(
        "/{experiment_id:str}/tags/{key:path}",
        operation_id="SetExperimentTag",
        status_code=204,
        responses=problems(403),
    )
    async def set_tag(
        self,
        experiment_id: FromPath[str],
        key: FromPath[str],
        data: JSONBody[ExperimentTagIn],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> None:
        """Set the experiment's tag ``key`` (a new value overwrites)."""
        await experiment_service.set_tag(principal, experiment_id, key.removeprefix("/"), data.value)

    @delete_route(
        "/{experiment_id:str}/tags/{key:path}",
        operation_id="DeleteExperimentTag",
        status_code=204,
        responses=problems(403),
    )
    async def delete_tag(
        self,
        experiment_id: FromPath[str],
        key: FromPath[str],
        principal: NamedDependency[Principal],
        experiment_service: NamedDependency[ExperimentService],
    ) -> None:
        """Remove the experiment's tag ``key``; removing one it does not have is no error."""
        # Raised past the access check: the caller may change the experiment, nothing leaks.
        with contextlib.suppress(TagNotFound):
            await experiment_service.delete_tag(principal, experiment_id, key.removeprefix("/"))

    @post("/{experiment_id:str}/runs", operation_id="CreateRun", status_code=201, responses=problems(403))
    async def create_run(
        self,
        experiment_id: FromPath[str],
        data: JSONBody[RunIn],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> RunOut:
        """A new ``RUNNING`` run in the experiment (write access); ``parent_run_id`` nests it."""
        record = await tracking_service.create_run(
            principal,
            experiment_id,
            name=data.name,
            start_time=data.start_time,
            tags=data.tags,
            parent_run_id=data.parent_run_id,
        )
        return run_out(record)


class RunController(Controller):
    path = "/runs"
    tags = ["runs"]

    @post("/search", operation_id="SearchRuns", status_code=200, opt={"read_only": True})
    async def search_runs(
        self,
        data: JSONBody[SearchIn],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> RunPageOut:
        """Runs of the experiments that match ``filter``, in ``order_by`` order (newest first by
        default). A filter or an order the search language does not read is a 422 naming it."""
        records, next_cursor = await tracking_service.search_runs(
            principal,
            data.experiment_ids,
            filter=data.filter,
            order_by=data.order_by,
            max_results=data.limit,
            page_token=data.cursor,
            view=data.view,
        )
        return RunPageOut(items=[run_out(r) for r in records], next_cursor=next_cursor)

    @get("/{run_id:str}", operation_id="GetRun")
    async def get_run(
        self,
        run_id: FromPath[str],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> RunOut:
        """The run with its params, tags, latest metric values, dataset inputs and model outputs."""
        return run_out(await tracking_service.run(principal, run_id))

    @patch("/{run_id:str}", operation_id="UpdateRun", responses=problems(403))
    async def update_run(
        self,
        run_id: FromPath[str],
        data: JSONBody[RunChangesIn],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> RunOut:
        """Change the run's status, end time or name (a deleted run is a 422: restore it first)."""
        await tracking_service.update_run(
            principal, run_id, status=data.status, end_time=data.end_time, name=data.name
        )
        return run_out(await tracking_service.run(principal, run_id))

    @delete_route("/{run_id:str}", operation_id="DeleteRun", status_code=204, responses=problems(403))
    async def delete_run(
        self,
        run_id: FromPath[str],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> None:
        """Mark the run deleted: it leaves searches (``view: DELETED_ONLY`` finds it) and takes no
        more data; it is gone for good with its experiment."""
        await tracking_service.set_lifecycle(principal, run_id, LifecycleStage.DELETED)

    @post(
        "/{run_id:str}/log",
        operation_id="LogRun",
        status_code=204,
        responses=problems(403),
        # Data points on a run whose create is audited: one event per batch would flood the log.
        opt={"audit": False},
    )
    async def log(
        self,
        run_id: FromPath[str],
        data: JSONBody[LogIn],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
    ) -> None:
        """Log params, metric points and tags, all or nothing. A metric value may be a number or
        ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (JSON has none of them); a point without a
        ``timestamp`` gets the request's time. Logging a param again with another value, or to a
        deleted run, is a 422."""
        at = now_ms()
        await tracking_service.log_batch(
            principal,
            run_id,
            metrics=[
                Metric(m.key, metric_value(m.value), at if m.timestamp is None else m.timestamp, m.step)
                for m in data.metrics or ()
            ],
            params=[Param(k, v) for k, v in (data.params or {}).items()],
            tags=[RunTag(k, v) for k, v in (data.tags or {}).items()],
        )

    @get("/{run_id:str}/metrics/{key:path}", operation_id="GetMetricHistory")
    async def metric_history(
        self,
        run_id: FromPath[str],
        key: FromPath[str],
        principal: NamedDependency[Principal],
        tracking_service: NamedDependency[TrackingService],
        limit: Annotated[int, QueryParameter(ge=1, le=25_000)] = 1000,
        cursor: HistoryCursor = None,
    ) -> HistoryOut:
        """Every point of the metric, by step then timestamp (none if the run never logged it)."""
        points, next_cursor = await tracking_service.metric_history(
            principal, run_id, key.removeprefix("/"), max_results=limit, page_token=cursor
        )
        return HistoryOut(items=[point_out(p) for p in points], next_cursor=next_cursor)


def provide_experiment_service(request: Request[Any, Any, Any]) -> ExperimentService:
    service: ExperimentService = request.app.state.container.experiments
    return service


def provide_tracking_service(request: Request[Any, Any, Any]) -> TrackingService:
    service: TrackingService = request.app.state.container.tracking
    return service


def provide_artifact_service(request: Request[Any, Any, Any]) -> ArtifactService:
    service: ArtifactService = request.app.state.container.artifacts
    return service
