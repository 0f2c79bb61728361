"""What the predictions context needs from storage: a prediction sink.

Adapters: ``adapters/prediction_sink/memory.py`` (memory://), ``adapters/prediction_sink/sqlite.py`` (sqlite://),
``adapters/prediction_sink/postgresql.py`` (postgresql://), ``adapters/prediction_sink/redshift.py`` (redshift://).
Contract: ``tests/contract/test_prediction_sink.py`` (Redshift: its own tests there, on moto).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from datetime import datetime
from typing import Protocol

from studio9.backends import Backend
from studio9.predictions.domain import (
    DailyCount,
    ImportMeta,
    LoadResult,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    ScoredRow,
)


class PredictionSink(Backend, Protocol):
    """**Protocol:** where predictions are stored, loaded a whole import at a time.

    Every adapter owns its table's DDL (the sink may be a database of its own) and creates
    it on first use; ``ensure_schema`` does it up front (``studio9 migrate``, start-up).
    Errors: a backend that fails or does not answer raises BackendUnavailable; bad filters
    or pages raise InvalidInput (from the domain objects, before any I/O).
    """

    async def ensure_schema(self) -> None:
        """Create the predictions table and its indexes if missing. Idempotent, concurrency-safe."""

    async def load(self, batches: AsyncIterable[PredictionBatch], meta: ImportMeta) -> LoadResult:
        """Store one import: every row of ``batches``, stamped with ``meta``.

        The rows are written as they arrive (memory bounded by about one batch, memory://
        excepted) inside ONE transaction that also deletes every earlier row of ``meta.key``
        (Redshift: staged in S3, then one transaction copies them in and deletes). So:

        - exactly one copy per import key: loading the same key again replaces the rows;
          concurrent loads of one key serialize and the last to commit wins, whole;
        - all or nothing: when ``batches`` raises (a malformed row, the job cancelled), the
          task is cancelled or the backend fails, the error propagates and the stored rows
          are those from before the call. Staging is cleaned up either way.

        Row ids are ``meta.prediction_id(source_row)``. ``batches`` is consumed once, in
        order, never concurrently with itself. Returns the rows stored and whether an earlier
        import of the key was replaced (``replaced``; Redshift, keeping no import records,
        can only tell when that import had rows).
        """

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        """Up to ``limit`` (1..MAX_PAGE) predictions matching ``filters``, in id order, after
        ``cursor`` (the ``next_cursor`` of the page before). Raises InvalidInput for a bad
        limit or cursor."""

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        """Predictions per (UTC day of ``created_at``, model) matching ``filters``, ordered by
        day then model; days and models without predictions are absent."""


class PredictionRecorder(Protocol):
    """**Protocol:** how other contexts store the rows their models scored, as one prediction
    set (import) each; ``studio9.predictions.service.PredictionService`` implements it."""

    async def record(
        self,
        rows: Sequence[ScoredRow],
        *,
        owner_id: str,
        model_id: str,
        model_version: str | None,
        set_key: str,
        source_job_id: str | None = None,
        created_at: datetime | None = None,
    ) -> LoadResult:
        """Store ``rows`` as one prediction set; recording the same ``set_key`` (for the same
        owner, model and job) again replaces that set whole, so a retried job stores its
        rows once."""
