"""The ``ml.predict`` and ``ml.evaluate`` job types: a model version applied to a table.

``ml.predict {model, table}``: every row of the table, with the model's ``prediction`` (and
``probability_<class>``) columns after its own, as a new table with lineage from the table and
the model version; the same rows also go to the prediction sink as one prediction set (the
job's own: a retry replaces it, never doubles it), keyed by ``key_column`` or the row number.

``ml.evaluate {model, table}``: the model's metrics on a labelled table (its ``target``
column, by default the one it was trained on), as a ``report`` asset with lineage.

``model`` is a reference: ``name@alias``, ``name/version``, ``owner/name@alias``... Both jobs
act as their owner: they may use a model and a table shared with them. Outputs are created
under ids derived from the job's (``derived_id``), so a retried job makes no second one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, Final

import anyio
import attrs
import msgspec

from studio9.auth.ports import UserStore, owner_principal
from studio9.catalog.domain import AssetKind, AssetNotFound
from studio9.files.ports import BlobStore
from studio9.ids import derived_id
from studio9.jobs.ports import JobContext, JobType
from studio9.ml.service import ModelService, ModelVersionView
from studio9.ml.serving import require_servable
from studio9.ml.train_job import TableArg, table_arg
from studio9.predictions.domain import ScoredRow
from studio9.predictions.ports import PredictionRecorder
from studio9.tables.ports import LocalTable, TableFiles

PREDICT_JOB: Final = "ml.predict"
EVALUATE_JOB: Final = "ml.evaluate"


class PredictParams(msgspec.Struct, forbid_unknown_fields=True):
    """Score every row of ``table`` with ``model`` (``name@alias`` or ``name/version``)."""

    model: str
    table: TableArg
    #: The column whose values name the rows in the prediction sink (default: the row number).
    key_column: str | None = None


class EvaluateParams(msgspec.Struct, forbid_unknown_fields=True):
    """Measure ``model`` on the labelled ``table``."""

    model: str
    table: TableArg
    #: The label column (default: the target the model was trained on).
    target: str | None = None


@attrs.frozen(kw_only=True)
class ScoreDeps:
    models: ModelService
    tables: TableFiles
    users: UserStore
    blobs: BlobStore
    recorder: PredictionRecorder
    allowed_types: frozenset[str] = frozenset()


def predict_job_type(deps: ScoreDeps) -> JobType:
    return JobType(
        name=PREDICT_JOB,
        handler=functools.partial(_predict, deps),
        params=PredictParams,
        timeout=6 * 3600,
        max_attempts=2,
        retry_on=(OSError,),
        description="Score a table with a model version: a new table of predictions, also stored as a "
        "prediction set.",
    )


def evaluate_job_type(deps: ScoreDeps) -> JobType:
    return JobType(
        name=EVALUATE_JOB,
        handler=functools.partial(_evaluate, deps),
        params=EvaluateParams,
        timeout=6 * 3600,
        max_attempts=2,
        retry_on=(OSError,),
        description="Measure a model version on a labelled table: a metrics report asset.",
    )


async def _model(deps: ScoreDeps, ctx: JobContext, reference: str) -> tuple[Any, ModelVersionView, Any]:
    actor = await owner_principal(deps.users, ctx.owner_id, ctx.job_id)
    view = await deps.models.resolve(actor, reference)
    require_servable(view)
    data = b"".join([chunk async for chunk in await deps.blobs.open(view.content.artifact)])
    pipeline = await ctx.in_thread(_load, data, deps.allowed_types)
    return actor, view, pipeline


def _load(data: bytes, allowed: frozenset[str]) -> Any:
    from studio9.ml.persistence import load_model

    return load_model(data, allowed=allowed)


async def _predict(deps: ScoreDeps, ctx: JobContext, params: PredictParams) -> dict[str, Any]:
    actor, view, pipeline = await _model(deps, ctx, params.model)
    ctx.report(0.1, message=f"scoring with {view.asset.name} version {view.version.version}")
    async with deps.tables.open(actor, *table_arg(params.table)) as table:
        frame, predictions = await ctx.in_thread(_score, pipeline, view, table, params.key_column)
        path = ctx.scratch / "predictions.parquet"
        await anyio.Path(ctx.scratch).mkdir(parents=True, exist_ok=True)
        from studio9.ml.frames import write_scored

        rows = await ctx.in_thread(write_scored, frame, predictions, path)
        ctx.report(0.6, message=f"{rows} rows scored; storing them")
        output = derived_id(ctx.job_id, "predictions")
        inputs = [(table.asset_id, table.version), (view.asset.id, view.version.version)]
        await deps.tables.write(
            ctx,
            actor,
            table_id=output,
            name=f"{table.name} scored by {view.asset.name} v{view.version.version}",
            path=path,
            inputs=inputs,
            source={"job": ctx.job_id, "model": view.asset.id, "model_version": view.version.version},
        )
    keys = _keys(frame, params.key_column)
    scored = _scored_rows(view, predictions, keys)
    result = await deps.recorder.record(
        scored,
        owner_id=actor.user_id,
        model_id=view.asset.id,
        model_version=str(view.version.version),
        set_key=f"job:{ctx.job_id}",
        source_job_id=ctx.job_id,
    )
    ctx.report(1.0, message=f"{rows} predictions stored")
    return {
        "model": {"id": view.asset.id, "name": view.asset.name, "version": view.version.version},
        "table": output,
        "rows": rows,
        "prediction_set": {"rows": result.rows, "replaced": result.replaced},
    }


def _score(
    pipeline: Any, view: ModelVersionView, table: LocalTable, key_column: str | None
) -> tuple[Any, Any]:
    from studio9.errors import InvalidInput
    from studio9.ml.engine.training import predict_frame
    from studio9.ml.frames import read_frame

    frame = read_frame(table.paths)
    if key_column is not None and key_column not in frame.columns:
        raise InvalidInput(
            f"key_column {key_column!r} is not a column of table {table.name!r}", field="key_column"
        )
    missing = [f for f in view.content.features if f not in frame.columns]
    if missing:
        raise InvalidInput(
            f"table {table.name!r} lacks the model's column(s) {', '.join(map(repr, missing))}", field="table"
        )
    content = view.content
    return frame, predict_frame(pipeline, content.task, content.classes, frame)  # type: ignore[arg-type]


def _keys(frame: Any, key_column: str | None) -> list[str]:
    if key_column is None:
        return [str(i) for i in range(1, len(frame) + 1)]
    return [str(v) for v in frame[key_column].tolist()]


def _scored_rows(view: ModelVersionView, predictions: Mapping[str, Any], keys: list[str]) -> list[ScoredRow]:
    labels = predictions["prediction"]
    if view.content.task == "regression":
        return [ScoredRow(item_key=k, label=repr(float(v))) for k, v in zip(keys, labels, strict=True)]
    classes = [str(c) for c in view.content.classes or ()]
    columns = [predictions[f"probability_{c}"] for c in view.content.classes or ()]
    rows = []
    for i, (key, label) in enumerate(zip(keys, labels, strict=True)):
        probabilities = {c: float(column[i]) for c, column in zip(classes, columns, strict=True)}
        rows.append(
            ScoredRow(
                item_key=key,
                label=str(label),
                confidence=probabilities.get(str(label)),
                probabilities=probabilities,
            )
        )
    return rows


async def _evaluate(deps: ScoreDeps, ctx: JobContext, params: EvaluateParams) -> dict[str, Any]:
    actor, view, pipeline = await _model(deps, ctx, params.model)
    target = params.target or view.content.target
    if target is None:
        from studio9.errors import InvalidInput

        raise InvalidInput("the model does not know its target column: name it in target", field="target")
    async with deps.tables.open(actor, *table_arg(params.table)) as table:
        metrics = await ctx.in_thread(_measure, pipeline, view, table, target)
        inputs = [(table.asset_id, table.version), (view.asset.id, view.version.version)]
        name = f"{view.asset.name} v{view.version.version} on {table.name}"
    report = derived_id(ctx.job_id, "report")
    body = {"task": view.content.task, "target": target, "metrics": {"table": metrics}}
    try:
        await deps.models.catalog.get(actor, report)
    except AssetNotFound:
        await deps.models.catalog.create(
            asset_id=report,
            owner_id=actor.user_id,
            kind=AssetKind.REPORT,
            name=f"evaluation of {name}",
            content=body,
            job_id=ctx.job_id,
        )
    await deps.models.catalog.record_lineage(job_id=ctx.job_id, inputs=inputs, outputs=[(report, 1)])
    ctx.report(1.0, message="evaluated")
    scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float) or v is None}
    return {
        "model": {"id": view.asset.id, "name": view.asset.name, "version": view.version.version},
        "report": report,
        "metrics": scalars,
    }


def _measure(pipeline: Any, view: ModelVersionView, table: LocalTable, target: str) -> dict[str, Any]:
    from studio9.ml.engine.training import evaluate
    from studio9.ml.frames import read_frame

    frame = read_frame(table.paths)
    return evaluate(pipeline, view.content.task, view.content.classes, frame, target)  # type: ignore[arg-type]
