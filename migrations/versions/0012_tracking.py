"""Experiment tracking: runs with their params, metric histories and latest values, tags, dataset
inputs and model outputs; experiment tags; logged models with their tags and params. Experiments
are catalog assets of kind ``experiment``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-14
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
KEY = sa.String(250)
RUN_ID = sa.String(32)
MODEL_ID = sa.String(34)
# The per-run and per-model tables are clustered by their key on SQLite (see the ORM rows).
CLUSTERED = {"sqlite_with_rowid": False}


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    referred = target.partition(".")[0]
    return sa.ForeignKeyConstraint(
        [column], [target], name=op.f(f"fk_{table}_{column}_{referred}"), ondelete="CASCADE"
    )


def _key_value(table: str, owner: str, owner_type: sa.types.TypeEngine[str], target: str) -> None:
    """A table of (owner, key) -> value rows: params and tags."""
    op.create_table(
        table,
        sa.Column(owner, owner_type, nullable=False),
        sa.Column("key", KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        _fk(table, owner, target),
        sa.PrimaryKeyConstraint(owner, "key", name=op.f(f"pk_{table}")),
        **CLUSTERED,
    )


def upgrade() -> None:
    op.create_table(
        "tracking_runs",
        sa.Column("id", RUN_ID, nullable=False),
        sa.Column("experiment_id", sa.String(26), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("user_name", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_time", sa.BigInteger(), nullable=True),
        sa.Column("end_time", sa.BigInteger(), nullable=True),
        sa.Column("lifecycle_stage", sa.String(16), nullable=False),
        sa.Column("artifact_uri", sa.Text(), nullable=False),
        sa.Column("parent_run_id", RUN_ID, nullable=True),
        _fk("tracking_runs", "experiment_id", "assets.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_runs")),
    )
    op.create_index(
        "ix_tracking_runs_experiment_id",
        "tracking_runs",
        ["experiment_id", "lifecycle_stage", "start_time", "id"],
    )
    _key_value("tracking_params", "run_id", RUN_ID, "tracking_runs.id")
    _key_value("tracking_tags", "run_id", RUN_ID, "tracking_runs.id")
    history_key = ("run_id", "key", "step", "timestamp", "is_nan", "value")  # a point's identity
    for table, key in (("tracking_metrics", history_key), ("tracking_latest_metrics", ("run_id", "key"))):
        op.create_table(
            table,
            sa.Column("run_id", RUN_ID, nullable=False),
            sa.Column("key", KEY, nullable=False),
            sa.Column("step", sa.BigInteger(), nullable=False),
            sa.Column("timestamp", sa.BigInteger(), nullable=False),
            sa.Column("is_nan", sa.Boolean(), nullable=False),
            sa.Column("value", sa.Double(), nullable=False),
            sa.Column("model_id", MODEL_ID, nullable=True),
            _fk(table, "run_id", "tracking_runs.id"),
            sa.PrimaryKeyConstraint(*key, name=op.f(f"pk_{table}")),
            **CLUSTERED,
        )
    op.create_table(
        "tracking_inputs",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("digest", sa.String(36), nullable=False),
        sa.Column("source_type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=True),
        sa.Column("profile", sa.Text(), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("context", sa.Text(), nullable=True),
        _fk("tracking_inputs", "run_id", "tracking_runs.id"),
        sa.PrimaryKeyConstraint("run_id", "name", "digest", name=op.f("pk_tracking_inputs")),
        **CLUSTERED,
    )
    op.create_table(
        "tracking_outputs",
        sa.Column("run_id", RUN_ID, nullable=False),
        sa.Column("model_id", MODEL_ID, nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        _fk("tracking_outputs", "run_id", "tracking_runs.id"),
        sa.PrimaryKeyConstraint("run_id", "model_id", "step", name=op.f("pk_tracking_outputs")),
        **CLUSTERED,
    )
    _key_value("tracking_experiment_tags", "experiment_id", sa.String(26), "assets.id")
    op.create_table(
        "tracking_logged_models",
        sa.Column("id", MODEL_ID, nullable=False),
        sa.Column("experiment_id", sa.String(26), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("artifact_location", sa.Text(), nullable=False),
        sa.Column("creation_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("last_updated_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("source_run_id", RUN_ID, nullable=True),
        sa.Column("model_type", sa.Text(), nullable=False),
        _fk("tracking_logged_models", "experiment_id", "assets.id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_logged_models")),
    )
    op.create_index(
        "ix_tracking_logged_models_experiment_id",
        "tracking_logged_models",
        ["experiment_id", "creation_timestamp", "id"],
    )
    _key_value("tracking_logged_model_tags", "model_id", MODEL_ID, "tracking_logged_models.id")
    _key_value("tracking_logged_model_params", "model_id", MODEL_ID, "tracking_logged_models.id")


def downgrade() -> None:
    op.drop_table("tracking_logged_model_params")
    op.drop_table("tracking_logged_model_tags")
    op.drop_index("ix_tracking_logged_models_experiment_id", table_name="tracking_logged_models")
    op.drop_table("tracking_logged_models")
    op.drop_table("tracking_experiment_tags")
    op.drop_table("tracking_outputs")
    op.drop_table("tracking_inputs")
    op.drop_table("tracking_latest_metrics")
    op.drop_table("tracking_metrics")
    op.drop_table("tracking_tags")
    op.drop_table("tracking_params")
    op.drop_index("ix_tracking_runs_experiment_id", table_name="tracking_runs")
    op.drop_table("tracking_runs")
