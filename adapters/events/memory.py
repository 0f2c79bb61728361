"""Events delivered to in-process subscribers (the edge default).

URL:      memory://
Features: synchronous fan-out to callbacks · nothing kept · single process
Extra:    none
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Self

import structlog

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.messaging.events import Event

log = structlog.get_logger()

Subscriber = Callable[[Event], None]


class InProcessEventBus:
    def __init__(self) -> None:
        self._subscribers: list[tuple[str, Subscriber]] = []
        self.published = 0

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    def subscribe(self, callback: Subscriber, *, prefix: str = "") -> None:
        """Call ``callback`` for every event whose topic starts with ``prefix``."""
        self._subscribers.append((prefix, callback))

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            self.published += 1
            for prefix, callback in self._subscribers:
                if event.topic.startswith(prefix):
                    try:
                        callback(event)
                    except Exception:  # one bad listener must not stop the others or the relay
                        log.exception("event_subscriber_failed", topic=event.topic)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subscribers.clear()
