"""RabbitMQ broker: Dramatiq (pika) consumes; job ids are published from the event loop (aiormq).

URL:      amqp://user:pass@host:5672/vhost?namespace=team-a   (amqps:// for TLS)
          ``namespace`` (optional) names the job queue ``<namespace>.jobs`` instead of ``jobs``,
          so that deployments can share a vhost. pika's own query parameters are accepted
          and win over the defaults below: ``heartbeat``, ``socket_timeout``,
          ``stack_timeout``, ``blocked_connection_timeout``, ``connection_attempts``,
          ``retry_delay``, ``client_properties``, ``ssl_options``, ... (the publisher takes
          the heartbeat; on amqps:// it verifies the server with the system's CA store).
Features: durable queues · publisher confirms, pipelined (``amqp_publisher``) · delays of any
          length (Dramatiq's ``.DQ`` queue) · dead-letter queue (Dramatiq's ``.XQ``)
          · reconnects on a dropped connection
Extra:    cloud (pika, aiormq)

Connection settings, derived from the backend timeout ``T`` (``STUDIO9_BACKEND_TIMEOUT``):

* ``socket_timeout = T``, ``stack_timeout = 2T`` (TCP + TLS + AMQP handshake),
  ``blocked_connection_timeout = T``: when RabbitMQ blocks publishers (memory or disk
  alarm), an enqueue gives up instead of hanging; Dramatiq retries it on a new connection
  and, after its sixth attempt, the job queue reports ``BackendUnavailable``.
* ``heartbeat = 4T`` clamped to 10-60 s (RabbitMQ suggests 5-20 s): a dead peer is noticed
  within about that long while a publish waits for its confirm. Consumer connections
  process I/O continuously, so they keep heartbeating during long jobs.
* The job publisher's one connection lives on the event loop, which answers heartbeats
  while idle. Dramatiq's own publisher connections (one per thread that calls ``send``:
  only the worker's re-enqueue of delayed messages here) do I/O only when they publish,
  so RabbitMQ drops one that idles past its heartbeat; the next publish fails visibly
  (confirms) and is retried on a new connection. pika logs the lost connection as an
  error when that happens; it is expected after idle periods.
* Connections are named ``studio9 <host> pid <pid>`` (``connection_name`` client
  property) so that operators see in the management UI who holds them.

Prefetch: Dramatiq's worker asks RabbitMQ for ``2 x worker threads`` unacknowledged
messages per queue. A ``jobs.run`` delivery holds its thread for the whole job, so the
second half would wait behind running jobs while idle workers elsewhere get nothing (and
the supervisor would re-send them as stuck). We ask for ``PREFETCH_PER_THREAD`` (1) per
worker thread instead, unless Dramatiq's ``dramatiq_queue_prefetch`` variable is set.

Limit: RabbitMQ closes a channel whose delivery stays unacknowledged longer than its
``consumer_timeout`` (30 min by default); the message is then redelivered and the
duplicate is ignored by the job runtime. Raise ``consumer_timeout`` in rabbitmq.conf above
the longest job to avoid the reconnect.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Any, Final, Self
from urllib.parse import parse_qsl, urlencode

import anyio.to_thread
import dramatiq
import dramatiq.worker
import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker as DramatiqRabbitmqBroker

from adapters.job_broker.amqp_publisher import AmqpJobQueue
from adapters.job_broker.dramatiq_jobs import ConsumesJobs
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL, redact

#: ``?namespace=`` prefixes the job queue (``<namespace>.jobs``): deployments sharing a vhost.
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_-]{1,60}")
#: Unacknowledged messages per worker thread (Dramatiq's own default is 2).
PREFETCH_PER_THREAD: Final = 1
_SETTING: Final = "STUDIO9_BROKER_URL"
# What pika.ConnectionParameters accepts; copied from the parsed URL parameters.
_PIKA_FIELDS: Final = (
    "host",
    "port",
    "virtual_host",
    "credentials",
    "channel_max",
    "frame_max",
    "heartbeat",
    "ssl_options",
    "connection_attempts",
    "retry_delay",
    "socket_timeout",
    "stack_timeout",
    "locale",
    "blocked_connection_timeout",
    "client_properties",
    "tcp_options",
)


class RabbitmqJobBroker(ConsumesJobs):
    """A Dramatiq ``RabbitmqBroker`` with confirms on, plus a ping and a close."""

    shared_between_processes = True

    def __init__(
        self,
        broker: DramatiqRabbitmqBroker,
        *,
        connection: dict[str, Any],
        publisher_url: str,
        timeout: float,
        namespace: str | None = None,
    ) -> None:
        """Wrap ``broker``; ``connection`` holds the pika connection parameters it uses,
        ``publisher_url`` the aiormq URL of the job publisher."""
        self.dramatiq_broker = broker
        self.job_queue_name = f"{namespace}.jobs" if namespace else "jobs"
        self._connection = connection
        self._publisher_url = publisher_url
        self._timeout = timeout
        self._publishers: list[AmqpJobQueue] = []
        self._closed = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the broker for ``url`` (no I/O: connections open on first use).

        Raises:
            ConfigError: pika rejects the URL or one of its parameters.
        """
        namespace = url.query.get("namespace")
        if namespace is not None and not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(f"{url}: namespace must match {_NAMESPACE.pattern}", setting=_SETTING)
        connection = _connection_parameters(url, options.timeout)
        broker = DramatiqRabbitmqBroker(confirm_delivery=True, **connection)
        broker.add_middleware(PrefetchPerThread())
        publisher_url = f"{url.secret().split('?', 1)[0]}?heartbeat={connection['heartbeat']}"
        return cls(
            broker,
            connection=connection,
            publisher_url=publisher_url,
            timeout=options.timeout,
            namespace=namespace,
        )

    def job_queue(self) -> AmqpJobQueue:
        """Publish from the event loop (``amqp_publisher``), not through Dramatiq's blocking send."""
        # Declared on the Dramatiq broker too (no I/O): ``queue_depths`` reports the declared queues.
        self.dramatiq_broker.declare_queue(self.job_queue_name)
        name = f"{self._connection['client_properties']['connection_name']} publisher"
        publisher = AmqpJobQueue(
            self._publisher_url, self.job_queue_name, timeout=self._timeout, connection_name=name
        )
        self._publishers.append(publisher)
        return publisher

    async def ping(self) -> None:
        """Open and close one connection; raise BackendUnavailable when that fails."""
        await anyio.to_thread.run_sync(self._ping_blocking, abandon_on_cancel=True)

    def _ping_blocking(self) -> None:
        timeout = self._connection["socket_timeout"]
        parameters = pika.ConnectionParameters(
            **{**self._connection, "connection_attempts": 1, "stack_timeout": timeout}
        )
        try:
            connection = pika.BlockingConnection(parameters)
        except (pika.exceptions.AMQPError, OSError) as exc:
            detail = redact(f"{type(exc).__name__} {exc}".strip())
            raise BackendUnavailable(f"RabbitMQ unreachable: {detail}") from exc
        connection.close()

    async def queue_depths(self) -> dict[str, int]:
        """Ready messages per declared queue (a passive declare per queue, on a short-lived connection)."""
        return await anyio.to_thread.run_sync(self._depths_blocking, abandon_on_cancel=True)

    def _depths_blocking(self) -> dict[str, int]:
        names = sorted(
            q for q in self.dramatiq_broker.get_declared_queues() if not q.endswith((".DQ", ".XQ"))
        )
        depths: dict[str, int] = {}
        try:
            connection = pika.BlockingConnection(pika.ConnectionParameters(**self._connection))
        except (pika.exceptions.AMQPError, OSError) as exc:
            raise BackendUnavailable(f"RabbitMQ unreachable: {type(exc).__name__}") from exc
        try:
            for name in names:
                channel = connection.channel()
                try:
                    depths[name] = channel.queue_declare(queue=name, passive=True).method.message_count
                except pika.exceptions.ChannelClosedByBroker:  # not declared on the server yet
                    depths[name] = 0
        finally:
            if connection.is_open:
                connection.close()
        return depths

    async def aclose(self) -> None:
        """Close every channel and connection the broker opened. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for publisher in self._publishers:
            await publisher.aclose()
        await anyio.to_thread.run_sync(self.dramatiq_broker.close)


class PrefetchPerThread(dramatiq.Middleware):
    """Make the worker prefetch ``PREFETCH_PER_THREAD`` messages per thread (see module doc)."""

    def before_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if not dramatiq.worker.QUEUE_PREFETCH:  # the operator's dramatiq_queue_prefetch wins
            worker.queue_prefetch = max(1, worker.worker_threads * PREFETCH_PER_THREAD)


def _connection_parameters(url: AdapterURL, timeout: float) -> dict[str, Any]:
    """pika connection parameters for ``url``, with our defaults where the URL sets none."""
    try:
        parsed = pika.URLParameters(_without(url.secret(), "namespace"))
    except ValueError as exc:
        raise ConfigError(f"{url}: {redact(str(exc))}", setting=_SETTING) from None
    given = set(url.query)
    defaults: dict[str, Any] = {
        "socket_timeout": timeout,
        "stack_timeout": 2 * timeout,
        "blocked_connection_timeout": timeout,
        "heartbeat": int(min(60, max(10, 4 * timeout))),
    }
    for name, value in defaults.items():
        if name not in given:
            setattr(parsed, name, value)
    name = f"studio9 {socket.gethostname()} pid {os.getpid()}"
    parsed.client_properties = {"connection_name": name, **(parsed.client_properties or {})}
    return {field: getattr(parsed, field) for field in _PIKA_FIELDS}


def _without(raw_url: str, name: str) -> str:
    """``raw_url`` without the query parameter ``name`` (one of ours, unknown to pika)."""
    head, _, query = raw_url.partition("?")
    kept = [(key, value) for key, value in parse_qsl(query) if key != name]
    return head + ("?" + urlencode(kept) if kept else "")
