"""Job ids to RabbitMQ from the event loop: one connection, publisher confirms in flight together.

Dramatiq's own ``send`` is blocking pika: every enqueue from the event loop needs a hop to a
thread, and each publishing thread waits for its own confirm before it can publish again.
Measured on the 2-core box, that hop was more than a third of an API process's CPU per job.
This publisher writes from the event loop on one aiormq channel in confirm mode: concurrent
enqueues are pipelined, each awaiting its own confirm.

The consuming side stays Dramatiq's. The messages are the ones Dramatiq itself would send:
its JSON encoding of the ``jobs.run`` message (``dramatiq_jobs.job_message``), persistent,
``mandatory``, to the same durable queues declared with the same arguments (``<queue>``,
``<queue>.DQ`` for delayed messages with an ``eta`` option, ``<queue>.XQ`` for dead
letters), so a worker cannot tell them apart.

Failures: a dropped connection or channel, a refused or unroutable publish, or no answer
within the backend timeout, closes the connection; the publish is retried on a new one,
``ATTEMPTS`` times in all, then reported as ``BackendUnavailable`` (the job stays queued
in SQL and the supervisor re-sends it).
"""

from __future__ import annotations

import asyncio
from typing import Final

import aiormq
import aiormq.abc
import structlog
from dramatiq.brokers.rabbitmq import DEAD_MESSAGE_TTL
from dramatiq.common import current_millis, dq_name, xq_name
from pamqp.commands import Basic
from pamqp.common import FieldTable

from adapters.job_broker.dramatiq_jobs import job_message
from studio9.errors import BackendUnavailable

log = structlog.get_logger()

#: Publishes of one message, each on a fresh connection after the first fails.
ATTEMPTS: Final = 3
_PERSISTENT: Final = Basic.Properties(delivery_mode=2)
_FAILURES: Final = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    OSError,
    TimeoutError,
)


class AmqpJobQueue:
    """``JobQueue`` for ``queue_name``: ``jobs.run`` messages through aiormq on the running event loop."""

    def __init__(self, url: str, queue_name: str, *, timeout: float, connection_name: str) -> None:
        """``url``: ``amqp(s)://user:password@host:port/vhost`` with nothing else (aiormq's own
        query parameters aside); ``timeout``: seconds to connect, and to wait for a confirm;
        ``connection_name``: what the management UI shows for the connection."""
        self._url = url
        self._connection_name = connection_name
        self._queue_name = queue_name
        self._timeout = timeout
        self._connection: aiormq.abc.AbstractConnection | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._opening = asyncio.Lock()

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        message = job_message(self._queue_name, job_id)
        queue = message.queue_name
        routing_key = queue
        if delay := int(delay_seconds * 1000):
            routing_key = dq_name(queue)
            message = message.copy(queue_name=routing_key, options={"eta": current_millis() + delay})
        body = message.encode()
        error: BaseException | None = None
        for _ in range(ATTEMPTS):
            channel = None
            try:
                channel = await self._ready_channel(queue)
                await channel.basic_publish(
                    body,
                    routing_key=routing_key,
                    properties=_PERSISTENT,
                    mandatory=True,
                    timeout=self._timeout,
                )
                return
            except _FAILURES as exc:
                error = exc
                await self._discard(channel)
        raise BackendUnavailable(f"RabbitMQ refused job {job_id}: {type(error).__name__}") from error

    async def aclose(self) -> None:
        """Close the connection, if open. Idempotent."""
        await self._discard(self._channel)

    async def _ready_channel(self, queue: str) -> aiormq.abc.AbstractChannel:
        channel = self._channel
        if channel is not None and not channel.is_closed:
            return channel
        async with self._opening:  # concurrent enqueues wait for one connection
            if self._channel is None or self._channel.is_closed:
                await self._discard(self._channel)
                self._channel = await asyncio.wait_for(self._open(queue), self._timeout)
            return self._channel

    async def _open(self, queue: str) -> aiormq.abc.AbstractChannel:
        properties: FieldTable = {"connection_name": self._connection_name}
        connection = await aiormq.connect(self._url, client_properties=properties)
        self._connection = connection
        channel = await connection.channel(publisher_confirms=True)
        # Exactly Dramatiq's declarations (a different argument would be refused by RabbitMQ).
        dead_letters: FieldTable = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": xq_name(queue)}
        expiring: FieldTable = {"x-message-ttl": DEAD_MESSAGE_TTL}
        await channel.queue_declare(queue, durable=True, arguments=dead_letters)
        await channel.queue_declare(dq_name(queue), durable=True, arguments=dead_letters)
        await channel.queue_declare(xq_name(queue), durable=True, arguments=expiring)
        log.debug("amqp_publisher_connected", queue=queue)
        return channel

    async def _discard(self, channel: aiormq.abc.AbstractChannel | None) -> None:
        """Forget the connection ``channel`` belongs to (unless a newer one replaced it)."""
        if channel is not None and channel is not self._channel:
            return
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), self._timeout)
            except (*_FAILURES, RuntimeError):  # already broken: nothing left to close
                pass
