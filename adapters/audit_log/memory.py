"""Audit log held in a list: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.audit``)
Features: thread-safe · append-only by construction (no method changes or removes an event)
Extra:    none
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from studio9.audit.domain import AuditEvent, AuditQuery, NewAuditEvent

if TYPE_CHECKING:
    from studio9.audit.ports import AuditLog


class MemoryAuditLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Event n is at index n - 1: ids are 1, 2, 3… in the order of appends.
        self._events: list[AuditEvent] = []

    async def append(self, events: Sequence[NewAuditEvent]) -> None:
        with self._lock:
            start = len(self._events) + 1
            self._events.extend(event.numbered(start + i) for i, event in enumerate(events))

    async def query(
        self,
        *,
        object_id: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        limit: int,
        after_id: int | None = None,
    ) -> Sequence[AuditEvent]:
        query = AuditQuery(
            object_id=object_id, actor_id=actor_id, since=since, limit=limit, after_id=after_id
        )
        with self._lock:
            newest_first = reversed(self._events)
            found = []
            for event in newest_first:
                if query.matches(event):
                    found.append(event)
                    if len(found) == limit:
                        break
            return found


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[AuditLog] = MemoryAuditLog
