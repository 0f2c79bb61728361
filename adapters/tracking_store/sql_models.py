"""ORM rows of experiment tracking: runs and their params, metrics, tags, inputs and outputs;
experiment tags; logged models with their tags and params.

An experiment is a catalog asset: ``tracking_runs``, ``tracking_experiment_tags`` and
``tracking_logged_models`` name it with a cascading foreign key to ``assets``, and a run's rows
cascade from the run (an asset's delete takes everything of the experiment).

Metric values are doubles with an ``is_nan`` flag, NaN stored as 0.0 with the flag set: SQLite
stores a NaN double as NULL, and PostgreSQL holds NaN equal to itself and above every number,
where the search language wants IEEE comparisons. ±inf are stored as they are (both databases keep
them). A metric point's identity (MLflow de-duplicates points) is its primary key.

``tracking_runs`` is indexed by (experiment, lifecycle stage, start time, id), the search's scan
in its default order; the per-run tables are keyed (run, key), so a filter's or an order's lookup
of one key of one run is a primary-key probe, and the latest metrics are also indexed by (key, NaN
flag, value) for a search ordered by a metric.
"""

from __future__ import annotations

from typing import Any, Final, cast

import sqlalchemy as sa
from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import Base, JsonDocument

_KEY = String(250)
_RUN_ID = String(32)
_MODEL_ID = String(34)
#: SQLite keeps these tables in their primary key's order (WITHOUT ROWID): a run's rows are
#: adjacent, so a page's load is a few range scans, and a (run, key) probe one B-tree descent.
_CLUSTERED: Final[dict[str, Any]] = {"sqlite_with_rowid": False}


def _run_fk() -> Any:
    return ForeignKey("tracking_runs.id", ondelete="CASCADE")


def _asset_fk() -> Any:
    return ForeignKey("assets.id", ondelete="CASCADE")


class TrackingRunRow(Base):
    __tablename__ = "tracking_runs"
    __table_args__ = (
        # In the search's default order, so a page is read off the index. The migrations make the
        # schema: this is PostgreSQL's index (0013); SQLite's (0012) is ascending, as SQLite cannot
        # say NULLS LAST, but its NULLs are the smallest values: its backward scan gives the start
        # times in this order (and SQLite sorts the runs of one start time by id as it goes).
        Index(
            "ix_tracking_runs_experiment_id",
            "experiment_id",
            "lifecycle_stage",
            sa.desc(sa.column("start_time")).nulls_last(),
            "id",
        ),
    )

    id: Mapped[str] = mapped_column(_RUN_ID, primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(26), _asset_fk())
    name: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str] = mapped_column(String(64))
    user_name: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    start_time: Mapped[int | None] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    lifecycle_stage: Mapped[str] = mapped_column(String(16))
    artifact_uri: Mapped[str] = mapped_column(Text)
    parent_run_id: Mapped[str | None] = mapped_column(_RUN_ID)


class TrackingParamRow(Base):
    __tablename__ = "tracking_params"
    __table_args__ = _CLUSTERED

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrackingTagRow(Base):
    __tablename__ = "tracking_tags"
    __table_args__ = _CLUSTERED

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrackingMetricRow(Base):
    """One point of a metric's history; the key orders a history by step, timestamp and value."""

    __tablename__ = "tracking_metrics"
    __table_args__ = _CLUSTERED

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    timestamp: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    is_nan: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    value: Mapped[float] = mapped_column(Double, primary_key=True)
    model_id: Mapped[str | None] = mapped_column(_MODEL_ID)


class TrackingLatestMetricRow(Base):
    """Each run's latest point per metric key (``Metric.recency``): what searches compare. Also
    indexed by (key, NaN flag, value): a search ordered by a metric reads that key's values in
    order and stops after a page (``sql_search.by_metric``)."""

    __tablename__ = "tracking_latest_metrics"
    __table_args__ = (
        Index("ix_tracking_latest_metrics_order", "key", "is_nan", "value", "run_id"),
        _CLUSTERED,
    )

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)
    is_nan: Mapped[bool] = mapped_column(Boolean)
    value: Mapped[float] = mapped_column(Double)
    model_id: Mapped[str | None] = mapped_column(_MODEL_ID)


class TrackingInputRow(Base):
    """A dataset a run used; ``context`` repeats the ``mlflow.data.context`` tag for searches."""

    __tablename__ = "tracking_inputs"
    __table_args__ = _CLUSTERED

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    name: Mapped[str] = mapped_column(String(500), primary_key=True)
    digest: Mapped[str] = mapped_column(String(36), primary_key=True)
    source_type: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    context: Mapped[str | None] = mapped_column(Text)


class TrackingOutputRow(Base):
    __tablename__ = "tracking_outputs"
    __table_args__ = _CLUSTERED

    run_id: Mapped[str] = mapped_column(_RUN_ID, _run_fk(), primary_key=True)
    model_id: Mapped[str] = mapped_column(_MODEL_ID, primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class TrackingExperimentTagRow(Base):
    __tablename__ = "tracking_experiment_tags"
    __table_args__ = _CLUSTERED

    experiment_id: Mapped[str] = mapped_column(String(26), _asset_fk(), primary_key=True)
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrackingLoggedModelRow(Base):
    __tablename__ = "tracking_logged_models"
    __table_args__ = (
        Index("ix_tracking_logged_models_experiment_id", "experiment_id", "creation_timestamp", "id"),
    )

    id: Mapped[str] = mapped_column(_MODEL_ID, primary_key=True)
    experiment_id: Mapped[str] = mapped_column(String(26), _asset_fk())
    name: Mapped[str] = mapped_column(String(500))
    artifact_location: Mapped[str] = mapped_column(Text)
    creation_timestamp: Mapped[int] = mapped_column(BigInteger)
    last_updated_timestamp: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(32))
    source_run_id: Mapped[str | None] = mapped_column(_RUN_ID)
    model_type: Mapped[str] = mapped_column(Text)


class TrackingLoggedModelTagRow(Base):
    __tablename__ = "tracking_logged_model_tags"
    __table_args__ = _CLUSTERED

    model_id: Mapped[str] = mapped_column(
        _MODEL_ID, ForeignKey("tracking_logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TrackingLoggedModelParamRow(Base):
    __tablename__ = "tracking_logged_model_params"
    __table_args__ = _CLUSTERED

    model_id: Mapped[str] = mapped_column(
        _MODEL_ID, ForeignKey("tracking_logged_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(_KEY, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# The tables, for the adapter's Core statements (faster than ORM rows for a page of runs).
RUNS: Final = cast(sa.Table, TrackingRunRow.__table__)
PARAMS: Final = cast(sa.Table, TrackingParamRow.__table__)
TAGS: Final = cast(sa.Table, TrackingTagRow.__table__)
METRICS: Final = cast(sa.Table, TrackingMetricRow.__table__)
LATEST: Final = cast(sa.Table, TrackingLatestMetricRow.__table__)
INPUTS: Final = cast(sa.Table, TrackingInputRow.__table__)
OUTPUTS: Final = cast(sa.Table, TrackingOutputRow.__table__)
EXPERIMENT_TAGS: Final = cast(sa.Table, TrackingExperimentTagRow.__table__)
MODELS: Final = cast(sa.Table, TrackingLoggedModelRow.__table__)
MODEL_TAGS: Final = cast(sa.Table, TrackingLoggedModelTagRow.__table__)
MODEL_PARAMS: Final = cast(sa.Table, TrackingLoggedModelParamRow.__table__)
