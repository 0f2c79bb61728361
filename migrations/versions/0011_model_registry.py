"""Model registry: per-version registry info (description, tags, run, deleted flag) and aliases of
registered models, which are catalog assets of kind ``model``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
ID = sa.String(26)


def _asset_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["asset_id"], ["assets.id"], name=op.f(f"fk_{table}_asset_id_assets"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("asset_id", ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        _asset_fk("model_versions"),
        sa.PrimaryKeyConstraint("asset_id", "version", name=op.f("pk_model_versions")),
    )
    op.create_table(
        "model_aliases",
        sa.Column("asset_id", ID, nullable=False),
        sa.Column("alias", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        _asset_fk("model_aliases"),
        sa.PrimaryKeyConstraint("asset_id", "alias", name=op.f("pk_model_aliases")),
    )
    op.create_index("ix_model_aliases_asset_id_version", "model_aliases", ["asset_id", "version"])


def downgrade() -> None:
    op.drop_index("ix_model_aliases_asset_id_version", table_name="model_aliases")
    op.drop_table("model_aliases")
    op.drop_table("model_versions")
