"""The ``ml.score`` job type: a batch of rows scored by a model, for message streams (TAURUS).

A stream whose ``job_type`` is ``ml.score`` and ``params`` ``{"model": "churn@champion"}`` sends
each batch of items as ``{"model": ..., "items": [row, ...]}``: the rows are scored by the
version the reference names now (an alias moved since the last batch: the new version), with
the online predictor's cache of loaded models, and stored in the prediction sink as one
prediction set per job (a retry replaces it). An item's ``key_field`` value names its
prediction in the sink (default: its position in the batch, from 1). The job's result holds
the predictions in item order.
"""

from __future__ import annotations

import functools
from typing import Any, Final

import attrs
import msgspec

from studio9.auth.ports import UserStore, owner_principal
from studio9.jobs.ports import JobContext, JobType
from studio9.ml.domain import parse_model_ref
from studio9.ml.prediction_log import scored_row
from studio9.ml.serving import OnlinePredictor
from studio9.predictions.ports import PredictionRecorder

SCORE_JOB: Final = "ml.score"


class ScoreParams(msgspec.Struct, forbid_unknown_fields=True):
    """Score ``items`` (objects of column name to value) with ``model`` (``name@alias``...)."""

    model: str
    items: list[dict[str, Any]]
    #: The item field whose value names its prediction in the sink (default: its position).
    key_field: str | None = None


@attrs.frozen
class ScoreJobDeps:
    predictor: OnlinePredictor
    users: UserStore
    recorder: PredictionRecorder


def score_job_type(deps: ScoreJobDeps) -> JobType:
    return JobType(
        name=SCORE_JOB,
        handler=functools.partial(_score, deps),
        params=ScoreParams,
        timeout=600,
        max_attempts=2,
        retry_on=(OSError,),
        description="Score a batch of rows (a stream's items) with a model; stored as a prediction set.",
    )


async def _score(deps: ScoreJobDeps, ctx: JobContext, params: ScoreParams) -> dict[str, Any]:
    actor = await owner_principal(deps.users, ctx.owner_id, ctx.job_id)
    ref = parse_model_ref(params.model)
    asset = await deps.predictor.models.model(actor, ref.name, owner=ref.owner)
    answer = await deps.predictor.predict(
        actor,
        asset.id,
        params.items,
        alias=ref.alias if ref.version is None else None,
        version=ref.version,
        logged=False,  # stored below, as this job's own prediction set
    )
    keys = [
        str(item.get(params.key_field)) if params.key_field is not None else str(i)
        for i, item in enumerate(params.items, start=1)
    ]
    await deps.recorder.record(
        [attrs.evolve(scored_row(p), item_key=k) for p, k in zip(answer.predictions, keys, strict=True)],
        owner_id=actor.user_id,
        model_id=asset.id,
        model_version=str(answer.version),
        set_key=f"job:{ctx.job_id}",
        source_job_id=ctx.job_id,
    )
    return {"model": {"name": answer.name, "version": answer.version}, "predictions": answer.predictions}
