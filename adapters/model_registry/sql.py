"""ModelRegistryStore on SQLAlchemy (SQLite and PostgreSQL alike), on ``model_versions`` and
``model_aliases``.

URL:      the system-of-record database (``SqlDatabase.model_registry``): sqlite+aiosqlite://, postgresql+psycopg://
Features: alias moves and version deletes serialised on the version row · idempotent inserts
          (INSERT … ON CONFLICT DO NOTHING) · a model's rows cascade from ``assets.id``
Extra:    cloud (psycopg) for PostgreSQL

A write that decides on what it read (``set_alias``, ``delete_version``, ``delete_model``) first
locks the model's version rows concerned (``_lock_versions``) and reads after that, in the same
transaction: on PostgreSQL ``SELECT … FOR UPDATE``; on SQLite a write, which takes the database's
write lock until the commit (pysqlite opens the transaction at the first write only, so a read
first would run outside it). ``set_alias`` and ``delete_version`` of one version thus run one
after the other, and each sees what the other committed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.model_registry.sql_models import ModelAliasRow, ModelVersionRow
from adapters.sql.errors import translated
from studio9.errors import Conflict
from studio9.ml.domain import (
    AliasInUse,
    AliasMove,
    AliasNotFound,
    ModelNotFound,
    ModelSource,
    ModelVersionInfo,
    ModelVersionNotFound,
    check_alias,
)

if TYPE_CHECKING:
    from studio9.ml.ports import ModelRegistryStore

#: How often ``set_alias`` looks again when a concurrent create or delete of the same alias
#: changed it between its read and its write (PostgreSQL; SQLite holds the write lock).
_ALIAS_ATTEMPTS = 5


class SqlModelRegistryStore:
    """Registry rows in ``model_versions`` and ``model_aliases``; one short transaction per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    # -- versions ---------------------------------------------------------------------------------

    async def put_version(self, info: ModelVersionInfo) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    statement = _insert(session)(ModelVersionRow).values(**_version_values(info))
                    await session.execute(statement.on_conflict_do_nothing())
        except IntegrityError:  # the foreign key: no such asset
            raise ModelNotFound(info.asset_id) from None

    async def version(self, asset_id: str, version: int) -> ModelVersionInfo:
        with translated():
            async with self._sessions() as session:
                row = await session.get(ModelVersionRow, (asset_id, version))
        if row is None or row.deleted:
            raise ModelVersionNotFound(asset_id, version)
        return _info(row)

    async def versions(self, asset_id: str, *, include_deleted: bool = False) -> Sequence[ModelVersionInfo]:
        query = sa.select(ModelVersionRow).where(ModelVersionRow.asset_id == asset_id)
        if not include_deleted:
            query = query.where(ModelVersionRow.deleted.is_(False))
        with translated():
            async with self._sessions() as session:
                return [_info(r) for r in await session.scalars(query.order_by(ModelVersionRow.version))]

    async def update_version(
        self,
        asset_id: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        at: datetime,
    ) -> ModelVersionInfo:
        values: dict[str, Any] = {"updated_at": at}
        if description is not None:
            values["description"] = description
        if tags is not None:
            values["tags"] = dict(tags)
        statement = (
            sa.update(ModelVersionRow)
            .where(*_version_key(asset_id, version), ModelVersionRow.deleted.is_(False))
            .values(**values)
            .returning(ModelVersionRow)
            .execution_options(synchronize_session=False)
        )
        with translated():
            async with self._sessions.begin() as session:
                row = (await session.scalars(statement)).one_or_none()
                if row is None:
                    raise ModelVersionNotFound(asset_id, version)
                return _info(row)

    async def delete_version(self, asset_id: str, version: int, *, at: datetime) -> None:
        with translated():
            async with self._sessions.begin() as session:
                rows = await _lock_versions(session, *_version_key(asset_id, version))
                if not rows or rows[0].deleted:
                    raise ModelVersionNotFound(asset_id, version)
                # Read after the lock: an alias set on this version has committed by now.
                aliases = await session.scalars(
                    sa.select(ModelAliasRow.alias)
                    .where(ModelAliasRow.asset_id == asset_id, ModelAliasRow.version == version)
                    .order_by(ModelAliasRow.alias)
                )
                if found := list(aliases):
                    raise AliasInUse(asset_id, version, found)
                await session.execute(
                    sa.update(ModelVersionRow)
                    .where(*_version_key(asset_id, version))
                    .values(deleted=True, updated_at=at)
                    .execution_options(synchronize_session=False)
                )

    # -- aliases ----------------------------------------------------------------------------------

    async def set_alias(self, asset_id: str, alias: str, version: int, *, at: datetime, by: str) -> AliasMove:
        check_alias(alias)
        key = (ModelAliasRow.asset_id == asset_id, ModelAliasRow.alias == alias)
        values = {
            "asset_id": asset_id,
            "alias": alias,
            "version": version,
            "updated_at": at,
            "updated_by": by,
        }
        with translated():
            async with self._sessions.begin() as session:
                rows = await _lock_versions(session, *_version_key(asset_id, version))
                if not rows or rows[0].deleted:
                    raise ModelVersionNotFound(asset_id, version)
                for _ in range(_ALIAS_ATTEMPTS):
                    # FOR UPDATE: concurrent moves of one alias queue on its row, and each reads
                    # the version the one before it committed.
                    previous = await session.scalar(
                        sa.select(ModelAliasRow.version).where(*key).with_for_update()
                    )
                    if previous is not None:
                        await session.execute(
                            sa.update(ModelAliasRow)
                            .where(*key)
                            .values(version=version, updated_at=at, updated_by=by)
                            .execution_options(synchronize_session=False)
                        )
                        break
                    # A new alias; a concurrent move may create it first (PostgreSQL waits for
                    # that one to commit and inserts nothing): then read it again and move it.
                    statement = _insert(session)(ModelAliasRow).values(**values).on_conflict_do_nothing()
                    if await session.scalar(statement.returning(ModelAliasRow.alias)) is not None:
                        break
                else:  # created and deleted again under our feet, every time
                    raise Conflict(f"alias {alias!r} kept changing while it was being set; try again")
        return AliasMove(asset_id=asset_id, alias=alias, version=version, previous=previous)

    async def delete_alias(self, asset_id: str, alias: str) -> None:
        with translated():
            async with self._sessions.begin() as session:
                result = await session.execute(
                    sa.delete(ModelAliasRow)
                    .where(ModelAliasRow.asset_id == asset_id, ModelAliasRow.alias == alias)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 0:  # type: ignore[attr-defined]
                    raise AliasNotFound(asset_id, alias)

    async def alias(self, asset_id: str, alias: str) -> int:
        query = sa.select(ModelAliasRow.version).where(
            ModelAliasRow.asset_id == asset_id, ModelAliasRow.alias == alias
        )
        with translated():
            async with self._sessions() as session:
                found = await session.scalar(query)
        if found is None:
            raise AliasNotFound(asset_id, alias)
        return found

    async def aliases(self, asset_id: str) -> Mapping[str, int]:
        return (await self.aliases_of([asset_id]))[asset_id]

    async def aliases_of(self, asset_ids: Collection[str]) -> Mapping[str, Mapping[str, int]]:
        ids = set(asset_ids)
        found: dict[str, dict[str, int]] = {i: {} for i in ids}
        if not ids:
            return found
        query = (
            sa.select(ModelAliasRow.asset_id, ModelAliasRow.alias, ModelAliasRow.version)
            .where(ModelAliasRow.asset_id.in_(ids))
            .order_by(ModelAliasRow.asset_id, ModelAliasRow.alias)
        )
        with translated():
            async with self._sessions() as session:
                for asset_id, alias, version in await session.execute(query):
                    found[asset_id][alias] = version
        return found

    async def version_aliases(self, asset_id: str, version: int) -> tuple[str, ...]:
        query = (
            sa.select(ModelAliasRow.alias)
            .where(ModelAliasRow.asset_id == asset_id, ModelAliasRow.version == version)
            .order_by(ModelAliasRow.alias)
        )
        with translated():
            async with self._sessions() as session:
                return tuple(await session.scalars(query))

    # -- models -----------------------------------------------------------------------------------

    async def delete_model(self, asset_id: str) -> None:
        with translated():
            async with self._sessions.begin() as session:
                # Every version locked: an alias being set on one has committed before we look.
                await _lock_versions(session, ModelVersionRow.asset_id == asset_id)
                aliases = await session.scalars(
                    sa.select(ModelAliasRow.alias)
                    .where(ModelAliasRow.asset_id == asset_id)
                    .order_by(ModelAliasRow.alias)
                )
                if found := list(aliases):
                    raise AliasInUse(asset_id, None, found)
                await session.execute(_delete_versions(asset_id))

    async def forget_model(self, asset_id: str) -> None:
        with translated():
            async with self._sessions.begin() as session:
                # Versions first: a concurrent set_alias then either committed its alias before
                # (and the next statement removes it) or finds its version gone.
                await session.execute(_delete_versions(asset_id))
                await session.execute(
                    sa.delete(ModelAliasRow)
                    .where(ModelAliasRow.asset_id == asset_id)
                    .execution_options(synchronize_session=False)
                )


async def _lock_versions(session: AsyncSession, *where: sa.ColumnElement[bool]) -> list[ModelVersionRow]:
    """The version rows matching ``where``, locked until the transaction ends (see the module)."""
    if session.get_bind().dialect.name == "sqlite":
        # A write that changes nothing: it takes SQLite's write lock, and opens the transaction.
        await session.execute(
            sa.update(ModelVersionRow)
            .where(*where)
            .values(deleted=ModelVersionRow.deleted)
            .execution_options(synchronize_session=False)
        )
    # In version order: two callers locking several rows take them in the same order.
    query = sa.select(ModelVersionRow).where(*where).order_by(ModelVersionRow.version).with_for_update()
    return list(await session.scalars(query.execution_options(populate_existing=True)))


def _version_key(asset_id: str, version: int) -> tuple[sa.ColumnElement[bool], ...]:
    return (ModelVersionRow.asset_id == asset_id, ModelVersionRow.version == version)


def _delete_versions(asset_id: str) -> sa.Delete:
    return (
        sa.delete(ModelVersionRow)
        .where(ModelVersionRow.asset_id == asset_id)
        .execution_options(synchronize_session=False)
    )


def _insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, the one with ``on_conflict_do_nothing`` (both spell it the same)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _version_values(info: ModelVersionInfo) -> dict[str, Any]:
    return {
        "asset_id": info.asset_id,
        "version": info.version,
        "description": info.description,
        "tags": dict(info.tags),
        "run_id": info.run_id,
        "source": str(info.source),
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "deleted": info.deleted,
    }


def _info(row: ModelVersionRow) -> ModelVersionInfo:
    return ModelVersionInfo(
        asset_id=row.asset_id,
        version=row.version,
        description=row.description,
        tags=dict(row.tags),
        run_id=row.run_id,
        source=ModelSource(row.source),
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted=row.deleted,
    )


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[ModelRegistryStore] = SqlModelRegistryStore
