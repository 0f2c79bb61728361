"""ORM rows of message streams: runtime state per stream, its items and its batches (migration 0006)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import AutoId, Base, JsonDocument, UTCDateTime


class StreamStateRow(Base):
    """Counters, pause flag and runner lease of one stream (its settings are a config setting)."""

    __tablename__ = "stream_states"

    stream_id: Mapped[str] = mapped_column(String(26), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(26))
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    received: Mapped[int] = mapped_column(Integer, default=0)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    batched: Mapped[int] = mapped_column(Integer, default=0)
    jobs_submitted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StreamItemRow(Base):
    """An item; ``batch_id`` is null while it waits. The unique key drops re-deliveries."""

    __tablename__ = "stream_items"
    __table_args__ = (
        UniqueConstraint("stream_id", "item_key", name="uq_stream_items_key"),
        Index("ix_stream_items_pending", "stream_id", "batch_id", "id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(String(26))
    item_key: Mapped[str] = mapped_column(String(255))
    payload: Mapped[Any] = mapped_column(JsonDocument)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    batch_id: Mapped[str | None] = mapped_column(String(26))


class StreamBatchRow(Base):
    """Items that make one job; ``job_id`` is chosen when the batch is formed."""

    __tablename__ = "stream_batches"
    __table_args__ = (
        Index("ix_stream_batches_stream_id_id", "stream_id", "id"),
        Index("ix_stream_batches_open", "stream_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(26))
    job_id: Mapped[str] = mapped_column(String(26), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
