"""StreamStates and StreamBacklog in memory, with the same conditional writes as SQL.

URL:      memory:// (as STUDIO9_DATABASE_URL)
Features: nothing kept · thread-safe · one lock for both stores (their writes touch both)
Extra:    none
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from studio9.messaging.streams.domain import (
    AddResult,
    Batch,
    BatchStatus,
    Item,
    StreamNotFound,
    StreamState,
    batch_ids,
)


@attrs.define
class _Stored:
    id: int
    key: str
    payload: Any
    received_at: datetime
    batch_id: str | None = None


@attrs.define
class StreamTables:
    lock: threading.Lock = attrs.field(factory=threading.Lock)
    states: dict[str, StreamState] = attrs.field(factory=dict)
    #: stream id -> item key -> item, in arrival order.
    items: dict[str, dict[str, _Stored]] = attrs.field(factory=dict)
    batches: dict[str, Batch] = attrs.field(factory=dict)
    ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def bump(self, stream_id: str, at: datetime, **increments: int) -> None:
        state = self.states[stream_id]
        changes = {name: getattr(state, name) + n for name, n in increments.items()}
        self.states[stream_id] = attrs.evolve(state, updated_at=at, **changes)


class MemoryStreamStates:
    def __init__(self, tables: StreamTables) -> None:
        self._t = tables

    async def ensure(self, stream_id: str, owner_id: str, at: datetime) -> None:
        with self._t.lock:
            if stream_id not in self._t.states:
                self._t.states[stream_id] = StreamState(
                    stream_id=stream_id, owner_id=owner_id, created_at=at, updated_at=at
                )

    async def get(self, stream_id: str) -> StreamState | None:
        with self._t.lock:
            return self._t.states.get(stream_id)

    async def set_paused(self, stream_id: str, paused: bool, at: datetime) -> bool:
        with self._t.lock:
            state = self._t.states.get(stream_id)
            if state is None:
                return False
            self._t.states[stream_id] = attrs.evolve(state, paused=paused, updated_at=at)
            return True

    async def set_owner(self, stream_id: str, owner_id: str, at: datetime) -> bool:
        with self._t.lock:
            state = self._t.states.get(stream_id)
            if state is None:
                return False
            self._t.states[stream_id] = attrs.evolve(state, owner_id=owner_id, updated_at=at)
            return True

    async def lease(self, stream_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        with self._t.lock:
            state = self._t.states.get(stream_id)
            if state is None:
                return False
            free = (
                state.lease_owner in (None, owner)
                or state.lease_expires_at is None
                or state.lease_expires_at < now
            )
            if free:
                self._t.states[stream_id] = attrs.evolve(state, lease_owner=owner, lease_expires_at=until)
            return free

    async def release(self, stream_id: str, owner: str) -> None:
        with self._t.lock:
            state = self._t.states.get(stream_id)
            if state is not None and state.lease_owner == owner:
                self._t.states[stream_id] = attrs.evolve(state, lease_owner=None, lease_expires_at=None)

    async def delete(self, stream_id: str) -> None:
        with self._t.lock:
            self._t.states.pop(stream_id, None)
            self._t.items.pop(stream_id, None)
            for batch_id in [b.id for b in self._t.batches.values() if b.stream_id == stream_id]:
                del self._t.batches[batch_id]


class MemoryStreamBacklog:
    def __init__(self, tables: StreamTables) -> None:
        self._t = tables

    async def add(self, stream_id: str, items: Sequence[Item], at: datetime) -> AddResult:
        with self._t.lock:
            if stream_id not in self._t.states:
                raise StreamNotFound(stream_id)
            stored = self._t.items.setdefault(stream_id, {})
            accepted = 0
            for item in items:
                if item.key not in stored:
                    stored[item.key] = _Stored(next(self._t.ids), item.key, item.payload, at)
                    accepted += 1
            self._t.bump(stream_id, at, received=accepted, duplicates=len(items) - accepted)
            return AddResult(accepted, len(items) - accepted)

    async def form(
        self, stream_id: str, *, limit: int, due_before: datetime, per_item: bool, at: datetime
    ) -> int:
        with self._t.lock:
            if stream_id not in self._t.states:
                return 0
            pending = [s for s in self._t.items.get(stream_id, {}).values() if s.batch_id is None][:limit]
            if not pending or (len(pending) < limit and pending[0].received_at > due_before):
                return 0
            groups = [[s] for s in pending] if per_item else [pending]
            fresh = iter(batch_ids(2 * len(groups)))
            for group in groups:
                batch = Batch(
                    id=next(fresh),
                    stream_id=stream_id,
                    job_id=next(fresh),
                    status=BatchStatus.SUBMITTING,
                    item_count=len(group),
                    created_at=at,
                )
                self._t.batches[batch.id] = batch
                for stored in group:
                    stored.batch_id = batch.id
            self._t.bump(stream_id, at, batched=len(pending))
            return len(groups)

    async def open_batches(self, stream_id: str, *, limit: int) -> Sequence[Batch]:
        with self._t.lock:
            found = sorted(
                (
                    b
                    for b in self._t.batches.values()
                    if b.stream_id == stream_id and b.status is BatchStatus.SUBMITTING
                ),
                key=lambda b: b.id,
            )[:limit]
            stored = self._t.items.get(stream_id, {}).values()
            return [
                attrs.evolve(b, items=tuple(s.payload for s in stored if s.batch_id == b.id)) for b in found
            ]

    async def finish(self, stream_id: str, batch_id: str, *, error: str | None, at: datetime) -> bool:
        with self._t.lock:
            batch = self._t.batches.get(batch_id)
            if batch is None or batch.status is not BatchStatus.SUBMITTING:
                return False
            status = BatchStatus.SUBMITTED if error is None else BatchStatus.FAILED
            self._t.batches[batch_id] = attrs.evolve(batch, status=status, submitted_at=at, error=error)
            if stream_id in self._t.states:
                self._t.bump(stream_id, at, **{"jobs_submitted" if error is None else "failed": 1})
            return True

    async def batches(self, stream_id: str, *, limit: int, before: str | None) -> Sequence[Batch]:
        with self._t.lock:
            found = [
                b
                for b in self._t.batches.values()
                if b.stream_id == stream_id and (before is None or b.id < before)
            ]
        return sorted(found, key=lambda b: b.id, reverse=True)[:limit]
