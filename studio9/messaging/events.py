"""Domain events for outside listeners (job state changes today; assets later).

Events are derived from the transactional outbox by the relay, so they are published
at least once and never for a change that was rolled back. Consumers de-duplicate on
``(subject_id, version)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import attrs


@attrs.frozen(kw_only=True)
class Event:
    """``topic`` is dotted and routable (``job.completed``); ``payload`` is JSON-able."""

    topic: str
    subject_id: str
    version: int
    at: datetime
    payload: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "subject_id": self.subject_id,
            "version": self.version,
            "at": self.at.isoformat(),
            "payload": dict(self.payload),
        }


class EventPublisher(Protocol):
    """Publishes events to whoever listens outside this process.

    Adapters: ``adapters/events/memory.py`` (memory://, in-process), ``adapters/events/amqp.py``
    (a RabbitMQ topic exchange), ``adapters/events/sns.py`` (an SNS topic).
    Contract: ``tests/contract/test_event_publisher.py``.
    """

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish, in order; raise BackendUnavailable when the destination refuses (the relay retries)."""

    async def ping(self) -> None:
        """Raise BackendUnavailable when the destination does not answer."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""
