"""The ``ml.train`` job type: a table in, a registered model version, its report and scored tables out.

The job, acting as its owner (``owner_principal``: it reads exactly the tables they may read):

1. reads the table (and a hold-out or out-of-time table) at the version asked for, or the latest;
2. trains (``studio9.ml.engine.training.train``) in a worker thread, reporting progress per fit;
   a cancel stops it before the next fit, the time budget keeps the best model so far;
3. writes its outputs, each created under an id derived from the job's own (``derived_id``), so
   that a retried job finds what an earlier attempt made: the scored tables (training rows,
   hold-out rows, out-of-time rows, each with ``prediction`` and ``probability_<class>``
   columns), the metrics report (a ``report`` asset) and the skops file;
4. last, adds the model version (the commit point: a retry that finds a version made by this
   job only finishes the bookkeeping), its registry row, and lineage from every table version read.

All along it logs MLflow-style runs (``studio9.ml.run_log``): a parent run, started before the
tables are read for training and finished with the version (whose registry ``run_id`` it is), and
a child run per candidate of the search; a failed or cancelled job ends its parent run so.

The model is the owner's model ``model_name`` (default ``<table name>-<target>``), created on
its first version. A cancelled or failed training adds no version.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any, Final, Literal

import anyio
import attrs
import msgspec
import structlog

from studio9.auth.domain import Principal
from studio9.auth.ports import UserStore, owner_principal
from studio9.catalog.domain import AssetKind, AssetNotFound, AssetStatus, AssetVersion, VersionConflict
from studio9.files.ports import BlobStore
from studio9.ids import derived_id
from studio9.jobs.ports import JobContext, JobType
from studio9.ml.content import ModelContent, artifact_key, metric_summary, one_chunk
from studio9.ml.domain import ModelSource, ModelVersionInfo
from studio9.ml.ports import ModelCatalog, ModelRegistryStore
from studio9.ml.run_log import TrainingRuns, start_runs
from studio9.tables.ports import LocalTable, TableFiles
from studio9.tracking.ports import RunTracking

log = structlog.get_logger()

TRAIN_JOB: Final = "ml.train"
TRAIN_ATTEMPTS: Final = 2
#: Share of the progress bar the fits take; reading before, writing the outputs after.
_FIT_START, _FIT_END = 0.05, 0.85


class TableRef(msgspec.Struct, forbid_unknown_fields=True):
    """A table by id (or ``owner/name``) and, optionally, version."""

    id: str
    version: int | None = None


TableArg = str | TableRef


class SearchParams(msgspec.Struct, forbid_unknown_fields=True):
    method: Literal["none", "random", "halving"] = "random"
    n_candidates: int = 8
    cv_folds: int = 3


class ValidationParams(msgspec.Struct, forbid_unknown_fields=True):
    holdout_fraction: float | None = None
    holdout_table: TableArg | None = None


class TrainParams(msgspec.Struct, forbid_unknown_fields=True):
    """Train a model on ``table`` to predict ``target``."""

    table: TableArg
    target: str
    features: list[str] | None = None
    task: Literal["auto", "regression", "binary", "multiclass"] = "auto"
    algorithms: list[str] | None = None
    search: SearchParams | None = None
    time_budget_s: float | None = None
    validation: ValidationParams | None = None
    out_of_time_table: TableArg | None = None
    weight_column: str | None = None
    seed: int = 0
    model_name: str | None = None
    #: The experiment the job's runs go to (``studio9.ml.run_log``); default: the model's name.
    experiment: str | None = None


def table_arg(arg: TableArg) -> tuple[str, int | None]:
    return (arg, None) if isinstance(arg, str) else (arg.id, arg.version)


@attrs.frozen
class TrainDeps:
    catalog: ModelCatalog
    registry: ModelRegistryStore
    tables: TableFiles
    users: UserStore
    blobs: BlobStore
    tracking: RunTracking


def train_job_type(deps: TrainDeps) -> JobType:
    """The ``ml.train`` job type (registered by the composition root)."""
    return JobType(
        name=TRAIN_JOB,
        handler=functools.partial(_train, deps),
        params=TrainParams,
        timeout=12 * 3600,
        max_attempts=TRAIN_ATTEMPTS,
        retry_on=(OSError,),
        description="Train a scikit-learn model on a table; registers a model version with its metrics.",
    )


async def _train(deps: TrainDeps, ctx: JobContext, params: TrainParams) -> dict[str, Any]:
    actor = await owner_principal(deps.users, ctx.owner_id, ctx.job_id)
    spec = _spec(params)  # bad params fail before any table is read
    async with _opened(deps.tables, actor, params) as (main, holdout, later):
        name = params.model_name or f"{main.name}-{params.target}"
        read = [("training", main), ("validation", holdout), ("test", later)]
        runs = await start_runs(deps.tracking, actor, ctx.job_id, params.experiment, name, spec, read)
        model = await _model_asset(deps, actor, name, ctx.job_id)
        inputs = _inputs(main, holdout, later)
        try:
            if (done := await _made_by(deps, actor, model, ctx.job_id)) is not None:
                return await _finish(deps, ctx, done, inputs, runs)
            ctx.report(0.02, message=f"reading {main.row_count} rows of {main.name}")
            result, frames = await ctx.in_thread(functools.partial(_fit, ctx, spec, main, holdout, later))
            await runs.trained(result, spec.search.cv_folds)
            ctx.report(_FIT_END, message=f"best: {result.algorithm}; writing outputs")
            outputs = await _write_outputs(deps, ctx, actor, name, result, frames, inputs)
            version = await _add_version(deps, ctx, actor, model.id, result, outputs, inputs, main)
            return await _finish(deps, ctx, version, inputs, runs)
        except BaseException as exc:
            await runs.ended(exc)
            raise


def _spec(params: TrainParams) -> Any:
    from studio9.ml.engine.spec import SearchSpec, TrainSpec

    search = params.search or SearchParams()
    fraction = params.validation.holdout_fraction if params.validation is not None else None
    return TrainSpec(
        target=params.target,
        features=params.features,
        task=params.task,
        algorithms=params.algorithms,
        search=SearchSpec(method=search.method, n_candidates=search.n_candidates, cv_folds=search.cv_folds),
        time_budget_s=params.time_budget_s,
        holdout_fraction=0.2 if fraction is None else fraction,
        weight_column=params.weight_column,
        seed=params.seed,
    )


@contextlib.asynccontextmanager
async def _opened(
    tables: TableFiles, actor: Principal, params: TrainParams
) -> AsyncIterator[tuple[LocalTable, LocalTable | None, LocalTable | None]]:
    async with contextlib.AsyncExitStack() as stack:
        main = await stack.enter_async_context(tables.open(actor, *table_arg(params.table)))
        holdout = later = None
        if params.validation is not None and params.validation.holdout_table is not None:
            holdout = await stack.enter_async_context(
                tables.open(actor, *table_arg(params.validation.holdout_table))
            )
        if params.out_of_time_table is not None:
            later = await stack.enter_async_context(tables.open(actor, *table_arg(params.out_of_time_table)))
        yield main, holdout, later


def _inputs(*tables: LocalTable | None) -> list[tuple[str, int]]:
    return sorted({(t.asset_id, t.version) for t in tables if t is not None})


def _fit(
    ctx: JobContext,
    spec: Any,
    main: LocalTable,
    holdout: LocalTable | None,
    later: LocalTable | None,
) -> tuple[Any, dict[str, Any]]:
    """Train in this worker thread; the frames come back for the scored tables."""
    from studio9.ml.engine.spec import Progress
    from studio9.ml.engine.training import evaluate, train
    from studio9.ml.frames import read_frame

    frame = read_frame(main.paths)
    held = read_frame(holdout.paths) if holdout is not None else None
    oot = read_frame(later.paths) if later is not None else None

    def progress(step: Progress) -> None:
        share = step.done / step.total if step.total else 1.0
        ctx.report(_FIT_START + (_FIT_END - _FIT_START) * share, message=step.message)

    def should_stop() -> bool:
        ctx.check_interrupted()  # raises JobInterrupted on a cancel or a timeout
        return False

    result = train(frame, spec, holdout=held, progress=progress, should_stop=should_stop)
    if oot is not None:  # measured too: how the model does on later data is the point of it
        measured = evaluate(
            result.pipeline, result.task, result.classes, oot, spec.target, spec.weight_column
        )
        result = attrs.evolve(result, metrics={**result.metrics, "out_of_time": measured})
    return result, {"frame": frame, "holdout": held, "out_of_time": oot}


async def _model_asset(deps: TrainDeps, actor: Principal, name: str, job_id: str) -> Any:
    try:
        return await deps.catalog.named(actor, actor.user_id, AssetKind.MODEL, name)
    except AssetNotFound:
        return await deps.catalog.create(
            owner_id=actor.user_id,
            kind=AssetKind.MODEL,
            name=name,
            content=None,
            in_library=True,
            job_id=job_id,
        )


async def _made_by(deps: TrainDeps, actor: Principal, model: Any, job_id: str) -> AssetVersion | None:
    """The version of ``model`` this job added already (a retry), if any: the newest few."""
    for number in range(model.latest_version, max(0, model.latest_version - 20), -1):
        _, version = await deps.catalog.read(actor, model.id, number)
        if version is not None and version.job_id == job_id:
            return version
    return None


async def _write_outputs(
    deps: TrainDeps,
    ctx: JobContext,
    actor: Principal,
    name: str,
    result: Any,
    frames: dict[str, Any],
    inputs: Sequence[tuple[str, int]],
) -> dict[str, Any]:
    from studio9.ml.engine.training import predict_frame
    from studio9.ml.frames import write_scored
    from studio9.ml.persistence import dump_model

    scored: dict[str, str] = {}
    # The rows measured, with the predictions the engine made for their metrics (not made twice).
    splits: dict[str, tuple[Any, dict[str, Any]]] = {}
    for split, (positions, predictions) in result.scored.items():
        source = (
            frames["holdout"] if split == "holdout" and frames["holdout"] is not None else frames["frame"]
        )
        splits[split] = (source.iloc[positions], predictions)
    if frames["out_of_time"] is not None:
        later = frames["out_of_time"]
        made = await ctx.in_thread(predict_frame, result.pipeline, result.task, result.classes, later)
        splits["out_of_time"] = (later, made)
    for split, (rows, predictions) in splits.items():
        path = ctx.scratch / f"scored-{split}.parquet"
        await anyio.Path(ctx.scratch).mkdir(parents=True, exist_ok=True)
        await ctx.in_thread(write_scored, rows, predictions, path)
        table = derived_id(ctx.job_id, f"scored-{split}")
        await deps.tables.write(
            ctx,
            actor,
            table_id=table,
            name=f"{name} scored {split.replace('_', '-')}",
            path=path,
            inputs=inputs,
            source={"job": ctx.job_id, "model": name, "split": split},
            description=f"The {split.replace('_', ' ')} rows, scored by the model of job {ctx.job_id}.",
        )
        scored[split] = table
    report = derived_id(ctx.job_id, "report")
    body = {
        "task": result.task,
        "target": result.target,
        "metric": result.metric,
        "metrics": result.metrics,
        "leaderboard": result.leaderboard,
        "importance": result.importance,
        "warnings": list(result.warnings),
        "stopped": result.stopped,
    }
    try:
        await deps.catalog.get(actor, report)
    except AssetNotFound:
        await deps.catalog.create(
            asset_id=report,
            owner_id=actor.user_id,
            kind=AssetKind.REPORT,
            name=f"{name} training report",
            content=body,
            job_id=ctx.job_id,
        )
        await deps.catalog.record_lineage(job_id=ctx.job_id, inputs=list(inputs), outputs=[(report, 1)])
    data = await ctx.in_thread(dump_model, result.pipeline)
    return {"scored": scored, "report": report, "skops": data}


async def _add_version(
    deps: TrainDeps,
    ctx: JobContext,
    actor: Principal,
    model_id: str,
    result: Any,
    outputs: dict[str, Any],
    inputs: Sequence[tuple[str, int]],
    main: LocalTable,
) -> AssetVersion:
    import sklearn

    key = artifact_key(model_id, ctx.job_id)
    await deps.blobs.put(key, one_chunk(outputs["skops"]))
    content = ModelContent(
        artifact=key,
        task=result.task,
        target=result.target,
        features=tuple(result.features),
        input_schema=tuple(result.input_schema),
        classes=None if result.classes is None else tuple(result.classes),
        algorithm=result.algorithm,
        params=_jsonable(result.params),
        metrics=metric_summary(result.metrics, result.task),
        report=outputs["report"],
        scored=outputs["scored"],
        training={"job": ctx.job_id, "table": main.asset_id, "table_version": main.version},
        sklearn_version=sklearn.__version__,
    )
    while True:
        model = await deps.catalog.get(actor, model_id)
        try:
            _, version = await deps.catalog.add_version(
                model_id,
                content.to_json(),
                expected_latest=model.latest_version,
                job_id=ctx.job_id,
                status=AssetStatus.ACTIVE,
            )
            return version
        except VersionConflict:
            latest = await deps.catalog.get(actor, model_id)
            if (done := await _made_by(deps, actor, latest, ctx.job_id)) is not None:
                return done
            # Another training of the same model added a version first: ours is the next one.


async def _finish(
    deps: TrainDeps,
    ctx: JobContext,
    version: AssetVersion,
    inputs: Sequence[tuple[str, int]],
    runs: TrainingRuns,
) -> dict[str, Any]:
    """The registry row and lineage of ``version`` (again, harmlessly, on a retry), the parent run
    finished, and the result."""
    now = datetime.now(UTC)
    await deps.registry.put_version(
        ModelVersionInfo(
            asset_id=version.asset_id,
            version=version.version,
            run_id=runs.run_id,
            source=ModelSource.TRAINING,
            created_at=now,
            updated_at=now,
        )
    )
    await deps.catalog.record_lineage(
        job_id=ctx.job_id, inputs=list(inputs), outputs=[(version.asset_id, version.version)]
    )
    await runs.finished(version.version)
    content = ModelContent.of(version.content)
    ctx.report(1.0, message=f"model version {version.version} registered")
    return {
        "model": {"id": version.asset_id, "version": version.version},
        "run": {"id": runs.run_id, "experiment_id": runs.experiment_id},
        "task": content.task,
        "algorithm": content.algorithm,
        "metrics": dict(content.metrics),
        "report": content.report,
        "scored": dict(content.scored),
    }


def _jsonable(value: Any) -> Any:
    """Parameters as JSON keeps them (numpy scalars to Python, anything else to its text)."""

    def plain(item: Any) -> Any:
        return item.item() if hasattr(item, "item") else str(item)

    return msgspec.json.decode(msgspec.json.encode(value, enc_hook=plain))
