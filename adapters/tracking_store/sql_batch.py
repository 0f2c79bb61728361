"""The writes of ``SqlTrackingStore.log_batch`` (``sql.py``), each in the caller's transaction and in
bulk (one statement per table, executemany).

Params are written first (INSERT … ON CONFLICT DO NOTHING) and read back: a key logged before, or
by a batch committed meanwhile, shows its stored value, and a different one fails the caller's
whole transaction (ParamChanged). The latest metric values are an upsert whose update only applies
when the new point is more recent (a row-value comparison in ``ON CONFLICT … WHERE``), so
concurrent batches of one run cannot leave an older point as the latest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.tracking_store.sql_logged_models import insert_for
from adapters.tracking_store.sql_models import LATEST, METRICS, PARAMS, RUNS, TAGS
from studio9.tracking.domain import RUN_NAME_TAG, Metric, Param, ParamChanged, RunTag


async def log_params(session: AsyncSession, run_id: str, params: Sequence[Param]) -> None:
    rows = [{"run_id": run_id, "key": p.key, "value": p.value} for p in params]
    await session.execute(insert_for(session)(PARAMS).on_conflict_do_nothing(), rows)
    # Read back after the insert: what is stored now is ours, or what was there (or committed
    # meanwhile) first; a value other than ours fails the batch.
    query = sa.select(PARAMS.c.key, PARAMS.c.value).where(
        PARAMS.c.run_id == run_id, PARAMS.c.key.in_([p.key for p in params])
    )
    stored = {key: value for key, value in await session.execute(query)}
    for param in params:
        if stored[param.key] != param.value:
            raise ParamChanged(run_id, param.key, stored[param.key], param.value)


async def log_metrics(session: AsyncSession, run_id: str, metrics: Sequence[Metric]) -> None:
    points: dict[tuple[Any, ...], Metric] = {}
    latest: dict[str, Metric] = {}
    for metric in metrics:
        first = points.setdefault(metric.identity, metric)
        if first.model_id is None and metric.model_id is not None:
            points[metric.identity] = metric
        best = latest.get(metric.key)
        if best is None or metric.recency > best.recency:
            latest[metric.key] = metric
    insert = insert_for(session)
    history = insert(METRICS)
    history = history.on_conflict_do_update(
        index_elements=["run_id", "key", "step", "timestamp", "is_nan", "value"],
        set_={"model_id": history.excluded.model_id},
        # A point sent again for a logged model (MLflow 3 does) gets the model if it had none.
        where=sa.and_(METRICS.c.model_id.is_(None), history.excluded.model_id.is_not(None)),
    )
    await session.execute(history, [_metric_values(run_id, m) for m in points.values()])
    newest = insert(LATEST)
    newest = newest.on_conflict_do_update(
        index_elements=["run_id", "key"],
        set_={c: newest.excluded[c] for c in ("step", "timestamp", "is_nan", "value", "model_id")},
        where=_recency(newest.excluded) > _recency(LATEST.c),
    )
    await session.execute(newest, [_metric_values(run_id, m) for m in latest.values()])


def _recency(columns: Any) -> Any:
    """``Metric.recency`` in SQL: (step, timestamp, not NaN, value), compared as a row value."""
    return sa.tuple_(columns.step, columns.timestamp, sa.case((columns.is_nan, 0), else_=1), columns.value)


async def set_tags(session: AsyncSession, run_id: str, tags: Sequence[RunTag]) -> None:
    statement = insert_for(session)(TAGS)
    statement = statement.on_conflict_do_update(
        index_elements=["run_id", "key"], set_={"value": statement.excluded.value}
    )
    await session.execute(statement, [{"run_id": run_id, "key": t.key, "value": t.value} for t in tags])
    for tag in tags:
        if tag.key == RUN_NAME_TAG:  # MLflow keeps the tag and the run's name in step
            await session.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(name=tag.value))


def _metric_values(run_id: str, metric: Metric) -> dict[str, Any]:
    _, timestamp, step, is_nan, value = metric.identity
    return {
        "run_id": run_id,
        "key": metric.key,
        "step": step,
        "timestamp": timestamp,
        "is_nan": is_nan,
        "value": value,
        "model_id": metric.model_id,
    }
