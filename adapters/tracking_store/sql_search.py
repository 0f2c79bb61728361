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

A search ordered by a metric reads that key's values in order when it can (``by_metric``). Loading
a page takes two statements whatever its size, run on the driver itself (``records``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs
import msgspec
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.tracking_store.sql_models import INPUTS, LATEST, PARAMS, RUNS, TAGS
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


# -- a search ordered by a metric ------------------------------------------------------------------

#: ``by_metric`` reads at most this many of the key's values per run the page needs (the pages
#: before it included), and at least ``MIN_VALUES``: enough for a filter that keeps one run in ten.
VALUES_PER_RUN: Final = 10
MIN_VALUES: Final = 1000
#: Pages deeper than this many runs are sorted whole.
MAX_DEPTH: Final = 1000
_PUSHED_DOWN: Final = ("=", "<", "<=", ">", ">=")


async def by_metric(
    session: AsyncSession,
    scope: Sequence[Any],
    comparisons: Sequence[Comparison],
    order_by: Sequence[OrderKey],
    *,
    offset: int,
    limit: int,
) -> list[Any] | None:
    """The page's rows (``RUN_COLUMNS``) when the order starts with a metric and the key's values,
    read in order off ``ix_tracking_latest_metrics_order``, fill it; None when the whole search must
    be sorted (``ordered``).

    Sorting all the runs in ``scope`` (the experiments and stages) looks up the metric of each.
    Here the database reads the key's values in order (of every experiment: the index has none),
    joins each to its run, applies the filter, and stops once the page is full. The values read
    stop at a bound, the value ``values`` places down (all values equal to it included), so that a
    scope holding few of the key's values costs a bounded read before it is sorted: a page filled
    above the bound is the page, as every value not read is after the bound. NaN and missing values
    sort after the numbers, so a page that needs them is sorted whole, as are scopes of fewer runs
    than ``values`` (sorting them is cheap; the statement skips its read).
    """
    if not order_by or order_by[0].entity is not EntityType.METRIC or offset + limit > MAX_DEPTH:
        return None
    values = max(MIN_VALUES, VALUES_PER_RUN * (offset + limit))
    first, dialect = order_by[0], session.get_bind().dialect.name
    read, bounds = LATEST.alias("metric_order"), LATEST.alias("metric_bound")

    def numbers(table: Any) -> list[Any]:  # the key's numbers the filter's comparisons may keep
        pushed = (c for c in comparisons if c.entity is EntityType.METRIC and c.key == first.key)
        return [
            table.c.key == first.key,
            sa.not_(table.c.is_nan),
            *(
                _OPERATORS[c.comparator](table.c.value, c.value)
                for c in pushed
                if c.comparator in _PUSHED_DOWN
            ),
        ]

    def in_order(column: Any) -> Any:
        return column.asc() if first.ascending else column.desc()

    bound = (
        (sa.select(bounds.c.value).where(*numbers(bounds)).order_by(in_order(bounds.c.value)))
        .offset(values - 1)
        .limit(1)
        .scalar_subquery()
    )
    in_bound = (
        read.c.value <= sa.func.coalesce(bound, math.inf)
        if first.ascending
        else read.c.value >= sa.func.coalesce(bound, -math.inf)
    )
    runs_in_scope = sa.select(RUNS.c.id).where(*scope).limit(values).subquery()
    large_scope = sa.select(sa.func.count()).select_from(runs_in_scope).scalar_subquery() >= values
    query = (
        sa.select(*RUN_COLUMNS)
        .select_from(read.join(RUNS, RUNS.c.id == read.c.run_id))
        .where(large_scope, *numbers(read), in_bound, *scope, *(condition(c, dialect) for c in comparisons))
        .order_by(in_order(read.c.value))
    )
    query = ordered(query, order_by[1:], dialect).offset(offset).limit(limit)
    rows = list(await session.execute(query))
    return rows if len(rows) == limit else None


# -- a page's data --------------------------------------------------------------------------------

# The statements are built from constants only (hence the S608 waivers); the run ids are bound, as
# one parameter ``ids`` (a JSON array on SQLite, an array on PostgreSQL), so each statement's text
# is fixed and any page size fits. A row names its run by its "handle": on SQLite its position in
# the page, a small integer, cheaper to make than the 32-character id; PostgreSQL sends the rows of
# ``run_id = ANY(...)`` faster than it joins them to the positions.
_RUN: Final = {"sqlite": "page.key", "postgresql": "t.run_id"}
_FROM: Final = {
    "sqlite": "json_each(:ids) AS page JOIN {table} AS t ON t.run_id = page.value",
    "postgresql": "{table} AS t WHERE t.run_id = ANY(%(ids)s)",
}
#: A dataset input's fields after its name, as a JSON array.
_DATASET: Final = {
    "sqlite": "json_array(t.digest, t.source_type, t.source, t.schema, t.profile, json(t.tags))",
    "postgresql": "CAST(jsonb_build_array(t.digest, t.source_type, t.source, t.schema, t.profile, t.tags)"
    " AS TEXT)",
}
#: The latest metrics, NaN as NULL (it is stored as 0.0 with ``is_nan`` set).
_LATEST_SQL: Final = {
    dialect: f"SELECT {_RUN[dialect]}, t.key, CASE WHEN t.is_nan THEN NULL ELSE t.value END,"  # noqa: S608
    f" t.timestamp, t.step, t.model_id FROM {source.format(table='tracking_latest_metrics')}"
    for dialect, source in _FROM.items()
}
_PARAMS, _TAGS, _OUTPUTS, _INPUTS = range(4)
_OTHER_ROWS: Final = (
    (_PARAMS, "tracking_params", "t.key, t.value"),
    (_TAGS, "tracking_tags", "t.key, t.value"),
    (_OUTPUTS, "tracking_outputs", "t.model_id, CAST(t.step AS TEXT)"),
    (_INPUTS, "tracking_inputs", "t.name, {dataset}"),
)
#: Params, tags, outputs and inputs in one statement, as (kind, handle, key, text).
_OTHER_SQL: Final = {
    dialect: " UNION ALL ".join(
        f"SELECT {kind}, {_RUN[dialect]}, {columns.format(dataset=_DATASET[dialect])}"  # noqa: S608
        f" FROM {source.format(table=table)}"
        for kind, table, columns in _OTHER_ROWS
    )
    for dialect, source in _FROM.items()
}


def _metric_slot_setters() -> tuple[Callable[[Metric, Any], None], ...]:
    """Metric's slot setters, in field order. A page holds some 10,000 Metrics, and filling a new
    instance's slots costs a third less than attrs' frozen ``__init__`` (an ``object.__setattr__``
    call per field). That is only the same thing while Metric's fields are plain: checked here."""
    fields = attrs.fields(Metric)
    names = ["key", "value", "timestamp", "step", "model_id"]
    plain = all(f.validator is None and f.converter is None for f in fields)
    if [f.name for f in fields] != names or not plain or hasattr(Metric, "__attrs_post_init__"):
        raise TypeError("Metric is no longer plain: build it through Metric(...) in records()")
    return tuple(Metric.__dict__[name].__set__ for name in names)


_METRIC_SLOTS: Final = _metric_slot_setters()


async def _driver_rows(session: AsyncSession, statement: Mapping[str, str], ids: list[str]) -> list[Any]:
    """The rows of ``statement`` over the run ids ``ids``, straight from the database driver
    (aiosqlite, psycopg) on the session's connection: SQLAlchemy's result rows cost more than the
    query itself for a page's 10,000 metric rows (and psycopg's binary rows less than its text)."""
    connection = await session.connection()
    driver: Any = (await connection.get_raw_connection()).driver_connection
    dialect = connection.dialect.name
    if dialect == "sqlite":
        return list(await driver.execute_fetchall(statement[dialect], {"ids": json.dumps(ids)}))
    async with driver.cursor(binary=True) as cursor:
        await cursor.execute(statement[dialect], {"ids": ids})
        return list(await cursor.fetchall())


async def records(session: AsyncSession, runs: Sequence[Run]) -> list[RunRecord]:
    """The runs with their data, inputs and outputs, in two statements whatever the page's size."""
    if not runs:
        return []
    ids = [r.id for r in runs]
    handles: Sequence[Any] = range(len(ids)) if session.get_bind().dialect.name == "sqlite" else ids
    metrics: dict[Any, dict[str, Metric]] = {h: {} for h in handles}
    nan, new = float("nan"), object.__new__
    set_key, set_value, set_timestamp, set_step, set_model_id = _METRIC_SLOTS
    for handle, key, value, timestamp, step, model_id in await _driver_rows(session, _LATEST_SQL, ids):
        metric = new(Metric)
        set_key(metric, key)
        set_value(metric, nan if value is None else value)
        set_timestamp(metric, timestamp)
        set_step(metric, step)
        set_model_id(metric, model_id)
        metrics[handle][key] = metric
    params: dict[Any, dict[str, str]] = {h: {} for h in handles}
    tags: dict[Any, dict[str, str]] = {h: {} for h in handles}
    inputs: dict[Any, list[DatasetInput]] = {h: [] for h in handles}
    outputs: dict[Any, list[ModelOutput]] = {h: [] for h in handles}
    for kind, handle, key, text in await _driver_rows(session, _OTHER_SQL, ids):
        if kind == _PARAMS:
            params[handle][key] = text
        elif kind == _TAGS:
            tags[handle][key] = text
        elif kind == _OUTPUTS:
            outputs[handle].append(ModelOutput(key, int(text)))
        else:
            inputs[handle].append(_dataset_input(key, text))
    return [
        RunRecord(
            run=run,
            data=RunData(params=params[h], metrics=metrics[h], tags=tags[h]),
            # Sorted here rather than in SQL: by code point, whatever the database's collation.
            inputs=tuple(sorted(inputs[h], key=_input_order)),
            outputs=tuple(sorted(outputs[h], key=_output_order)),
        )
        for h, run in zip(handles, runs, strict=True)
    ]


def _dataset_input(name: str, fields: str) -> DatasetInput:
    digest, source_type, source, schema, profile, tags = msgspec.json.decode(fields)
    return DatasetInput(
        name=name,
        digest=digest,
        source_type=source_type,
        source=source,
        schema=schema,
        profile=profile,
        tags=tags,
    )


def _input_order(dataset: DatasetInput) -> tuple[str, str]:
    return (dataset.name, dataset.digest)


def _output_order(output: ModelOutput) -> tuple[int, str]:
    return (output.step, output.model_id)
