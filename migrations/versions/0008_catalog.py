"""The catalog: assets, their versions and lineage edges; every uploaded file becomes a ``file`` asset.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)

# Each existing file record becomes a ``file`` asset of the same id, outside the library (two
# uploads may share a name), at version 1 with what ``studio9.file_assets`` records.
_FILE_ASSETS = """
INSERT INTO assets (id, kind, owner_id, name, description, tags, status, error, in_library,
                    latest_version, created_at, updated_at)
SELECT id, 'file', owner_id, name, '', {empty_list}, 'active', NULL, {false}, 1, created_at, created_at
FROM files
"""
_FILE_VERSIONS = """
INSERT INTO asset_versions (asset_id, version, created_at, job_id, content)
SELECT id, 1, created_at, NULL,
       {json_object}('file_id', id, 'size', size, 'sha256', sha256,
                     'content_type', COALESCE(content_type, 'application/octet-stream'))
FROM files
"""
_DIALECT_SQL = {
    "postgresql": {"empty_list": "'[]'::jsonb", "false": "false", "json_object": "jsonb_build_object"},
    "sqlite": {"empty_list": "'[]'", "false": "0", "json_object": "json_object"},
}


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("in_library", sa.Boolean(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    op.create_index("ix_assets_owner_id_id", "assets", ["owner_id", "id"])
    op.create_index("ix_assets_owner_id_kind_id", "assets", ["owner_id", "kind", "id"])
    op.create_index(
        "uq_assets_library_name",
        "assets",
        ["owner_id", "kind", "name"],
        unique=True,
        sqlite_where=sa.text("in_library"),
        postgresql_where=sa.text("in_library"),
    )
    op.create_table(
        "asset_versions",
        sa.Column("asset_id", sa.String(26), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("job_id", sa.String(26), nullable=True),
        sa.Column("content", JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"],
            ["assets.id"],
            name=op.f("fk_asset_versions_asset_id_assets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("asset_id", "version", name=op.f("pk_asset_versions")),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("output_id", sa.String(26), nullable=False),
        sa.Column("output_version", sa.Integer(), nullable=False),
        sa.Column("input_id", sa.String(26), nullable=False),
        sa.Column("input_version", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(26), nullable=False),
        sa.Column("at", TIME, nullable=False),
        sa.PrimaryKeyConstraint(
            "output_id",
            "output_version",
            "input_id",
            "input_version",
            "job_id",
            name=op.f("pk_lineage_edges"),
        ),
    )
    op.create_index("ix_lineage_edges_input_id", "lineage_edges", ["input_id", "output_id"])
    words = _DIALECT_SQL[op.get_bind().dialect.name]
    op.execute(_FILE_ASSETS.format(**words))
    op.execute(_FILE_VERSIONS.format(**words))


def downgrade() -> None:
    op.drop_index("ix_lineage_edges_input_id", table_name="lineage_edges")
    op.drop_table("lineage_edges")
    op.drop_table("asset_versions")
    op.drop_index("uq_assets_library_name", table_name="assets")
    op.drop_index("ix_assets_owner_id_kind_id", table_name="assets")
    op.drop_index("ix_assets_owner_id_id", table_name="assets")
    op.drop_table("assets")
