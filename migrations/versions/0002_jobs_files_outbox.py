"""Jobs with their events and heartbeats, uploaded files, and the search outbox.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(26), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("submitted_at", TIME, nullable=False),
        sa.Column("queued_at", TIME, nullable=True),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("completed_at", TIME, nullable=True),
        sa.Column("cancel_requested_at", TIME, nullable=True),
        sa.Column("not_before", TIME, nullable=True),
        sa.Column("dispatched_at", TIME, nullable=True),
        sa.Column("deadline_at", TIME, nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("eta_seconds", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("last_heartbeat_at", TIME, nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_expires_at", TIME, nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("outputs", JSON, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("error_details", JSON, nullable=True),
        sa.Column("cleaned_at", TIME, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_owner_id_id", "jobs", ["owner_id", "id"])
    op.create_index("ix_jobs_status_not_before", "jobs", ["status", "not_before"])
    op.create_index("ix_jobs_type_id", "jobs", ["type", "id"])

    for table in ("job_events", "job_heartbeats"):
        columns: list[sa.Column[Any]] = (
            [
                sa.Column("from_status", sa.String(16), nullable=True),
                sa.Column("to_status", sa.String(16), nullable=False),
                sa.Column("reason", sa.String(200), nullable=False),
                sa.Column("actor", sa.String(100), nullable=False),
                sa.Column("details", JSON, nullable=False),
            ]
            if table == "job_events"
            else [
                sa.Column("attempt", sa.Integer(), nullable=False),
                sa.Column("progress", sa.Float(), nullable=False),
                sa.Column("eta_seconds", sa.Float(), nullable=True),
                sa.Column("message", sa.Text(), nullable=True),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
            sa.Column("job_id", sa.String(26), nullable=False),
            sa.Column("at", TIME, nullable=False),
            *columns,
            sa.ForeignKeyConstraint(
                ["job_id"], ["jobs.id"], name=op.f(f"fk_{table}_job_id_jobs"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_job_id"), table, ["job_id"])

    op.create_table(
        "files",
        sa.Column("id", sa.String(26), nullable=False),
        sa.Column("owner_id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=True),
        sa.Column("blob_key", sa.String(500), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    op.create_index("ix_files_owner_id_id", "files", ["owner_id", "id"])

    op.create_table(
        "outbox",
        sa.Column("id", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(50), nullable=False),
        sa.Column("ref_id", sa.String(100), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_index("ix_files_owner_id_id", table_name="files")
    op.drop_table("files")
    for table in ("job_heartbeats", "job_events"):
        op.drop_index(op.f(f"ix_{table}_job_id"), table_name=table)
        op.drop_table(table)
    for index in ("ix_jobs_type_id", "ix_jobs_status_not_before", "ix_jobs_owner_id_id"):
        op.drop_index(index, table_name="jobs")
    op.drop_table("jobs")
