"""What the audit log needs: a store that appends events and reads them back, never more.

Adapters: ``adapters/audit_log/memory.py`` and ``adapters/audit_log/sql.py`` (SQLite,
PostgreSQL), a store of the system of record (``studio9.database.Database.audit``).
Contract: ``tests/contract/test_audit_log.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from studio9.audit.domain import AuditEvent, NewAuditEvent


class AuditLog(Protocol):
    """**Protocol:** an append-only log of events, numbered in the order they were appended.

    There is no method to change or remove an event, and the SQL table refuses every UPDATE,
    DELETE and TRUNCATE (migration 0009's triggers), whoever sends it.
    """

    async def append(self, events: Sequence[NewAuditEvent]) -> None:
        """Append ``events`` together (all or none), numbered in their order.

        Raises:
            BackendUnavailable: the database did not answer.
        """

    async def query(
        self,
        *,
        object_id: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        limit: int,
        after_id: int | None = None,
    ) -> Sequence[AuditEvent]:
        """The events about ``object_id``, by ``actor_id``, at or after ``since`` and numbered
        below ``after_id`` (each only when given), newest (largest id) first, at most ``limit``.

        Raises:
            BackendUnavailable: the database did not answer.
        """
