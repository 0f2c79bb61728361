"""Events on a RabbitMQ topic exchange: bind a queue with ``job.#`` (or ``job.failed``) to listen.

URL:      amqp://user:pass@host:5672/vhost?exchange=studio9.events   (amqps:// for TLS)
Features: durable topic exchange · persistent messages · publisher confirms · routing key = topic
Extra:    cloud (pika)
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from typing import Any, Self

import anyio.to_thread
import pika
import pika.exceptions

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import BackendUnavailable
from studio9.messaging.events import Event


class AmqpEventPublisher:
    def __init__(self, parameters: pika.URLParameters, *, exchange: str) -> None:
        self._parameters = parameters
        self.exchange = exchange
        self._lock = threading.Lock()
        self._connection: Any = None
        self._channel: Any = None

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        base = url.secret().split("?", 1)[0]
        parameters = pika.URLParameters(base)
        parameters.socket_timeout = options.timeout
        parameters.blocked_connection_timeout = options.timeout
        parameters.connection_attempts = 1
        return cls(parameters, exchange=url.query.get("exchange", "studio9.events"))

    async def publish(self, events: Sequence[Event]) -> None:
        if events:
            await anyio.to_thread.run_sync(self._publish_blocking, list(events))

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._ensure_channel)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close)

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
