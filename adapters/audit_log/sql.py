"""AuditLog on SQLAlchemy (SQLite and PostgreSQL alike), on ``audit_events``.

URL:      the system-of-record database (``SqlDatabase.audit``): sqlite+aiosqlite://, postgresql+psycopg://
Features: one INSERT per batch · ids numbered by the database (rowid / BIGSERIAL-like identity) ·
          append-only enforced by the database (migration 0009's triggers refuse UPDATE, DELETE
          and TRUNCATE)
Extra:    cloud (psycopg) for PostgreSQL
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.audit_log.sql_models import AuditEventRow
from adapters.sql.errors import translated
from studio9.audit.domain import AuditEvent, NewAuditEvent

if TYPE_CHECKING:
    from studio9.audit.ports import AuditLog


class SqlAuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def append(self, events: Sequence[NewAuditEvent]) -> None:
        if not events:
            return
        rows = [
            {
                "at": e.at,
                "actor_id": e.actor_id,
                "token_id": e.token_id,
                "address": e.address,
                "action": e.action,
                "object_id": e.object_id,
                "detail": dict(e.detail),
            }
            for e in events
        ]
        with translated():
            async with self._sessions.begin() as session:
                # Core, one multi-row INSERT: the database numbers the rows in their order.
                await session.execute(sa.insert(AuditEventRow).values(rows))

    async def query(
        self,
        *,
        object_id: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        limit: int,
        after_id: int | None = None,
    ) -> Sequence[AuditEvent]:
        statement = sa.select(AuditEventRow).order_by(AuditEventRow.id.desc()).limit(limit)
        if object_id is not None:
            statement = statement.where(AuditEventRow.object_id == object_id)
        if actor_id is not None:
            statement = statement.where(AuditEventRow.actor_id == actor_id)
        if since is not None:
            statement = statement.where(AuditEventRow.at >= since)
        if after_id is not None:
            statement = statement.where(AuditEventRow.id < after_id)
        with translated():
            async with self._sessions() as session:
                return [_event(row) for row in await session.scalars(statement)]


def _event(row: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        actor_id=row.actor_id,
        token_id=row.token_id,
        address=row.address,
        action=row.action,
        object_id=row.object_id,
        detail=row.detail,
    )


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[AuditLog] = SqlAuditLog
