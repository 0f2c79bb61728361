"""What the messaging context needs from a broker adapter.

Adapters: ``adapters/job_broker/memory.py`` (memory://), ``adapters/job_broker/rabbitmq.py`` (amqp://),
``adapters/job_broker/sqs.py`` (sqs://).
"""

from __future__ import annotations

from typing import Any, Protocol

import dramatiq

from studio9.jobs.ports import JobQueue


class JobBroker(Protocol):
    """A Dramatiq broker plus what the composition root needs to know about it."""

    #: The Dramatiq broker that actors are declared on and workers consume from.
    dramatiq_broker: dramatiq.Broker
    #: Whether separate processes can share it (memory:// cannot: it lives in one process).
    shared_between_processes: bool

    #: The Dramatiq queue ``jobs.run`` messages go to (a broker may prefix it with a namespace).
    job_queue_name: str

    def job_queue(self, actor: dramatiq.Actor[Any, Any]) -> JobQueue:
        """How the job service sends ``actor``'s messages (job ids) through this broker."""

    async def ping(self) -> None:
        """Return when the broker answers; raise BackendUnavailable when it does not."""

    async def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each declared queue (approximate where the broker is); for ``/status``."""

    async def aclose(self) -> None:
        """Close connections. Idempotent."""
