"""What the messaging context needs from a broker adapter.

Adapters: ``adapters/job_broker/memory.py`` (memory://), ``adapters/job_broker/rabbitmq.py`` (amqp://),
``adapters/job_broker/sqs.py`` (sqs://); the Dramatiq code they share is
``adapters/job_broker/dramatiq_jobs.py``.

Sending and receiving are apart, so that the composition root builds the job core in one pass
(queue -> job service -> runtime) and only a process that runs jobs starts consuming.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, runtime_checkable

from studio9.jobs.ports import JobQueue
from studio9.messaging.domain import Event, EventHandler, GapHandler


class JobConsumer(Protocol):
    """Worker threads taking job ids off the broker. Both calls block: run them off the event loop."""

    def start(self) -> None:
        """Start consuming."""

    def stop(self, timeout: float) -> None:
        """Stop consuming; wait up to ``timeout`` seconds for deliveries in flight."""


class JobBroker(Protocol):
    """Delivers job ids from the job service to the job runtime (of this or another process)."""

    #: Whether separate processes can share it (memory:// cannot: it lives in one process).
    shared_between_processes: bool

    #: The queue job ids go to (a broker may prefix it with a namespace).
    job_queue_name: str

    def job_queue(self) -> JobQueue:
        """How the job service sends job ids through this broker (declares the job queue)."""

    def consume_jobs(
        self,
        run: Callable[[str], Coroutine[Any, Any, None]],
        loop: asyncio.AbstractEventLoop,
        *,
        threads: int,
    ) -> JobConsumer:
        """``threads`` worker threads, not started yet; each delivered job id runs ``run(job_id)``
        on ``loop`` and is acknowledged when that ends, whether it failed or not (the job table,
        not the broker, decides what happens next)."""

    async def ping(self) -> None:
        """Return when the broker answers; raise BackendUnavailable when it does not."""

    async def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each declared queue (approximate where the broker is); for ``/status``."""

    async def aclose(self) -> None:
        """Close connections. Idempotent."""


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
    """The optional other half of an events adapter: brings events published by every process
    sharing the destination (this one included) to handlers in this process, which is how one
    process's config write invalidates the config caches of the others.

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
