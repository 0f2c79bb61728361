"""Config settings (the original ARGO) with their history.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "config_settings",
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("updated_by", sa.String(26), nullable=False),
        sa.PrimaryKeyConstraint("service", "name", name=op.f("pk_config_settings")),
    )
    op.create_table(
        "config_setting_history",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("value", JSON, nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("by", sa.String(26), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_config_setting_history")),
    )
    op.create_index("ix_config_setting_history_key", "config_setting_history", ["service", "name", "version"])


def downgrade() -> None:
    op.drop_index("ix_config_setting_history_key", table_name="config_setting_history")
    op.drop_table("config_setting_history")
    op.drop_table("config_settings")
