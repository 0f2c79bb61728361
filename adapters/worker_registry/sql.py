"""WorkerRegistry on SQLAlchemy: one row per worker process, refreshed by its heartbeat."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.worker_registry.sql_models import WorkerRow
from studio9.jobs.ports import WorkerInfo


class SqlWorkerRegistry:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def announce(self, worker: WorkerInfo) -> None:
        async with self._sessions.begin() as session:
            updated = await session.execute(
                sa.update(WorkerRow)
                .where(WorkerRow.id == worker.id)
                .values(seen_at=worker.seen_at, threads=worker.threads)
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.add(
                    WorkerRow(
                        id=worker.id,
                        host=worker.host,
                        pid=worker.pid,
                        threads=worker.threads,
                        started_at=worker.started_at,
                        seen_at=worker.seen_at,
                    )
                )

    async def live(self, *, seen_after: datetime) -> Sequence[WorkerInfo]:
        statement = (
            sa.select(WorkerRow).where(WorkerRow.seen_at > seen_after).order_by(WorkerRow.host, WorkerRow.id)
        )
        async with self._sessions() as session:
            return [
                WorkerInfo(
                    id=r.id,
                    host=r.host,
                    pid=r.pid,
                    threads=r.threads,
                    started_at=r.started_at,
                    seen_at=r.seen_at,
                )
                for r in await session.scalars(statement)
            ]

    async def forget(self, worker_id: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(sa.delete(WorkerRow).where(WorkerRow.id == worker_id))
