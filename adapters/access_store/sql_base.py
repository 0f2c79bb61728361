"""What the SQL access store's parts share (``SqlAccessStore`` and its ``SqlProjectStore``):
short reads, the one-transaction delete that also writes the outbox, and the dialect's upsert.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.sql.errors import translated
from adapters.sql.outbox import ASSET_TOPIC, outbox_insert


class _NoRow(Exception):
    """Rolls a delete's transaction back (its outbox entries too) when it found nothing."""


class SqlAccessBase:
    """Sessions and helpers of the SQL access store."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def _get(self, row_type: type[Any], key: str) -> Any:
        with translated():
            async with self._sessions() as session:
                return await session.get(row_type, key)

    async def _rows(self, query: sa.Select[Any]) -> list[Any]:
        with translated():
            async with self._sessions() as session:
                return list(await session.scalars(query))

    async def _delete(
        self,
        first: Sequence[sa.Executable],
        statement: sa.Executable,
        *,
        touched: sa.Executable | None = None,
        assets: Collection[str] = (),
    ) -> bool:
        """Run ``touched``, then ``first``, then ``statement`` in one transaction; whether
        ``statement`` hit a row (if not, the transaction rolls back). ``touched`` returns the ids
        of assets whose reader keys the delete changes; they and ``assets`` get an outbox entry
        in the same transaction."""
        try:
            with translated():
                async with self._sessions.begin() as session:
                    changed = list(await session.scalars(touched)) if touched is not None else []
                    for before in first:
                        await session.execute(before)
                    result = await session.execute(statement)
                    if not result.rowcount:  # type: ignore[attr-defined]
                        raise _NoRow
                    await outbox_insert(session, ASSET_TOPIC, [*changed, *assets])
        except _NoRow:
            return False
        return True


def dialect_insert(session: AsyncSession) -> Any:
    """The dialect's INSERT, the one with ``on_conflict_*`` (both spell it the same)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


async def upsert(
    session: AsyncSession,
    row_type: type[Any],
    values: dict[str, Any],
    key: Sequence[str],
    changes: dict[str, Any],
) -> Any:
    """INSERT, or on a clash of ``key`` UPDATE ``changes`` only; the row as stored (RETURNING,
    which SQLite has since 3.35 and PostgreSQL always)."""
    insert = dialect_insert(session)(row_type).values(**values)
    statement = insert.on_conflict_do_update(index_elements=list(key), set_=changes).returning(row_type)
    return (await session.scalars(statement)).one()


def page(query: sa.Select[Any], column: Any, limit: int, after: str | None) -> sa.Select[Any]:
    """Newest first by ``column`` (a time-sortable id), only those below ``after``."""
    if after is not None:
        query = query.where(column < after)
    return query.order_by(column.desc()).limit(limit)
