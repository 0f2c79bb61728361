"""Events on a RabbitMQ topic exchange: bind a queue with ``job.#`` (or ``job.failed``) to listen.

URL:      amqp://user:pass@host:5672/vhost?exchange=studio9.events   (amqps:// for TLS)
Features: durable topic exchange · persistent messages · publisher confirms · routing key = topic
          · ``EventSubscriber``: an exclusive, auto-delete, server-named queue bound with
          ``<prefix>#`` per subscribed prefix, consumed on the event loop (aiormq) for as long as
          ``listening()`` lasts; reconnects with back-off after a dropped connection, and signals
          a gap (``on_gap``) each time it is bound again, since the queue and what reached the
          exchange meanwhile are gone
Extra:    cloud (pika publishes, aiormq consumes)

The consumer's connection is named ``studio9 <host> pid <pid> events`` in the management UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any, Final, Self

import aiormq
import aiormq.abc
import anyio.to_thread
import pika
import pika.exceptions
import structlog

from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable
from studio9.messaging.domain import Event, EventHandler, GapHandler
from studio9.messaging.events import Subscriptions
from studio9.urls import AdapterURL

log = structlog.get_logger()

#: Seconds before the first reconnect of the consumer; doubles up to ``_RETRY_MAX``.
_RETRY_FIRST: Final = 0.5
_RETRY_MAX: Final = 30.0
_CONSUMER_FAILURES: Final = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    OSError,
    TimeoutError,
)


class AmqpEventPublisher:
    def __init__(
        self, parameters: pika.URLParameters, *, exchange: str, consumer_url: str, timeout: float
    ) -> None:
        """``parameters``: pika's, for publishing; ``consumer_url``: aiormq's, for subscriptions."""
        self._parameters = parameters
        self.exchange = exchange
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None
        self._consumer_url = consumer_url
        self._timeout = timeout
        self._subscriptions = Subscriptions()
        self.connection_name = f"studio9 {socket.gethostname()} pid {os.getpid()} events"

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        base = url.secret().split("?", 1)[0]
        parameters = pika.URLParameters(base)
        parameters.socket_timeout = options.timeout
        parameters.blocked_connection_timeout = options.timeout
        parameters.connection_attempts = 1
        # A subscriber's connection is idle most of the time: heartbeats are what notice that
        # it died (as the job broker's do), so that it reconnects instead of waiting forever.
        heartbeat = int(min(60, max(10, 4 * options.timeout)))
        return cls(
            parameters,
            exchange=url.query.get("exchange", "studio9.events"),
            consumer_url=f"{base}?heartbeat={heartbeat}",
            timeout=options.timeout,
        )

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            await anyio.to_thread.run_sync(self._publish_blocking, list(events))

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._ensure_channel)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

    # -- EventSubscriber -----------------------------------------------------------------------

    def subscribe(self, handler: EventHandler, *, prefix: str = "", on_gap: GapHandler | None = None) -> None:
        """See ``EventSubscriber.subscribe``; ``prefix`` should end with a dot (``config.``)."""
        self._subscriptions.add(handler, prefix=prefix, on_gap=on_gap)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Consume on this event loop until exit (see ``EventSubscriber.listening``)."""
        if not self._subscriptions:
            yield
            return
        bound = asyncio.Event()
        task = asyncio.create_task(self._consume_forever(bound), name="amqp-event-subscription")
        task.add_done_callback(_log_crash)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(bound.wait(), self._timeout)
            if not bound.is_set():
                log.warning("event_subscription_pending", exchange=self.exchange, waited=self._timeout)
            yield
        finally:
            if not task.done():  # a crash was logged when it happened and does not stop the exit
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _consume_forever(self, bound: asyncio.Event) -> None:
        delay = _RETRY_FIRST
        while True:
            connection: aiormq.abc.AbstractConnection | None = None
            try:
                connection = await asyncio.wait_for(self._connect(), self._timeout)
                channel = await asyncio.wait_for(self._bind(connection), self._timeout)
                # After the queue is bound, not before: a read that follows this clear either
                # sees the change or is invalidated again by the change's event.
                self._subscriptions.gap()
                bound.set()
                delay = _RETRY_FIRST
                log.info("event_subscription_started", exchange=self.exchange)
                await _until_closed(connection, channel)
                log.warning("event_subscription_lost", exchange=self.exchange, retry_in=delay)
            except _CONSUMER_FAILURES as exc:
                log.warning(
                    "event_subscription_failed",
                    exchange=self.exchange,
                    error=type(exc).__name__,
                    retry_in=delay,
                )
            finally:
                if connection is not None:
                    await _close_quietly(connection, self._timeout)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)

    async def _connect(self) -> aiormq.abc.AbstractConnection:
        return await aiormq.connect(
            self._consumer_url, client_properties={"connection_name": self.connection_name}
        )

    async def _bind(self, connection: aiormq.abc.AbstractConnection) -> aiormq.abc.AbstractChannel:
        channel = await connection.channel()
        await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        # Server-named, exclusive, auto-delete: one queue per process that RabbitMQ removes when
        # the connection goes, so a crashed process leaves nothing behind.
        declared = await channel.queue_declare("", exclusive=True, auto_delete=True)
        queue = declared.queue if declared is not None else None  # None only with nowait
        if not queue:
            raise aiormq.exceptions.AMQPError("queue.declare named no queue")
        for key in sorted({_binding_key(prefix) for prefix in self._subscriptions.prefixes}):
            await channel.queue_bind(queue, self.exchange, routing_key=key)
        await channel.basic_consume(queue, self._on_message, no_ack=True)
        return channel

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        self._subscriptions.deliver_raw(message.body, source=f"amqp:{self.exchange}")

    # -- publishing (pika, on a thread) --------------------------------------------------------

    def _publish_blocking(self, events: list[Event]) -> None:
        with self._lock:
            for attempt in (1, 2):  # one reconnect: a dropped connection is not an outage
                try:
                    channel = self._channel_locked()
                    for event in events:
                        channel.basic_publish(
                            exchange=self.exchange,
                            routing_key=event.topic,
                            body=json.dumps(event.to_json_dict()).encode(),
                            properties=pika.BasicProperties(
                                content_type="application/json",
                                delivery_mode=2,
                                message_id=f"{event.subject_id}:{event.version}",
                            ),
                            mandatory=False,
                        )
                    return
                except (pika.exceptions.AMQPError, OSError) as exc:
                    self._reset_locked()
                    if attempt == 2:
                        raise BackendUnavailable(f"RabbitMQ refused events: {type(exc).__name__}") from exc

    def _ensure_channel(self) -> None:
        with self._lock:
            try:
                self._channel_locked()
            except (pika.exceptions.AMQPError, OSError) as exc:
                self._reset_locked()
                raise BackendUnavailable(f"RabbitMQ unreachable: {type(exc).__name__}") from exc

    def _channel_locked(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            self._reset_locked()
            self._connection = pika.BlockingConnection(self._parameters)
            self._channel = self._connection.channel()
            self._channel.exchange_declare(exchange=self.exchange, exchange_type="topic", durable=True)
            self._channel.confirm_delivery()
        return self._channel

    def _reset_locked(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()

    def _close(self) -> None:
        with self._lock:
            self._reset_locked()


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("event_subscription_crashed", task=task.get_name(), exc_info=exc)


def _binding_key(prefix: str) -> str:
    """The topic pattern for ``prefix``: ``config.`` → ``config.#``, ``""`` → ``#``.

    A prefix that does not end with a dot binds ``#``: the pattern cannot say "starts with"
    inside a word, and the subscriptions filter by prefix again on delivery anyway.
    """
    return prefix + "#" if prefix.endswith(".") else "#"


async def _until_closed(
    connection: aiormq.abc.AbstractConnection, channel: aiormq.abc.AbstractChannel
) -> None:
    """Return when the connection or the channel closes, whatever the reason."""
    watchers = [connection.closing, channel.closing]
    try:
        await asyncio.wait(watchers, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for watcher in watchers:
            if watcher.done() and not watcher.cancelled():
                watcher.exception()  # retrieved: the reason was logged by aiormq already
            else:
                watcher.cancel()


async def _close_quietly(connection: aiormq.abc.AbstractConnection, timeout: float) -> None:
    try:
        await asyncio.wait_for(connection.close(), timeout)
    except (*_CONSUMER_FAILURES, RuntimeError):  # already broken: nothing left to close
        pass
