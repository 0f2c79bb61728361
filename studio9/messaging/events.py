"""Domain events for outside listeners (job state changes, config changes), and subscriptions.

Job events are derived from the transactional outbox by the relay, so they are published
at least once and never for a change that was rolled back; config events are published
right after their write. Consumers de-duplicate on ``(subject_id, version)``.

``EventSubscriber`` is the optional other half of an events adapter: it brings events
published by every process (this one included) to handlers in this process, which is how
one process's config write invalidates the config caches of the others.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import attrs
import structlog

log = structlog.get_logger()


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

    @classmethod
    def from_json(cls, body: str | bytes) -> Event:
        """The event ``to_json_dict`` wrote. Raises ValueError for anything else."""
        try:
            data = json.loads(body)
            payload = data.get("payload") or {}
            if not isinstance(payload, dict):
                raise TypeError("payload is not an object")
            return cls(
                topic=str(data["topic"]),
                subject_id=str(data["subject_id"]),
                version=int(data["version"]),
                at=datetime.fromisoformat(data["at"]),
                payload=payload,
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"not an event: {type(exc).__name__} {exc}") from exc


EventHandler = Callable[[Event], None]
GapHandler = Callable[[], None]


class EventPublisher(Protocol):
    """Publishes events to whoever listens outside this process.

    Adapters: ``adapters/event_publisher/``: ``memory.py`` (memory://, in-process), ``amqp.py``
    (a RabbitMQ topic exchange), ``sns.py`` (an SNS topic).
    Contract: ``tests/contract/test_event_publisher.py``.
    """

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish, in order; raise BackendUnavailable when the destination refuses (the relay retries)."""

    async def ping(self) -> None:
        """Raise BackendUnavailable when the destination does not answer."""

    async def aclose(self) -> None:
        """Release connections. Idempotent."""


@runtime_checkable
class EventSubscriber(Protocol):
    """Brings events published by every process sharing the destination (this one included)
    to handlers in this process.

    Adapters: all three events adapters. memory:// delivers synchronously inside ``publish``
    (one process, nothing to listen to); amqp:// consumes an exclusive, server-named queue
    bound to the topic exchange; sns:// long-polls an SQS queue of this process's own,
    subscribed to the topic. Contract: ``tests/contract/test_event_subscriptions.py``.

    Delivery is at most once and may lag: handlers must tolerate duplicates, and anything
    that must not stay stale forever needs a safety net of its own (the config cache's
    lifetime). ``on_gap`` tells a handler when events may have been missed.
    """

    def subscribe(self, handler: EventHandler, *, prefix: str = "", on_gap: GapHandler | None = None) -> None:
        """Call ``handler`` on the event loop for every event whose topic starts with ``prefix``
        (whole dotted words: ``config.``), and ``on_gap`` each time delivery (re)starts, since
        events published while it was not running are lost. Register before ``listening``."""

    def listening(self) -> AbstractAsyncContextManager[None]:
        """Deliver to the registered handlers until the block exits, then release the queue.

        Entering waits up to the backend timeout for the subscription to be in place; when it
        is not, it logs and keeps trying in the background rather than raising (subscribers are
        an optimisation over their own safety net, not a reason for a process not to start).
        """


@attrs.define
class Subscriptions:
    """The handlers of one subscriber, and the fan-out every adapter shares."""

    _entries: list[tuple[str, EventHandler, GapHandler | None]] = attrs.field(factory=list, init=False)

    def add(self, handler: EventHandler, *, prefix: str, on_gap: GapHandler | None) -> None:
        self._entries.append((prefix, handler, on_gap))

    def clear(self) -> None:
        self._entries.clear()

    def __bool__(self) -> bool:
        return bool(self._entries)

    @property
    def prefixes(self) -> frozenset[str]:
        return frozenset(prefix for prefix, _, _ in self._entries)

    def deliver(self, event: Event) -> None:
        for prefix, handler, _ in self._entries:
            if event.topic.startswith(prefix):
                try:
                    handler(event)
                except Exception:  # one bad handler must not stop the others, nor the consumer
                    log.exception("event_subscriber_failed", topic=event.topic)

    def deliver_raw(self, body: str | bytes, *, source: str) -> None:
        """Deliver a message body; one that is not an event is logged and dropped."""
        try:
            event = Event.from_json(body)
        except ValueError as exc:
            log.warning("event_malformed", source=source, error=str(exc))
            return
        self.deliver(event)

    def gap(self) -> None:
        for _, _, on_gap in self._entries:
            if on_gap is not None:
                try:
                    on_gap()
                except Exception:  # as in deliver: the others still need to hear it
                    log.exception("event_gap_handler_failed")
