"""Stream source: a RabbitMQ queue (any JSON message, or S3 event notifications forwarded to it).

URL:      amqp://user:pass@host:5672/vhost?queue=uploads&declare=false   (amqps:// for TLS)
Features: basic.get with manual acknowledgement · a message is acked only after its items
          are stored · unacknowledged messages go back to the queue when the connection closes
          · ``declare=true`` creates the queue (durable), otherwise it must exist
Extra:    cloud (pika)

pika's connections belong to one thread, so every call runs on a thread of this source's own.
The URL's password is in the stream's settings, which every user can read through the config
API: give streams a RabbitMQ user that may only read their queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Self, TypeVar

import pika
import pika.exceptions

from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.streams.notifications import items_from_message
from studio9.messaging.streams.ports import Delivery
from studio9.urls import AdapterURL

_SETTING: Final = "source"
_OPTIONS: Final = frozenset({"queue", "declare"})
_POLL: Final = 0.1  # seconds between basic.get calls while the queue is empty
_T = TypeVar("_T")


class AmqpStreamSource:
    def __init__(self, parameters: pika.URLParameters, *, queue: str, declare: bool) -> None:
        self.queue = queue
        self._parameters, self._declare = parameters, declare
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio9-amqp-source")
        self._connection: Any = None
        self._channel: Any = None
        # Delivery tags belong to a channel: acks for an older channel are skipped (those
        # messages went back to the queue when it closed, and come again).
        self._generation = 0

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """``amqp://user:pass@host/vhost?queue=name``. Raises ConfigError."""
        if unknown := sorted(set(url.query) - _OPTIONS):
            raise ConfigError(
                f"{url}: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}", setting=_SETTING
            )
        queue = url.query.get("queue", "")
        if not 1 <= len(queue) <= 255 or not url.host:
            raise ConfigError(f"{url}: write amqp://user:pass@host:5672/vhost?queue=name", setting=_SETTING)
        declare = url.query.get("declare", "false").lower()
        if declare not in {"true", "false"}:
            raise ConfigError(f"{url}: declare must be true or false", setting=_SETTING)
        try:
            parameters = pika.URLParameters(url.secret().split("?", 1)[0])
        except (TypeError, ValueError):  # a user without a password, a port out of range; the
            # message of pika's error may hold the password, so it is not passed on
            raise ConfigError(
                f"{url}: write amqp://user:pass@host:5672/vhost?queue=name", setting=_SETTING
            ) from None
        parameters.socket_timeout = options.timeout
        parameters.blocked_connection_timeout = options.timeout
        parameters.connection_attempts = 1
        return cls(parameters, queue=queue, declare=declare == "true")

    async def receive(self, *, max_messages: int, wait_seconds: float) -> Sequence[Delivery]:
        return await self._call(self._receive_blocking, max(1, max_messages), wait_seconds)

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        await self._call(self._ack_blocking, list(deliveries))

    async def aclose(self) -> None:
        with contextlib.suppress(RuntimeError):  # already shut down
            await self._call(self._reset)
        self._executor.shutdown(wait=False)

    async def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _receive_blocking(self, max_messages: int, wait_seconds: float) -> list[Delivery]:
        deadline = time.monotonic() + wait_seconds
        found: list[Delivery] = []
        try:
            channel = self._ensure_channel()
            while len(found) < max_messages:
                method, _, body = channel.basic_get(self.queue, auto_ack=False)
                if method is None:
                    if found or time.monotonic() >= deadline:
                        break
                    time.sleep(_POLL)
                    continue
                receipt = (self._generation, method.delivery_tag)
                found.append(Delivery(tuple(items_from_message(body)), receipt))
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._reset()
            raise BackendUnavailable(f"RabbitMQ queue {self.queue!r}: {type(exc).__name__}") from exc
        return found

    def _ack_blocking(self, deliveries: list[Delivery]) -> None:
        try:
            channel = self._ensure_channel()
            for delivery in deliveries:
                generation, tag = delivery.receipt
                if generation == self._generation:
                    channel.basic_ack(delivery_tag=tag)
        except (pika.exceptions.AMQPError, OSError) as exc:
            self._reset()
            raise BackendUnavailable(f"RabbitMQ queue {self.queue!r}: {type(exc).__name__}") from exc

    def _ensure_channel(self) -> Any:
        if self._channel is None or not self._channel.is_open:
            self._reset()
            self._connection = pika.BlockingConnection(self._parameters)
            self._channel = self._connection.channel()
            self._generation += 1
            self._channel.queue_declare(queue=self.queue, durable=True, passive=not self._declare)
        return self._channel

    def _reset(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                connection.close()
