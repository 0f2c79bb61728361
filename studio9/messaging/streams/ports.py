"""What message streams need: their runtime state and backlog in SQL, queue sources, job submission.

Adapters: ``adapters/stream_store/sql.py`` (SQLite, PostgreSQL), ``adapters/stream_store/memory.py``
(memory://); sources ``adapters/stream_source/{sqs,amqp}.py``. The settings themselves are
config settings (``studio9.config.ports.ConfigStore``).
Contract: ``tests/contract/test_stream_store.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs

from studio9.auth.domain import Principal
from studio9.jobs.domain import Job
from studio9.jobs.ports import JobQuery
from studio9.messaging.streams.domain import AddResult, Batch, Item, StreamState


class StreamStates(Protocol):
    """One row per stream: counters, the pause flag and the lease of the runner serving it."""

    async def ensure(self, stream_id: str, owner_id: str, at: datetime) -> None:
        """Create the stream's row unless it exists. Idempotent."""

    async def get(self, stream_id: str) -> StreamState | None:
        """The row, or None."""

    async def set_paused(self, stream_id: str, paused: bool, at: datetime) -> bool:
        """Set the flag; False when there is no such row."""

    async def set_owner(self, stream_id: str, owner_id: str, at: datetime) -> bool:
        """Record the stream's new owner (its user was deleted, the stream given to another);
        False when there is no such row."""

    async def lease(self, stream_id: str, owner: str, *, now: datetime, until: datetime) -> bool:
        """Take or renew the stream's lease for ``owner`` until ``until``: only when nobody
        holds it, ``owner`` does, or the holder's lease expired before ``now``. One write."""

    async def release(self, stream_id: str, owner: str) -> None:
        """Give the lease up if ``owner`` holds it. Idempotent."""

    async def delete(self, stream_id: str) -> None:
        """Remove the row with the stream's items and batches. Idempotent."""


class StreamBacklog(Protocol):
    """Items waiting for a batch, and batches waiting for (or holding) their job."""

    async def add(self, stream_id: str, items: Sequence[Item], at: datetime) -> AddResult:
        """Store the items whose key the stream has not seen, in one transaction with the
        ``received`` / ``duplicates`` counters. Raises StreamNotFound without a state row."""

    async def form(
        self, stream_id: str, *, limit: int, due_before: datetime, per_item: bool, at: datetime
    ) -> int:
        """Take the oldest ``limit`` pending items into new ``submitting`` batches (one per item
        when ``per_item``, else one) with fresh batch and job ids, and count them ``batched``;
        only when ``limit`` items are pending or the oldest arrived before ``due_before``.
        Returns how many batches were formed (0 when not due, or when another runner took
        the items first)."""

    async def open_batches(self, stream_id: str, *, limit: int) -> Sequence[Batch]:
        """``submitting`` batches, oldest first, with their items' payloads."""

    async def finish(self, stream_id: str, batch_id: str, *, error: str | None, at: datetime) -> bool:
        """Mark a ``submitting`` batch ``submitted`` (``error`` None) or ``failed``, counting it
        in the same transaction. False when it was not ``submitting`` (already finished)."""

    async def batches(self, stream_id: str, *, limit: int, before: str | None) -> Sequence[Batch]:
        """Batches newest first (without their items), older than the id ``before``."""


@attrs.frozen
class Delivery:
    """One message from a source: its items, and what the source needs to acknowledge it."""

    items: tuple[Item, ...]
    receipt: Any


class StreamSource(Protocol):
    """A queue the runner pulls items from. A message is acknowledged only after its items
    are stored; one that is not comes back (redelivery), and its items are dropped as duplicates."""

    async def receive(self, *, max_messages: int, wait_seconds: float) -> Sequence[Delivery]:
        """Up to ``max_messages`` messages, waiting at most about ``wait_seconds`` for the first.

        Raises BackendUnavailable when the queue does not answer."""

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Delete (SQS) or acknowledge (AMQP) the messages. Raises BackendUnavailable."""

    async def aclose(self) -> None:
        """Release connections; unacknowledged messages go back to the queue. Idempotent."""


#: Builds the source a URL names (no I/O). Raises ConfigError for a URL it cannot use.
SourceOpener = Callable[[str], StreamSource]


class JobSubmitter(Protocol):
    """The slice of the job service streams use (``studio9.jobs.service.JobService``)."""

    @property
    def registry(self) -> Iterable[Any]:
        """The job types (each has a ``name``)."""

    async def submit(
        self, actor: Principal, type_name: str, params: Mapping[str, Any], *, job_id: str | None = None
    ) -> Job:
        """Validate, store and dispatch a job with the given id. Raises InvalidInput."""

    async def get(self, actor: Principal, job_id: str) -> Job:
        """Raises JobNotFound."""

    async def list(self, actor: Principal, query: JobQuery) -> Sequence[Job]:
        """The jobs ``query`` selects among those ``actor`` may see."""
