"""TrackingStore on SQLAlchemy (SQLite and PostgreSQL alike), on the ``tracking_*`` tables.

URL:      the system-of-record database (``SqlDatabase.tracking``): sqlite+aiosqlite://, postgresql+psycopg://
Features: one transaction per call · ``log_batch`` all or nothing, in bulk statements · metric points
          de-duplicated by their primary key · an experiment's rows cascade from ``assets.id``
Extra:    cloud (psycopg) for PostgreSQL

``log_batch``'s writes are ``sql_batch.py`` (how a param conflict and the latest metric values are
decided); search and the loading of a page of runs ``sql_search.py``; logged models
``sql_logged_models.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.errors import translated
from adapters.tracking_store.sql_batch import log_metrics, log_params, set_tags
from adapters.tracking_store.sql_logged_models import SqlLoggedModels, insert_for
from adapters.tracking_store.sql_models import (
    EXPERIMENT_TAGS,
    INPUTS,
    METRICS,
    MODELS,
    OUTPUTS,
    RUNS,
    TAGS,
)
from adapters.tracking_store.sql_search import RUN_COLUMNS, by_metric, condition, ordered, records, run_of
from studio9.tracking.domain import (
    PARENT_RUN_TAG,
    RUN_NAME_TAG,
    DatasetInput,
    ExperimentNotFound,
    LifecycleStage,
    Metric,
    ModelOutput,
    Param,
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
from studio9.tracking.search import Comparison, OrderKey, decode_page_token, encode_page_token
from studio9.tracking.validation import (
    check_batch,
    check_dataset,
    check_end_time,
    check_experiment_tag,
    check_max_results,
    check_new_run,
    check_outputs,
    check_tag,
)

if TYPE_CHECKING:
    from studio9.tracking.ports import TrackingStore

#: ``metric_history`` pages hold at most this many points (MLflow's clients ask for 25000).
MAX_HISTORY_PAGE = 1_000_000


class SqlTrackingStore(SqlLoggedModels):
    """Runs and their rows in the ``tracking_*`` tables; one short transaction per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        super().__init__(sessions)

    # -- runs -------------------------------------------------------------------------------------

    async def create_run(self, run: Run, tags: Sequence[RunTag] = ()) -> RunRecord:
        check_new_run(run)
        stored = {t.key: t.value for t in (check_tag(t, f"tags[{i}]") for i, t in enumerate(tags))}
        if run.name:
            stored[RUN_NAME_TAG] = check_tag(RunTag(RUN_NAME_TAG, run.name)).value
        if run.parent_run_id is not None:
            stored[PARENT_RUN_TAG] = run.parent_run_id
        try:
            with translated():
                async with self._sessions.begin() as session:
                    await session.execute(sa.insert(RUNS).values(**_run_values(run)))
                    if stored:
                        rows = [{"run_id": run.id, "key": k, "value": v} for k, v in stored.items()]
                        await session.execute(sa.insert(TAGS), rows)
        except IntegrityError:
            if await self._run_exists(run.id):
                raise RunAlreadyExists(run.id) from None
            raise ExperimentNotFound(run.experiment_id) from None
        return RunRecord(run=run, data=RunData(tags=stored))

    async def get_run(self, run_id: str) -> RunRecord:
        with translated():
            async with self._sessions() as session:
                run = await _run(session, run_id)
                return (await records(session, [run]))[0]

    async def update_run(
        self,
        run_id: str,
        *,
        status: RunStatus | None = None,
        end_time: int | None = None,
        name: str | None = None,
    ) -> Run:
        values: dict[str, Any] = {}
        if status is not None:
            values["status"] = str(RunStatus(status))
        if end_time is not None:
            values["end_time"] = check_end_time(end_time)
        if name is not None:
            values["name"] = name
        with translated():
            async with self._sessions.begin() as session:
                if values:
                    await session.execute(sa.update(RUNS).where(RUNS.c.id == run_id).values(**values))
                run = await _active(session, run_id)
                if name is not None:
                    await set_tags(session, run_id, [check_tag(RunTag(RUN_NAME_TAG, name))])
                return run

    async def set_lifecycle(self, run_id: str, stage: LifecycleStage) -> None:
        statement = (
            sa.update(RUNS).where(RUNS.c.id == run_id).values(lifecycle_stage=str(LifecycleStage(stage)))
        )
        with translated():
            async with self._sessions.begin() as session:
                if (await session.execute(statement)).rowcount == 0:  # type: ignore[attr-defined]
                    raise RunNotFound(run_id)

    async def log_batch(
        self,
        run_id: str,
        *,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
    ) -> None:
        metrics, params, tags = check_batch(metrics, params, tags)
        with translated():
            async with self._sessions.begin() as session:
                await _active(session, run_id)
                if params:
                    await log_params(session, run_id, params)
                if metrics:
                    await log_metrics(session, run_id, metrics)
                if tags:
                    await set_tags(session, run_id, tags)

    async def metric_history(
        self, run_id: str, key: str, *, max_results: int, page_token: str | None = None
    ) -> tuple[tuple[Metric, ...], str | None]:
        check_max_results(max_results, MAX_HISTORY_PAGE)
        offset = decode_page_token(page_token)
        query = (
            sa.select(
                METRICS.c.value, METRICS.c.is_nan, METRICS.c.timestamp, METRICS.c.step, METRICS.c.model_id
            )
            .where(METRICS.c.run_id == run_id, METRICS.c.key == key)
            .order_by(METRICS.c.step, METRICS.c.timestamp, METRICS.c.is_nan, METRICS.c.value)
            .offset(offset)
            .limit(max_results + 1)
        )
        with translated():
            async with self._sessions() as session:
                await _run(session, run_id)
                found = list(await session.execute(query))
        nan = float("nan")
        points = tuple(Metric(key, nan if n else v, t, s, m) for v, n, t, s, m in found[:max_results])
        return points, encode_page_token(offset + max_results) if len(found) > max_results else None

    async def delete_tag(self, run_id: str, key: str) -> None:
        statement = sa.delete(TAGS).where(TAGS.c.run_id == run_id, TAGS.c.key == key)
        with translated():
            async with self._sessions.begin() as session:
                await _active(session, run_id)
                if (await session.execute(statement)).rowcount == 0:  # type: ignore[attr-defined]
                    raise TagNotFound(key, "run", run_id)

    async def log_inputs(self, run_id: str, datasets: Sequence[DatasetInput]) -> None:
        rows = {
            (d.name, d.digest): _input_values(run_id, check_dataset(d, f"datasets[{i}]"))
            for i, d in reversed(list(enumerate(datasets)))  # the first of two alike counts
        }
        with translated():
            async with self._sessions.begin() as session:
                await _active(session, run_id)
                if rows:
                    statement = insert_for(session)(INPUTS).on_conflict_do_nothing()
                    await session.execute(statement, list(rows.values()))

    async def log_outputs(self, run_id: str, outputs: Sequence[ModelOutput]) -> None:
        rows = {
            (o.model_id, o.step): {"run_id": run_id, "model_id": o.model_id, "step": o.step}
            for o in check_outputs(outputs)
        }
        with translated():
            async with self._sessions.begin() as session:
                await _active(session, run_id)
                if rows:
                    statement = insert_for(session)(OUTPUTS).on_conflict_do_nothing()
                    await session.execute(statement, list(rows.values()))

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
        offset = decode_page_token(page_token)
        ids = sorted(set(experiment_ids))
        if not ids:
            return (), None
        stages = [str(s) for s in ViewType(view).stages]
        scope = (  # one experiment, one stage: equalities, so the index also gives the order
            RUNS.c.experiment_id == ids[0] if len(ids) == 1 else RUNS.c.experiment_id.in_(ids),
            RUNS.c.lifecycle_stage == stages[0] if len(stages) == 1 else RUNS.c.lifecycle_stage.in_(stages),
        )
        limit = max_results + 1
        with translated():
            async with self._sessions() as session:
                rows = await by_metric(session, scope, comparisons, order_by, offset=offset, limit=limit)
                if rows is None:
                    dialect = session.get_bind().dialect.name
                    query = sa.select(*RUN_COLUMNS).where(
                        *scope, *(condition(c, dialect) for c in comparisons)
                    )
                    query = ordered(query, order_by, dialect).offset(offset).limit(limit)
                    rows = list(await session.execute(query))
                runs = [run_of(row) for row in rows]
                page = await records(session, runs[:max_results])
        return tuple(page), encode_page_token(offset + max_results) if len(runs) > max_results else None

    # -- experiments ------------------------------------------------------------------------------

    async def set_experiment_tags(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        rows = [
            {"experiment_id": experiment_id, "key": k, "value": v}
            for k, v in (check_experiment_tag(key, value) for key, value in tags.items())
        ]
        if not rows:
            return
        try:
            with translated():
                async with self._sessions.begin() as session:
                    statement = insert_for(session)(EXPERIMENT_TAGS)
                    statement = statement.on_conflict_do_update(
                        index_elements=["experiment_id", "key"], set_={"value": statement.excluded.value}
                    )
                    await session.execute(statement, rows)
        except IntegrityError:  # the foreign key: no such asset
            raise ExperimentNotFound(experiment_id) from None

    async def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        statement = sa.delete(EXPERIMENT_TAGS).where(
            EXPERIMENT_TAGS.c.experiment_id == experiment_id, EXPERIMENT_TAGS.c.key == key
        )
        with translated():
            async with self._sessions.begin() as session:
                if (await session.execute(statement)).rowcount == 0:  # type: ignore[attr-defined]
                    raise TagNotFound(key, "experiment", experiment_id)

    async def experiment_tags(self, experiment_ids: Collection[str]) -> Mapping[str, Mapping[str, str]]:
        ids = set(experiment_ids)
        found: dict[str, dict[str, str]] = {i: {} for i in ids}
        if not ids:
            return found
        query = (
            sa.select(EXPERIMENT_TAGS.c.experiment_id, EXPERIMENT_TAGS.c.key, EXPERIMENT_TAGS.c.value)
            .where(EXPERIMENT_TAGS.c.experiment_id.in_(ids))
            .order_by(EXPERIMENT_TAGS.c.experiment_id, EXPERIMENT_TAGS.c.key)
        )
        with translated():
            async with self._sessions() as session:
                for experiment_id, key, value in await session.execute(query):
                    found[experiment_id][key] = value
        return found

    async def forget_experiment(self, experiment_id: str) -> None:
        with translated():
            async with self._sessions.begin() as session:
                # The runs' and models' own rows go with them (ON DELETE CASCADE).
                for table in (RUNS, MODELS, EXPERIMENT_TAGS):
                    await session.execute(sa.delete(table).where(table.c.experiment_id == experiment_id))

    async def _run_exists(self, run_id: str) -> bool:
        with translated():
            async with self._sessions() as session:
                return await session.scalar(sa.select(RUNS.c.id).where(RUNS.c.id == run_id)) is not None


# -- in a transaction ---------------------------------------------------------------------------------


async def _run(session: AsyncSession, run_id: str) -> Run:
    row = (await session.execute(sa.select(*RUN_COLUMNS).where(RUNS.c.id == run_id))).one_or_none()
    if row is None:
        raise RunNotFound(run_id)
    return run_of(row)


async def _active(session: AsyncSession, run_id: str) -> Run:
    run = await _run(session, run_id)
    if run.lifecycle_stage is not LifecycleStage.ACTIVE:
        raise RunNotActive(run_id, run.lifecycle_stage)
    return run


def _run_values(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "owner_id": run.owner_id,
        "user_name": run.user_name,
        "status": str(run.status),
        "start_time": run.start_time,
        "end_time": run.end_time,
        "lifecycle_stage": str(run.lifecycle_stage),
        "artifact_uri": run.artifact_uri,
        "parent_run_id": run.parent_run_id,
    }


def _input_values(run_id: str, dataset: DatasetInput) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
        "schema": dataset.schema,
        "profile": dataset.profile,
        "tags": dict(dataset.tags),
        "context": dataset.context,
    }


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[TrackingStore] = SqlTrackingStore
