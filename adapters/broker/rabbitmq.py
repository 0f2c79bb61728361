"""RabbitMQ broker through Dramatiq (pika), with publisher confirms.

URL:      amqp://user:pass@host:5672/vhost   (amqps:// for TLS)
Features: durable queues · publisher confirms · dead-letter queue (Dramatiq's ``.XQ``)
Extra:    cloud (pika)
"""

from __future__ import annotations

from typing import Self

import anyio.to_thread
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker as DramatiqRabbitmqBroker

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import BackendUnavailable


class RabbitmqBroker:
    shared_between_processes = True

    def __init__(self, broker: DramatiqRabbitmqBroker, *, parameters: pika.URLParameters) -> None:
        self.dramatiq_broker = broker
        self._parameters = parameters

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        parameters = pika.URLParameters(url.secret())
        parameters.socket_timeout = options.timeout
        parameters.blocked_connection_timeout = options.timeout
        parameters.connection_attempts = 1
        broker = DramatiqRabbitmqBroker(url=url.secret(), confirm_delivery=True)
        return cls(broker, parameters=parameters)

    async def ping(self) -> None:
        await anyio.to_thread.run_sync(self._ping_blocking)

    def _ping_blocking(self) -> None:
        try:
            connection = pika.BlockingConnection(self._parameters)
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BackendUnavailable(f"RabbitMQ unreachable: {type(exc).__name__} {exc}".strip()) from exc
        connection.close()

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.dramatiq_broker.close)
