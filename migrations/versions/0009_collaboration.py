"""Collaboration: groups and their members, shares, projects with folders, links and members, the
append-only audit log, and an optional email per user (a share to an email reaches its user).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
ID = sa.String(26)

# The audit log is append-only: no statement may change or remove a row, whoever runs it.
_APPEND_ONLY = {
    "postgresql": [
        """CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$""",
        """CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
           FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()""",
        """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
           FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
    ],
    "sqlite": [
        """CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
        """CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
           BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END""",
    ],
}


def _asset_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["asset_id"], ["assets.id"], name=op.f(f"fk_{table}_asset_id_assets"), ondelete="CASCADE"
    )


def _project_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["project_id"], ["projects.id"], name=op.f(f"fk_{table}_project_id_projects"), ondelete="CASCADE"
    )


def upgrade() -> None:
    with op.batch_alter_table("users") as users:
        users.add_column(sa.Column("email", sa.String(320), nullable=True))
    op.create_index("uq_users_email", "users", ["email"], unique=True)

    op.create_table(
        "groups",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_groups_name")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("added_by", ID, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_group_members")),
    )
    op.create_index("ix_group_members_user_id", "group_members", ["user_id"])

    op.create_table(
        "shares",
        sa.Column("id", ID, nullable=False),
        sa.Column("asset_id", ID, nullable=False),
        sa.Column("grantee_kind", sa.String(8), nullable=False),
        sa.Column("grantee", sa.String(320), nullable=False),
        sa.Column("permission", sa.String(8), nullable=False),
        sa.Column("granted_by", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        _asset_fk("shares"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shares")),
        sa.UniqueConstraint("asset_id", "grantee_kind", "grantee", name=op.f("uq_shares_asset_id")),
    )
    op.create_index("ix_shares_grantee", "shares", ["grantee_kind", "grantee", "id"])
    op.create_index("ix_shares_granted_by", "shares", ["granted_by", "id"])

    op.create_table(
        "projects",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
        sa.UniqueConstraint("owner_id", "name", name=op.f("uq_projects_owner_id")),
    )
    op.create_table(
        "project_folders",
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", ID, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        _project_fk("project_folders"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_folders")),
        sa.UniqueConstraint("project_id", "name", name=op.f("uq_project_folders_project_id")),
    )
    op.create_table(
        "project_assets",
        sa.Column("project_id", ID, nullable=False),
        sa.Column("asset_id", ID, nullable=False),
        sa.Column("folder_id", ID, nullable=True),
        sa.Column("added_by", ID, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        _project_fk("project_assets"),
        _asset_fk("project_assets"),
        sa.ForeignKeyConstraint(
            ["folder_id"],
            ["project_folders.id"],
            name=op.f("fk_project_assets_folder_id_project_folders"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("project_id", "asset_id", name=op.f("pk_project_assets")),
    )
    op.create_index("ix_project_assets_asset_id", "project_assets", ["asset_id"])
    op.create_table(
        "project_members",
        sa.Column("project_id", ID, nullable=False),
        sa.Column("member_kind", sa.String(8), nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("permission", sa.String(8), nullable=False),
        sa.Column("added_by", ID, nullable=False),
        sa.Column("added_at", TIME, nullable=False),
        _project_fk("project_members"),
        sa.PrimaryKeyConstraint("project_id", "member_kind", "member_id", name=op.f("pk_project_members")),
    )
    op.create_index("ix_project_members_member", "project_members", ["member_kind", "member_id"])

    op.create_table(
        "audit_events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", TIME, nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("token_id", sa.String(64), nullable=True),
        sa.Column("address", sa.String(64), nullable=True),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=True),
        sa.Column("detail", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index("ix_audit_events_object_id", "audit_events", ["object_id", "id"])
    op.create_index("ix_audit_events_actor_id", "audit_events", ["actor_id", "id"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    for statement in _APPEND_ONLY[op.get_bind().dialect.name]:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_table("audit_events")  # its triggers go with it
    if dialect == "postgresql":
        op.execute("DROP FUNCTION audit_events_append_only()")
    op.drop_table("project_members")
    op.drop_table("project_assets")
    op.drop_table("project_folders")
    op.drop_table("projects")
    op.drop_table("shares")
    op.drop_table("group_members")
    op.drop_table("groups")
    op.drop_index("uq_users_email", table_name="users")
    with op.batch_alter_table("users") as users:
        users.drop_column("email")
