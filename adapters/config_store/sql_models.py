"""ORM rows of config settings and their history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import AutoId, Base, JsonDocument, UTCDateTime


class ConfigSettingRow(Base):
    __tablename__ = "config_settings"

    service: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[Any] = mapped_column(JsonDocument)
    tags: Mapped[list[str]] = mapped_column(JsonDocument)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(26))


class ConfigSettingHistoryRow(Base):
    __tablename__ = "config_setting_history"
    __table_args__ = (Index("ix_config_setting_history_key", "service", "name", "version"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    value: Mapped[Any] = mapped_column(JsonDocument)
    tags: Mapped[list[str]] = mapped_column(JsonDocument)
    by: Mapped[str] = mapped_column(String(26))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
