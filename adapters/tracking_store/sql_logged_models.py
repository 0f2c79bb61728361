"""The logged models of ``SqlTrackingStore`` (``sql.py``), on ``tracking_logged_models`` and their
tags and params tables, which cascade from the model row (and it from the experiment's asset).

A page of models loads with its tags and params in three queries.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.errors import translated
from adapters.tracking_store.sql_models import MODEL_PARAMS, MODEL_TAGS, MODELS
from studio9.tracking.domain import (
    ExperimentNotFound,
    LoggedModel,
    LoggedModelAlreadyExists,
    LoggedModelNotFound,
    LoggedModelStatus,
    Param,
    RunTag,
    TagNotFound,
)
from studio9.tracking.search import decode_page_token, encode_page_token
from studio9.tracking.validation import check_logged_model, check_max_results, check_param, check_tag


def insert_for(session: AsyncSession) -> Callable[[sa.Table], Any]:
    """The dialect's INSERT, the one with ``on_conflict_do_*`` (both dialects spell them alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


class SqlLoggedModels:
    """Logged models: one short transaction per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create_logged_model(self, model: LoggedModel) -> LoggedModel:
        model = check_logged_model(model)
        try:
            with translated():
                async with self._sessions.begin() as session:
                    await session.execute(sa.insert(MODELS).values(**_model_values(model)))
                    for table, items in ((MODEL_TAGS, model.tags), (MODEL_PARAMS, model.params)):
                        if items:
                            rows = [{"model_id": model.id, "key": k, "value": v} for k, v in items.items()]
                            await session.execute(sa.insert(table), rows)
        except IntegrityError:
            async with self._sessions() as session:
                if await _exists(session, model.id):
                    raise LoggedModelAlreadyExists(model.id) from None
            raise ExperimentNotFound(model.experiment_id) from None
        return model

    async def get_logged_model(self, model_id: str) -> LoggedModel:
        with translated():
            async with self._sessions() as session:
                found = await _models(session, sa.select(MODELS).where(MODELS.c.id == model_id))
        if not found:
            raise LoggedModelNotFound(model_id)
        return found[0]

    async def finalize_logged_model(
        self, model_id: str, status: LoggedModelStatus, *, at: int
    ) -> LoggedModel:
        statement = (
            sa.update(MODELS)
            .where(MODELS.c.id == model_id)
            .values(status=str(LoggedModelStatus(status)), last_updated_timestamp=at)
        )
        with translated():
            async with self._sessions.begin() as session:
                if (await session.execute(statement)).rowcount == 0:  # type: ignore[attr-defined]
                    raise LoggedModelNotFound(model_id)
                return (await _models(session, sa.select(MODELS).where(MODELS.c.id == model_id)))[0]

    async def set_logged_model_tags(self, model_id: str, tags: Mapping[str, str]) -> None:
        checked = [check_tag(RunTag(k, v)) for k, v in tags.items()]
        await self._upsert(MODEL_TAGS, model_id, {t.key: t.value for t in checked})

    async def delete_logged_model_tag(self, model_id: str, key: str) -> None:
        statement = sa.delete(MODEL_TAGS).where(MODEL_TAGS.c.model_id == model_id, MODEL_TAGS.c.key == key)
        with translated():
            async with self._sessions.begin() as session:
                if (await session.execute(statement)).rowcount == 0:  # type: ignore[attr-defined]
                    if not await _exists(session, model_id):
                        raise LoggedModelNotFound(model_id)
                    raise TagNotFound(key, "logged model", model_id)

    async def log_logged_model_params(self, model_id: str, params: Sequence[Param]) -> None:
        checked = [check_param(p, f"params[{i}]") for i, p in enumerate(params)]
        await self._upsert(MODEL_PARAMS, model_id, {p.key: p.value for p in checked})

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
        offset = decode_page_token(page_token)
        ids = sorted(set(experiment_ids))
        if not ids:
            return (), None
        query = sa.select(MODELS).where(MODELS.c.experiment_id.in_(ids))
        if name is not None:
            query = query.where(MODELS.c.name == name)
        if source_run_id is not None:
            query = query.where(MODELS.c.source_run_id == source_run_id)
        with translated():
            async with self._sessions() as session:
                model_id = MODELS.c.id
                if session.get_bind().dialect.name == "postgresql":
                    model_id = model_id.collate("C")  # type: ignore[assignment]  # by code point
                query = query.order_by(MODELS.c.creation_timestamp.desc(), model_id)
                found = await _models(session, query.offset(offset).limit(max_results + 1))
        next_token = encode_page_token(offset + max_results) if len(found) > max_results else None
        return tuple(found[:max_results]), next_token

    async def _upsert(self, table: sa.Table, model_id: str, items: Mapping[str, str]) -> None:
        if not items:
            if not await self._model_exists(model_id):
                raise LoggedModelNotFound(model_id)
            return
        rows = [{"model_id": model_id, "key": k, "value": v} for k, v in items.items()]
        try:
            with translated():
                async with self._sessions.begin() as session:
                    statement = insert_for(session)(table)
                    statement = statement.on_conflict_do_update(
                        index_elements=["model_id", "key"], set_={"value": statement.excluded.value}
                    )
                    await session.execute(statement, rows)
        except IntegrityError:  # the foreign key: no such model
            raise LoggedModelNotFound(model_id) from None

    async def _model_exists(self, model_id: str) -> bool:
        with translated():
            async with self._sessions() as session:
                return await _exists(session, model_id)


async def _exists(session: AsyncSession, model_id: str) -> bool:
    return await session.scalar(sa.select(MODELS.c.id).where(MODELS.c.id == model_id)) is not None


async def _models(session: AsyncSession, query: sa.Select[Any]) -> list[LoggedModel]:
    """The models ``query`` selects (whole ``tracking_logged_models`` rows), with tags and params."""
    rows = list(await session.execute(query))
    if not rows:
        return []
    ids = [row.id for row in rows]
    items: dict[str, dict[str, dict[str, str]]] = {
        "tags": {i: {} for i in ids},
        "params": {i: {} for i in ids},
    }
    for name, table in (("tags", MODEL_TAGS), ("params", MODEL_PARAMS)):
        listed = sa.select(table.c.model_id, table.c.key, table.c.value).where(table.c.model_id.in_(ids))
        for model_id, key, value in await session.execute(listed):
            items[name][model_id][key] = value
    return [
        LoggedModel(
            id=row.id,
            experiment_id=row.experiment_id,
            name=row.name,
            artifact_location=row.artifact_location,
            creation_timestamp=row.creation_timestamp,
            last_updated_timestamp=row.last_updated_timestamp,
            status=LoggedModelStatus(row.status),
            source_run_id=row.source_run_id,
            model_type=row.model_type,
            tags=items["tags"][row.id],
            params=items["params"][row.id],
        )
        for row in rows
    ]


def _model_values(model: LoggedModel) -> dict[str, Any]:
    return {
        "id": model.id,
        "experiment_id": model.experiment_id,
        "name": model.name,
        "artifact_location": model.artifact_location,
        "creation_timestamp": model.creation_timestamp,
        "last_updated_timestamp": model.last_updated_timestamp,
        "status": str(model.status),
        "source_run_id": model.source_run_id,
        "model_type": model.model_type,
    }
