"""Message streams: runtime state, items and batches (settings are config settings).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stream_states",
        sa.Column("stream_id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(26), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("batched", sa.Integer(), nullable=False),
        sa.Column("jobs_submitted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", TIME, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("stream_id", name=op.f("pk_stream_states")),
    )
    op.create_table(
        "stream_items",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(26), nullable=False),
        sa.Column("item_key", sa.String(255), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("batch_id", sa.String(26), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_items")),
        sa.UniqueConstraint("stream_id", "item_key", name=op.f("uq_stream_items_key")),
    )
    op.create_index("ix_stream_items_pending", "stream_items", ["stream_id", "batch_id", "id"])
    op.create_table(
        "stream_batches",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("stream_id", sa.String(26), nullable=False),
        sa.Column("job_id", sa.String(26), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("submitted_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stream_batches")),
        sa.UniqueConstraint("job_id", name=op.f("uq_stream_batches_job_id")),
    )
    op.create_index("ix_stream_batches_stream_id_id", "stream_batches", ["stream_id", "id"])
    op.create_index("ix_stream_batches_open", "stream_batches", ["stream_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_stream_batches_open", table_name="stream_batches")
    op.drop_index("ix_stream_batches_stream_id_id", table_name="stream_batches")
    op.drop_table("stream_batches")
    op.drop_index("ix_stream_items_pending", table_name="stream_items")
    op.drop_table("stream_items")
    op.drop_table("stream_states")
