"""ORM rows of the catalog: assets, their versions, and the lineage edges between versions.

Library names are unique per owner and kind through a partial unique index (SQLite and
PostgreSQL both have them), so two concurrent writes of one name cannot both succeed.
Lineage edges have no foreign key: they outlive the assets they name.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Boolean, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import Base, JsonDocument, UTCDateTime

#: The job id of an edge recorded outside a job: part of the edge's key, so not NULL (NULLs
#: would be distinct from each other and let one edge be recorded twice).
NO_JOB = ""


class AssetRow(Base):
    __tablename__ = "assets"
    __table_args__ = (
        Index("ix_assets_owner_id_id", "owner_id", "id"),
        Index("ix_assets_owner_id_kind_id", "owner_id", "kind", "id"),
        Index(
            "uq_assets_library_name",
            "owner_id",
            "kind",
            "name",
            unique=True,
            sqlite_where=sa.text("in_library"),
            postgresql_where=sa.text("in_library"),
        ),
    )

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(26))
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    in_library: Mapped[bool] = mapped_column(Boolean)
    latest_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AssetVersionRow(Base):
    __tablename__ = "asset_versions"

    asset_id: Mapped[str] = mapped_column(
        String(26), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    job_id: Mapped[str | None] = mapped_column(String(26))
    content: Mapped[Any] = mapped_column(JsonDocument)


class LineageEdgeRow(Base):
    __tablename__ = "lineage_edges"
    __table_args__ = (
        # Upstream traversal reads by output, downstream (and dependents) by input.
        PrimaryKeyConstraint("output_id", "output_version", "input_id", "input_version", "job_id"),
        Index("ix_lineage_edges_input_id", "input_id", "output_id"),
    )

    output_id: Mapped[str] = mapped_column(String(26))
    output_version: Mapped[int] = mapped_column(Integer)
    input_id: Mapped[str] = mapped_column(String(26))
    input_version: Mapped[int] = mapped_column(Integer)
    job_id: Mapped[str] = mapped_column(String(26))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
