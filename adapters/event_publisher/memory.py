"""Events delivered to in-process subscribers (the edge default).

URL:      memory://
Features: synchronous fan-out to callbacks · nothing kept · single process · ``EventSubscriber``
          (delivery needs no listening: ``listening()`` is a no-op, and nothing is ever missed)
Extra:    none
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Self

from studio9.backends import AdapterOptions
from studio9.messaging.domain import Event, EventHandler, GapHandler
from studio9.messaging.events import Subscriptions
from studio9.urls import AdapterURL


class MemoryEventPublisher:
    def __init__(self) -> None:
        self._subscriptions = Subscriptions()
        self.published = 0

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    def subscribe(self, handler: EventHandler, *, prefix: str = "", on_gap: GapHandler | None = None) -> None:
        """Call ``handler`` for every event whose topic starts with ``prefix`` (from now on:
        publishing calls it, so ``on_gap`` is never needed)."""
        self._subscriptions.add(handler, prefix=prefix, on_gap=on_gap)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        yield  # publish() delivers in this process already; there is no queue to read

    async def publish(self, events: Sequence[Event]) -> None:
        for event in events:
            self.published += 1
            self._subscriptions.deliver(event)

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subscriptions.clear()
