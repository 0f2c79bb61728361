"""ORM rows of the model registry: per-version registry info and aliases.

A registered model is a catalog asset: both tables name it with a cascading foreign key to
``assets`` (an asset's delete takes its registry rows). ``model_aliases`` is keyed by
(asset, alias), so an alias points at one version; its (asset, version) index serves "which
aliases point at this version", asked before a version is deleted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import Base, JsonDocument, UTCDateTime


class ModelVersionRow(Base):
    __tablename__ = "model_versions"

    asset_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    run_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted: Mapped[bool] = mapped_column(Boolean)


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"
    __table_args__ = (Index("ix_model_aliases_asset_id_version", "asset_id", "version"),)

    asset_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(64))
