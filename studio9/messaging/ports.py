"""What the messaging context needs from a broker adapter.

Adapters: ``adapters/broker/memory.py`` (memory://), ``adapters/broker/rabbitmq.py`` (amqp://).
"""

from __future__ import annotations

from typing import Protocol

import dramatiq


class JobBroker(Protocol):
    """A Dramatiq broker plus what the composition root needs to know about it."""

    #: The Dramatiq broker that actors are declared on and workers consume from.
    dramatiq_broker: dramatiq.Broker
    #: Whether separate processes can share it (memory:// cannot: it lives in one process).
    shared_between_processes: bool

    async def ping(self) -> None:
        """Return when the broker answers; raise BackendUnavailable when it does not."""

    async def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each declared queue (approximate where the broker is); for ``/status``."""

    async def aclose(self) -> None:
        """Close connections. Idempotent."""
