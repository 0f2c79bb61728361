"""StreamStates and StreamBacklog on SQLAlchemy (SQLite, PostgreSQL).

Every change is one short transaction, and every one that several runners could race on
is conditional: the lease (``WHERE`` nobody else holds it), batch formation (items still
without a batch), finishing a batch (still ``submitting``). The loser's transaction is
rolled back and it simply finds nothing to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adapters.stream_store.sql_models import StreamBatchRow, StreamItemRow, StreamStateRow
from studio9.errors import BackendUnavailable
from studio9.messaging.streams.domain import (
    AddResult,
    Batch,
    BatchStatus,
    Item,
    StreamNotFound,
    StreamState,
    batch_ids,
)

_ADD_ATTEMPTS = 3


class _LostRace(Exception):
    """Rolls a transaction back when a conditional write found the row changed."""


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise BackendUnavailable(f"database unavailable: {type(exc.orig or exc).__name__}") from exc


def _counters(stream_id: str, at: datetime, **increments: int) -> Any:
    """``UPDATE stream_states SET <counter> = <counter> + n …`` for one stream."""
    values: dict[str, Any] = {name: getattr(StreamStateRow, name) + n for name, n in increments.items()}
    return (
        sa.update(StreamStateRow).where(StreamStateRow.stream_id == stream_id).values(updated_at=at, **values)
    )


class SqlStreamStates:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def ensure(self, stream_id: str, owner_id: str, at: datetime) -> None:
        with _unavailable():
            async with self._sessions() as session:
                if await session.get(StreamStateRow, stream_id) is not None:
                    return
            with contextlib.suppress(IntegrityError):  # another process made it first: same row
                async with self._sessions.begin() as session:
                    session.add(
                        StreamStateRow(
                            stream_id=stream_id,
                            owner_id=owner_id,
                            paused=False,
                            received=0,
                            duplicates=0,
                            batched=0,
                            jobs_submitted=0,
                            failed=0,
                            created_at=at,
                            updated_at=at,
                        )
                    )

    async def get(self, stream_id: str) -> StreamState | None:
        with _unavailable():
            async with self._sessions() as session:
                row = await session.get(StreamStateRow, stream_id)
        return None if row is None else _state(row)

    async def set_paused(self, stream_id: str, paused: bool, at: datetime) -> bool:
        statement = (
            sa.update(StreamStateRow)
            .where(StreamStateRow.stream_id == stream_id)
            .values(paused=paused, updated_at=at)
        )
        return await self._one(statement)

    async def set_owner(self, stream_id: str, owner_id: str, at: datetime) -> bool:
        statement = (
            sa.update(StreamStateRow)
            .where(StreamStateRow.stream_id == stream_id)
            .values(owner_id=owner_id, updated_at=at)
        )
        return await self._one(statement)

    async def lease(self, stream_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        statement = (
            sa.update(StreamStateRow)
            .where(
                StreamStateRow.stream_id == stream_id,
                sa.or_(
                    StreamStateRow.lease_owner.is_(None),
                    StreamStateRow.lease_owner == owner,
                    StreamStateRow.lease_expires_at < now,
                ),
            )
            .values(lease_owner=owner, lease_expires_at=until)
        )
        return await self._one(statement)

    async def release(self, stream_id: str, owner: str) -> None:
        await self._one(
            sa.update(StreamStateRow)
            .where(StreamStateRow.stream_id == stream_id, StreamStateRow.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )

    async def delete(self, stream_id: str) -> None:
        with _unavailable():
            async with self._sessions.begin() as session:
                await session.execute(sa.delete(StreamItemRow).where(StreamItemRow.stream_id == stream_id))
                await session.execute(sa.delete(StreamBatchRow).where(StreamBatchRow.stream_id == stream_id))
                await session.execute(sa.delete(StreamStateRow).where(StreamStateRow.stream_id == stream_id))

    async def _one(self, statement: Any) -> bool:
        with _unavailable():
            async with self._sessions.begin() as session:
                result = await session.execute(statement)
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class SqlStreamBacklog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(self, stream_id: str, items: Sequence[Item], at: datetime) -> AddResult:
        unique: dict[str, Item] = {}
        for item in items:
            unique.setdefault(item.key, item)  # the first of each key wins
        for _ in range(_ADD_ATTEMPTS):
            try:
                return await self._add(stream_id, items, unique, at)
            except IntegrityError:  # a concurrent add stored one of these keys: look again
                continue
        raise BackendUnavailable(f"items of stream {stream_id} kept colliding; try again")

    async def _add(
        self, stream_id: str, items: Sequence[Item], unique: dict[str, Item], at: datetime
    ) -> AddResult:
        with _unavailable():
            async with self._sessions.begin() as session:
                seen = set(
                    await session.scalars(
                        sa.select(StreamItemRow.item_key).where(
                            StreamItemRow.stream_id == stream_id, StreamItemRow.item_key.in_(list(unique))
                        )
                    )
                )
                fresh = [item for key, item in unique.items() if key not in seen]
                accepted, duplicates = len(fresh), len(items) - len(fresh)
                counted = await session.execute(
                    _counters(stream_id, at, received=accepted, duplicates=duplicates)
                )
                if counted.rowcount != 1:  # type: ignore[attr-defined]
                    raise StreamNotFound(stream_id)  # deleted meanwhile: keep nothing
                session.add_all(
                    StreamItemRow(stream_id=stream_id, item_key=i.key, payload=i.payload, received_at=at)
                    for i in fresh
                )
        return AddResult(accepted, duplicates)

    async def form(
        self, stream_id: str, *, limit: int, due_before: datetime, per_item: bool, at: datetime
    ) -> int:
        pending = (
            sa.select(StreamItemRow.id, StreamItemRow.received_at)
            .where(StreamItemRow.stream_id == stream_id, StreamItemRow.batch_id.is_(None))
            .order_by(StreamItemRow.id)
            .limit(limit)
        )
        try:
            with _unavailable():
                async with self._sessions.begin() as session:
                    rows = (await session.execute(pending)).all()
                    if not rows or (len(rows) < limit and rows[0].received_at > due_before):
                        return 0
                    groups = [[r.id] for r in rows] if per_item else [[r.id for r in rows]]
                    fresh = iter(batch_ids(2 * len(groups)))
                    for ids in groups:
                        batch_id = next(fresh)
                        session.add(
                            StreamBatchRow(
                                id=batch_id,
                                stream_id=stream_id,
                                job_id=next(fresh),
                                status=BatchStatus.SUBMITTING.value,
                                item_count=len(ids),
                                created_at=at,
                            )
                        )
                        taken = await session.execute(
                            sa.update(StreamItemRow)
                            .where(StreamItemRow.id.in_(ids), StreamItemRow.batch_id.is_(None))
                            .values(batch_id=batch_id)
                        )
                        if taken.rowcount != len(ids):  # type: ignore[attr-defined]
                            raise _LostRace
                    await session.execute(_counters(stream_id, at, batched=len(rows)))
        except _LostRace:
            return 0
        return len(groups)

    async def open_batches(self, stream_id: str, *, limit: int) -> Sequence[Batch]:
        with _unavailable():
            async with self._sessions() as session:
                rows = list(
                    await session.scalars(
                        sa.select(StreamBatchRow)
                        .where(
                            StreamBatchRow.stream_id == stream_id,
                            StreamBatchRow.status == BatchStatus.SUBMITTING.value,
                        )
                        .order_by(StreamBatchRow.id)
                        .limit(limit)
                    )
                )
                items: dict[str, list[Any]] = {r.id: [] for r in rows}
                if rows:
                    found = await session.execute(
                        sa.select(StreamItemRow.batch_id, StreamItemRow.payload)
                        .where(StreamItemRow.stream_id == stream_id, StreamItemRow.batch_id.in_(list(items)))
                        .order_by(StreamItemRow.id)
                    )
                    for batch_id, payload in found:
                        items[batch_id].append(payload)
        return [_batch(r, tuple(items[r.id])) for r in rows]

    async def finish(self, stream_id: str, batch_id: str, *, error: str | None, at: datetime) -> bool:
        status = BatchStatus.SUBMITTED if error is None else BatchStatus.FAILED
        with _unavailable():
            async with self._sessions.begin() as session:
                marked = await session.execute(
                    sa.update(StreamBatchRow)
                    .where(
                        StreamBatchRow.id == batch_id,
                        StreamBatchRow.status == BatchStatus.SUBMITTING.value,
                    )
                    .values(status=status.value, submitted_at=at, error=error)
                )
                if marked.rowcount != 1:  # type: ignore[attr-defined]
                    return False
                counter = "jobs_submitted" if error is None else "failed"
                await session.execute(_counters(stream_id, at, **{counter: 1}))
        return True

    async def batches(self, stream_id: str, *, limit: int, before: str | None) -> Sequence[Batch]:
        statement = sa.select(StreamBatchRow).where(StreamBatchRow.stream_id == stream_id)
        if before is not None:
            statement = statement.where(StreamBatchRow.id < before)
        with _unavailable():
            async with self._sessions() as session:
                rows = await session.scalars(statement.order_by(StreamBatchRow.id.desc()).limit(limit))
                return [_batch(r, ()) for r in rows]


def _state(row: StreamStateRow) -> StreamState:
    return StreamState(
        stream_id=row.stream_id,
        owner_id=row.owner_id,
        paused=row.paused,
        received=row.received,
        duplicates=row.duplicates,
        batched=row.batched,
        jobs_submitted=row.jobs_submitted,
        failed=row.failed,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _batch(row: StreamBatchRow, items: tuple[Any, ...]) -> Batch:
    return Batch(
        id=row.id,
        stream_id=row.stream_id,
        job_id=row.job_id,
        status=BatchStatus(row.status),
        item_count=row.item_count,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        error=row.error,
        items=items,
    )
