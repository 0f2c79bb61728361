"""The fan-out every events adapter shares: a subscriber's handlers, and delivery to them.

The ports are in ``studio9.messaging.ports`` (``EventPublisher``, ``EventSubscriber``), the event
in ``studio9.messaging.domain``; ``Subscriptions`` is what each adapter's ``subscribe`` fills and
its consumer delivers through.
"""

from __future__ import annotations

import attrs
import structlog

from studio9.messaging.domain import Event, EventHandler, GapHandler

log = structlog.get_logger()


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
