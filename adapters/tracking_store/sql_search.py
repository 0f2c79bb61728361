"""The run search in SQL (SQLite and PostgreSQL alike), and the loading of a page of runs with their
data; ``sql.py`` runs them.

A comparison becomes a condition on ``tracking_runs`` (attributes) or a correlated ``EXISTS`` on the
run's rows (metrics compare the latest value, ``tracking_latest_metrics``; params, tags, dataset
inputs), each a primary-key probe per run. An order key on a metric, param or tag is a LEFT JOIN on
(run, key). Missing values sort last and NaN after the numbers, both directions, by a rank column
before the value (``studio9.tracking.matching`` has the rules).

Strings compare as the in-memory store compares them, by code point: SQLite's default collation
already does; on PostgreSQL ordered strings are ``COLLATE "C"`` (the database's collation could
be a language's). ``LIKE`` is case-sensitive on both, without an escape character:

- SQLite's LIKE ignores ASCII case (and ``PRAGMA case_sensitive_like`` would change it for every
  user of the shared connection), so LIKE is translated to ``GLOB`` (``%`` -> ``*``, ``_`` -> ``?``,
  and GLOB's own ``*``, ``?`` and ``[`` bracketed), which is case-sensitive; ILIKE is
  ``lower(x) LIKE lower(p)``, so it ignores the case of ASCII letters only there;
- PostgreSQL: ``LIKE``/``ILIKE … ESCAPE ''`` (its default escape character is the backslash).

Loading a page takes five queries whatever its size: params, tags, latest metrics, dataset inputs
and outputs of the page's run ids.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.tracking_store.sql_models import INPUTS, LATEST, OUTPUTS, PARAMS, RUNS, TAGS
from studio9.tracking.domain import (
    DatasetInput,
    LifecycleStage,
    Metric,
    ModelOutput,
    Run,
    RunData,
    RunRecord,
    RunStatus,
)
from studio9.tracking.search import Comparison, EntityType, OrderKey

#: The run columns a search selects, in ``run_of``'s order.
RUN_COLUMNS: Final = (
    RUNS.c.id,
    RUNS.c.experiment_id,
    RUNS.c.name,
    RUNS.c.owner_id,
    RUNS.c.user_name,
    RUNS.c.status,
    RUNS.c.start_time,
    RUNS.c.end_time,
    RUNS.c.lifecycle_stage,
    RUNS.c.artifact_uri,
    RUNS.c.parent_run_id,
)
_ATTRIBUTES: Final = {
    "run_id": RUNS.c.id,
    "run_name": RUNS.c.name,
    "status": RUNS.c.status,
    "user_id": RUNS.c.user_name,
    "artifact_uri": RUNS.c.artifact_uri,
    "start_time": RUNS.c.start_time,
    "end_time": RUNS.c.end_time,
}
_OPERATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def run_of(row: Sequence[Any]) -> Run:
    """A Run from a row of ``RUN_COLUMNS``."""
    return Run(
        id=row[0],
        experiment_id=row[1],
        name=row[2],
        owner_id=row[3],
        user_name=row[4],
        status=RunStatus(row[5]),
        start_time=row[6],
        end_time=row[7],
        lifecycle_stage=LifecycleStage(row[8]),
        artifact_uri=row[9],
        parent_run_id=row[10],
    )


# -- filters --------------------------------------------------------------------------------------


def glob_of(pattern: str) -> str:
    """A LIKE pattern (no escape character) as the SQLite GLOB pattern that matches the same."""
    special = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}
    return "".join(special.get(c, c) for c in pattern)


def _text_condition(column: Any, comparator: str, value: Any, dialect: str) -> Any:
    if comparator == "LIKE":
        return column.op("GLOB")(glob_of(value)) if dialect == "sqlite" else column.like(value, escape="")
    if comparator == "ILIKE":
        if dialect == "sqlite":
            return sa.func.lower(column).like(sa.func.lower(sa.literal(value, sa.Text)))
        return column.ilike(value, escape="")
    if comparator == "IN":
        return column.in_(list(value))
    if comparator == "NOT IN":
        return column.not_in(list(value))
    return _OPERATORS[comparator](column, value)


def condition(comparison: Comparison, dialect: str) -> Any:
    """The WHERE condition on ``tracking_runs`` that holds for the runs that satisfy ``comparison``."""
    entity, key, comparator, value = (
        comparison.entity,
        comparison.key,
        comparison.comparator,
        comparison.value,
    )
    if entity is EntityType.ATTRIBUTE:
        column = _ATTRIBUTES[key]
        if key in ("start_time", "end_time"):
            return _OPERATORS[comparator](column, value)
        return _text_condition(column, comparator, value, dialect)
    if entity is EntityType.METRIC:
        if comparator == "!=":  # NaN differs from every number, as in Python
            holds = sa.or_(LATEST.c.is_nan, LATEST.c.value != value)
        else:
            holds = sa.and_(sa.not_(LATEST.c.is_nan), _OPERATORS[comparator](LATEST.c.value, value))
        return sa.exists().where(LATEST.c.run_id == RUNS.c.id, LATEST.c.key == key, holds)
    if entity is EntityType.DATASET:
        return sa.exists().where(
            INPUTS.c.run_id == RUNS.c.id, _text_condition(INPUTS.c[key], comparator, value, dialect)
        )
    table = PARAMS if entity is EntityType.PARAM else TAGS
    present = sa.exists().where(table.c.run_id == RUNS.c.id, table.c.key == key)
    if comparator == "IS NULL":
        return sa.not_(present)
    if comparator == "IS NOT NULL":
        return present
    return present.where(_text_condition(table.c.value, comparator, value, dialect))


# -- order ----------------------------------------------------------------------------------------


def _ordered(column: Any, ascending: bool, dialect: str, *, text: bool) -> Any:
    """``column`` in the direction asked, missing values last."""
    if text and dialect == "postgresql":
        column = column.collate("C")
    return (column.asc() if ascending else column.desc()).nulls_last()


def ordered(query: sa.Select[Any], order_by: Sequence[OrderKey], dialect: str) -> sa.Select[Any]:
    """``query`` (on ``tracking_runs``) ordered by ``order_by`` and the final tiebreaks."""
    clauses: list[Any] = []
    for index, key in enumerate(order_by):
        if key.entity is EntityType.ATTRIBUTE:
            text = key.key not in ("start_time", "end_time")
            clauses.append(_ordered(_ATTRIBUTES[key.key], key.ascending, dialect, text=text))
            continue
        table = {EntityType.METRIC: LATEST, EntityType.PARAM: PARAMS, EntityType.TAG: TAGS}[key.entity]
        joined = table.alias(f"order_{index}")
        query = query.outerjoin(joined, sa.and_(joined.c.run_id == RUNS.c.id, joined.c.key == key.key))
        if key.entity is EntityType.METRIC:  # NaN (stored as 0.0) after the numbers, before none
            clauses.append(sa.case((joined.c.run_id.is_(None), 2), (joined.c.is_nan, 1), else_=0))
        text = key.entity is not EntityType.METRIC
        clauses.append(_ordered(joined.c.value, key.ascending, dialect, text=text))
    if not any(k.entity is EntityType.ATTRIBUTE and k.key == "start_time" for k in order_by):
        # SQLite's default for DESC, so its index on (experiment, stage, start_time, id) serves it.
        clauses.append(RUNS.c.start_time.desc().nulls_last())
    # Run ids are lowercase hex: every collation orders them alike.
    clauses.append(RUNS.c.id)
    return query.order_by(*clauses)


# -- a page's data --------------------------------------------------------------------------------


async def records(session: AsyncSession, runs: Sequence[Run]) -> list[RunRecord]:
    """The runs with their data, inputs and outputs, in five queries (each fetched whole: a page of
    100 runs has 10,000 metric rows, and a row at a time costs several times more)."""
    if not runs:
        return []
    ids = [r.id for r in runs]
    params: dict[str, dict[str, str]] = {i: {} for i in ids}
    tags: dict[str, dict[str, str]] = {i: {} for i in ids}
    metrics: dict[str, dict[str, Metric]] = {i: {} for i in ids}
    inputs: dict[str, list[DatasetInput]] = {i: [] for i in ids}
    outputs: dict[str, list[ModelOutput]] = {i: [] for i in ids}
    for table, found in ((PARAMS, params), (TAGS, tags)):
        query = sa.select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(ids))
        for run_id, key, value in (await session.execute(query)).all():
            found[run_id][key] = value
    latest = sa.select(
        LATEST.c.run_id,
        LATEST.c.key,
        LATEST.c.value,
        sa.type_coerce(LATEST.c.is_nan, sa.Integer),  # 0/1 (or a bool): no per-row conversion
        LATEST.c.timestamp,
        LATEST.c.step,
        LATEST.c.model_id,
    ).where(LATEST.c.run_id.in_(ids))
    nan = float("nan")
    for run_id, key, value, is_nan, timestamp, step, model_id in (await session.execute(latest)).all():
        metrics[run_id][key] = Metric(key, nan if is_nan else value, timestamp, step, model_id)
    # Sorted here rather than in SQL: by code point, whatever the database's collation.
    used = (await session.execute(sa.select(INPUTS).where(INPUTS.c.run_id.in_(ids)))).all()
    for row in sorted(used, key=_input_order):
        inputs[row.run_id].append(
            DatasetInput(
                name=row.name,
                digest=row.digest,
                source_type=row.source_type,
                source=row.source,
                schema=row.schema,
                profile=row.profile,
                tags=dict(row.tags),
            )
        )
    made = sa.select(OUTPUTS.c.run_id, OUTPUTS.c.model_id, OUTPUTS.c.step).where(OUTPUTS.c.run_id.in_(ids))
    for run_id, model_id, step in sorted((await session.execute(made)).all(), key=lambda r: (r[2], r[1])):
        outputs[run_id].append(ModelOutput(model_id, step))
    return [
        RunRecord(
            run=run,
            data=RunData(params=params[run.id], metrics=metrics[run.id], tags=tags[run.id]),
            inputs=tuple(inputs[run.id]),
            outputs=tuple(outputs[run.id]),
        )
        for run in runs
    ]


def _input_order(row: Any) -> tuple[str, str]:
    return (row.name, row.digest)
