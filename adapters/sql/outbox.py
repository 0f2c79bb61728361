"""Entries of the transactional outbox (table ``outbox``, ``studio9.metadata.ports.Change``),
written by any SQL store inside its own transaction.

The job store owns the table's ORM row and drains it (``adapters/job_store/``); the catalog and
access stores only append, through this lightweight Core table, so that no adapter package
imports another's. An entry written here commits or rolls back with the change it announces.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from adapters.sql.base import UTCDateTime

#: The topic of an asset change: "re-index (or drop) the asset ``ref_id``".
ASSET_TOPIC = "asset"

OUTBOX = sa.table(
    "outbox",
    sa.column("topic", sa.String()),
    sa.column("ref_id", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
_INSERT = sa.insert(OUTBOX)


async def outbox_insert(
    session_or_conn: AsyncSession | AsyncConnection,
    topic: str,
    ref_ids: Iterable[str],
    at: datetime | None = None,
) -> None:
    """Append one entry of ``topic`` per distinct id of ``ref_ids`` (none: nothing), stamped ``at``
    (default: now), in the caller's transaction."""
    stamp = at or datetime.now(UTC)
    rows = [{"topic": topic, "ref_id": ref_id, "created_at": stamp} for ref_id in dict.fromkeys(ref_ids)]
    if rows:
        await session_or_conn.execute(_INSERT, rows)
