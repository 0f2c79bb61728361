"""CatalogStore on SQLAlchemy (SQLite and PostgreSQL alike), on ``assets``, ``asset_versions`` and
``lineage_edges``.

URL:      the system-of-record database (``SqlDatabase.catalog``): sqlite+aiosqlite://, postgresql+psycopg://
Features: library names unique through a partial unique index · versions added by compare-and-set
          on ``latest_version`` · idempotent lineage edges (INSERT … ON CONFLICT DO NOTHING)
Extra:    cloud (psycopg) for PostgreSQL

Every write is one short transaction whose condition is in its statement (``WHERE
latest_version = …``, the unique index), never a read followed by a write, so concurrent writers
need no lock held across statements, on either database. Each write that changes an asset also
appends an ``asset`` entry per changed asset to the outbox (``adapters/sql/outbox.py``), in the
same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.catalog_store.sql_models import NO_JOB, AssetRow, AssetVersionRow, LineageEdgeRow
from adapters.sql.errors import translated
from adapters.sql.outbox import ASSET_TOPIC, outbox_insert
from studio9.catalog.domain import (
    Asset,
    AssetChanges,
    AssetExists,
    AssetKind,
    AssetNameTaken,
    AssetNotFound,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    VersionConflict,
    check_new_asset,
    check_next_version,
)

if TYPE_CHECKING:
    from studio9.catalog.ports import CatalogStore


class _LostRace(Exception):
    """Rolls the transaction back when the compare-and-set found another version."""


class _Missing(Exception):
    """Rolls the transaction back (and its outbox entry) when the asset is not there."""


class SqlCatalogStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, asset: Asset, first: AssetVersion | None) -> None:
        check_new_asset(asset, first)
        try:
            with translated():
                async with self._sessions.begin() as session:
                    session.add(_asset_row(asset))
                    await session.flush()  # the asset before its version (foreign key)
                    if first is not None:
                        session.add(_version_row(first))
                    await outbox_insert(session, ASSET_TOPIC, [asset.id], asset.created_at)
        except IntegrityError:
            if await self._exists(asset.id):
                raise AssetExists(asset.id) from None
            raise AssetNameTaken(asset.kind, asset.name) from None

    async def get(self, asset_id: str) -> Asset:
        with translated():
            async with self._sessions() as session:
                row = await session.get(AssetRow, asset_id)
        if row is None:
            raise AssetNotFound(asset_id)
        return _asset(row)

    async def find(self, asset_ids: Collection[str]) -> Sequence[Asset]:
        if not asset_ids:
            return []
        query = sa.select(AssetRow).where(AssetRow.id.in_(set(asset_ids)))
        with translated():
            async with self._sessions() as session:
                return [_asset(row) for row in await session.scalars(query)]

    async def named(self, owner_id: str, kind: AssetKind, name: str) -> Asset:
        # The partial unique index on library names makes this at most one row.
        query = sa.select(AssetRow).where(
            AssetRow.owner_id == owner_id,
            AssetRow.kind == kind.value,
            AssetRow.name == name,
            AssetRow.in_library,
        )
        with translated():
            async with self._sessions() as session:
                row = (await session.scalars(query.limit(1))).first()
        if row is None:
            raise AssetNotFound(f"{owner_id}/{name}")
        return _asset(row)

    async def get_version(self, asset_id: str, version: int | None = None) -> AssetVersion:
        with translated():
            async with self._sessions() as session:
                asset = await session.get(AssetRow, asset_id)
                if asset is None:
                    raise AssetNotFound(asset_id)
                number = asset.latest_version if version is None else version
                row = await session.get(AssetVersionRow, (asset_id, number))
        if row is None:
            raise AssetNotFound(asset_id, number)
        return _version(row)

    async def versions(
        self, asset_id: str, *, limit: int, before: int | None = None
    ) -> Sequence[AssetVersion]:
        query = (
            sa.select(AssetVersionRow)
            .where(AssetVersionRow.asset_id == asset_id)
            .order_by(AssetVersionRow.version.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(AssetVersionRow.version < before)
        with translated():
            async with self._sessions() as session:
                return [_version(row) for row in await session.scalars(query)]

    async def add_version(
        self, version: AssetVersion, *, expected_latest: int, status: AssetStatus | None = None
    ) -> Asset:
        check_next_version(version, expected_latest)
        values: dict[str, Any] = {"latest_version": version.version, "updated_at": version.created_at}
        if status is not None:
            values.update(status=status.value, error=None)
        statement = (
            sa.update(AssetRow)
            .where(AssetRow.id == version.asset_id, AssetRow.latest_version == expected_latest)
            .values(**values)
        )
        try:
            with translated():
                async with self._sessions.begin() as session:
                    result = await session.execute(statement)
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _LostRace
                    session.add(_version_row(version))
                    await outbox_insert(session, ASSET_TOPIC, [version.asset_id], version.created_at)
        except _LostRace:
            if not await self._exists(version.asset_id):
                raise AssetNotFound(version.asset_id) from None
            raise VersionConflict(version.asset_id, expected_latest) from None
        return await self.get(version.asset_id)

    async def update(self, asset_id: str, changes: AssetChanges, *, at: datetime) -> Asset:
        values: dict[str, Any] = {"updated_at": at}
        for field in ("name", "description", "in_library"):
            if (value := getattr(changes, field)) is not None:
                values[field] = value
        if changes.tags is not None:
            values["tags"] = list(changes.tags)
        if changes.status is not None:
            values.update(status=changes.status.value, error=changes.error)
        statement = sa.update(AssetRow).where(AssetRow.id == asset_id).values(**values)
        try:
            with translated():
                async with self._sessions.begin() as session:
                    result = await session.execute(statement)
                    if result.rowcount != 1:  # type: ignore[attr-defined]
                        raise _Missing
                    await outbox_insert(session, ASSET_TOPIC, [asset_id], at)
        except _Missing:
            raise AssetNotFound(asset_id) from None
        except IntegrityError:
            current = await self.get(asset_id)
            changed = changes.apply(current, at)
            raise AssetNameTaken(changed.kind, changed.name) from None
        return await self.get(asset_id)

    async def list(
        self, owner_id: str, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        query = sa.select(AssetRow).where(AssetRow.owner_id == owner_id)
        if kind is not None:
            query = query.where(AssetRow.kind == kind.value)
        if after is not None:
            query = query.where(AssetRow.id < after)
        query = query.order_by(AssetRow.id.desc()).limit(limit)
        with translated():
            async with self._sessions() as session:
                return [_asset(row) for row in await session.scalars(query)]

    async def delete(self, asset_id: str) -> None:
        try:
            with translated():
                async with self._sessions.begin() as session:
                    # Explicitly, rather than trusting ON DELETE CASCADE: SQLite only honours it
                    # on connections that turned foreign keys on.
                    await session.execute(
                        sa.delete(AssetVersionRow).where(AssetVersionRow.asset_id == asset_id)
                    )
                    result = await session.execute(sa.delete(AssetRow).where(AssetRow.id == asset_id))
                    if result.rowcount == 0:  # type: ignore[attr-defined]
                        raise _Missing
                    await outbox_insert(session, ASSET_TOPIC, [asset_id])
        except _Missing:
            raise AssetNotFound(asset_id) from None

    async def transfer(self, owner_id: str, to: str, *, at: datetime) -> int:
        # RETURNING: exactly the rows this statement moved get an outbox entry.
        statement = (
            sa.update(AssetRow)
            .where(AssetRow.owner_id == owner_id)
            .values(owner_id=to, updated_at=at)
            .returning(AssetRow.id)
            .execution_options(synchronize_session=False)
        )
        try:
            with translated():
                async with self._sessions.begin() as session:
                    moved = list(await session.scalars(statement))
                    await outbox_insert(session, ASSET_TOPIC, moved, at)
        except IntegrityError:
            raise await self._transfer_clash(owner_id, to) from None
        return len(moved)

    async def _transfer_clash(self, owner_id: str, to: str) -> AssetNameTaken:
        """The first library asset of ``owner_id`` whose kind and name ``to`` already has."""
        theirs = sa.select(AssetRow.kind, AssetRow.name).where(AssetRow.owner_id == to, AssetRow.in_library)
        ours = sa.select(AssetRow.kind, AssetRow.name).where(
            AssetRow.owner_id == owner_id,
            AssetRow.in_library,
            sa.tuple_(AssetRow.kind, AssetRow.name).in_(theirs),
        )
        with translated():
            async with self._sessions() as session:
                kind, name = (await session.execute(ours.limit(1))).one()
        return AssetNameTaken(AssetKind(kind), name)

    async def all(self, *, limit: int, after: str | None = None) -> Sequence[Asset]:
        query = sa.select(AssetRow)
        if after is not None:
            query = query.where(AssetRow.id < after)
        query = query.order_by(AssetRow.id.desc()).limit(limit)
        with translated():
            async with self._sessions() as session:
                return [_asset(row) for row in await session.scalars(query)]

    async def add_edges(self, edges: Sequence[LineageEdge]) -> None:
        if not edges:
            return
        rows = list({edge.key: _edge_values(edge) for edge in edges}.values())
        with translated():
            async with self._sessions.begin() as session:
                insert = (
                    postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
                )
                await session.execute(insert(LineageEdgeRow).on_conflict_do_nothing(), rows)

    async def edges(
        self, asset_ids: Collection[str], direction: Direction, *, limit: int
    ) -> Sequence[LineageEdge]:
        ids = set(asset_ids)
        if not ids:
            return []
        conditions = []
        if direction in (Direction.UP, Direction.BOTH):
            conditions.append(LineageEdgeRow.output_id.in_(ids))
        if direction in (Direction.DOWN, Direction.BOTH):
            conditions.append(LineageEdgeRow.input_id.in_(ids))
        query = sa.select(LineageEdgeRow).where(sa.or_(*conditions)).order_by(*_EDGE_ORDER).limit(limit)
        with translated():
            async with self._sessions() as session:
                return [_edge(row) for row in await session.scalars(query)]

    async def dependents(self, asset_id: str, *, limit: int) -> Sequence[Asset]:
        derived = sa.select(LineageEdgeRow.output_id).where(
            LineageEdgeRow.input_id == asset_id, LineageEdgeRow.output_id != asset_id
        )
        query = sa.select(AssetRow).where(AssetRow.id.in_(derived)).order_by(AssetRow.id).limit(limit)
        with translated():
            async with self._sessions() as session:
                return [_asset(row) for row in await session.scalars(query)]

    async def _exists(self, asset_id: str) -> bool:
        with translated():
            async with self._sessions() as session:
                return await session.get(AssetRow, asset_id) is not None


_EDGE_ORDER = (
    LineageEdgeRow.at,
    LineageEdgeRow.output_id,
    LineageEdgeRow.output_version,
    LineageEdgeRow.input_id,
    LineageEdgeRow.input_version,
    LineageEdgeRow.job_id,
)


def _asset_row(asset: Asset) -> AssetRow:
    return AssetRow(
        id=asset.id,
        kind=asset.kind.value,
        owner_id=asset.owner_id,
        name=asset.name,
        description=asset.description,
        tags=list(asset.tags),
        status=asset.status.value,
        error=asset.error,
        in_library=asset.in_library,
        latest_version=asset.latest_version,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
    )


def _asset(row: AssetRow) -> Asset:
    return Asset(
        id=row.id,
        kind=AssetKind(row.kind),
        owner_id=row.owner_id,
        name=row.name,
        description=row.description,
        tags=tuple(row.tags),
        status=AssetStatus(row.status),
        error=row.error,
        in_library=row.in_library,
        latest_version=row.latest_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _version_row(version: AssetVersion) -> AssetVersionRow:
    return AssetVersionRow(
        asset_id=version.asset_id,
        version=version.version,
        created_at=version.created_at,
        job_id=version.job_id,
        content=dict(version.content),
    )


def _version(row: AssetVersionRow) -> AssetVersion:
    return AssetVersion(
        asset_id=row.asset_id,
        version=row.version,
        created_at=row.created_at,
        job_id=row.job_id,
        content=row.content,
    )


def _edge_values(edge: LineageEdge) -> dict[str, Any]:
    return {
        "output_id": edge.output_id,
        "output_version": edge.output_version,
        "input_id": edge.input_id,
        "input_version": edge.input_version,
        "job_id": NO_JOB if edge.job_id is None else edge.job_id,
        "at": edge.at,
    }


def _edge(row: LineageEdgeRow) -> LineageEdge:
    return LineageEdge(
        input_id=row.input_id,
        input_version=row.input_version,
        output_id=row.output_id,
        output_version=row.output_version,
        job_id=None if row.job_id == NO_JOB else row.job_id,
        at=row.at,
    )


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[CatalogStore] = SqlCatalogStore
