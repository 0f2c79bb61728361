"""ORM row of the audit log. Append-only: migration 0009's triggers refuse every UPDATE, DELETE and
TRUNCATE of ``audit_events`` on SQLite and PostgreSQL, whoever runs it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import Base, JsonDocument, UTCDateTime


class AuditEventRow(Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_object_id", "object_id", "id"),
        Index("ix_audit_events_actor_id", "actor_id", "id"),
        Index("ix_audit_events_at", "at"),
    )

    # INTEGER on SQLite: only an INTEGER PRIMARY KEY is its rowid, numbered by the database.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[str | None] = mapped_column(String(26))
    token_id: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(128))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[Any] = mapped_column(JsonDocument)
