"""Amazon SQS broker through dramatiq_sqs (sync boto3).

URL:      sqs://?region=eu-west-1&namespace=studio9&dead_letter=true&visibility_timeout=60&wait_time_seconds=5
          add ``&endpoint_url=http://127.0.0.1:4566`` for LocalStack, ElasticMQ or moto.
          That is the only form: no host, no path, no credentials in the URL (boto3's chain
          supplies them: ``AWS_ACCESS_KEY_ID``..., a profile, an instance or task role).
Features: one SQS queue per Dramatiq queue, ``<namespace>_<queue>`` (``studio9_jobs``),
          created on first use · dead-letter queue ``<namespace>_<queue>_dlq`` · at-least-once
          delivery · delays up to 15 min (longer ones are clamped, below) · no priorities
Extra:    cloud (dramatiq-sqs, boto3)

Parameters (all optional; unknown ones are refused, to catch typos):

* ``region``: defaults to boto3's (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile).
* ``namespace``: queue-name prefix, ``[A-Za-z0-9_-]{1,60}``; default ``studio9``.
  dramatiq_sqs joins it to the queue name with ``_``.
* ``dead_letter``: ``true`` (default) / ``false``; failed messages are copied to ``_dlq``.
* ``visibility_timeout``: seconds a received message stays hidden before SQS hands it out
  again (0-43200, default 60). It is not a job time limit: a ``jobs.run`` delivery holds
  its message for the whole job, so a job longer than this is delivered a second time
  and that duplicate is dropped by the job runtime (the job is no longer ``QUEUED``).
  Short values bring messages of a dead worker back quickly; the supervisor re-sends
  lost jobs anyway, since the jobs table, not the queue, is the truth.
* ``wait_time_seconds``: long-poll wait of each receive (0-20, default 5). Dramatiq
  would poll with its worker timeout (100 ms here, i.e. short polling, one request per
  second per idle queue); long polling costs one request per wait and returns as soon
  as a message arrives. A worker takes up to this long to stop.

Limits:

* Delay: SQS delays a message by at most 15 min (``DelaySeconds`` 900) and whole
  seconds; dramatiq_sqs refuses longer delays with ``MessageDelayTooLong``. Long
  back-offs must not fail an enqueue, so delays are rounded *up* to whole seconds and
  clamped to 900 s. The message then arrives early: the job runtime sees that the job's
  ``not_before`` has not come and ignores it, and the supervisor, which re-sends queued
  jobs every ``redeliver_after``, delivers it again once it is due.
* Size: messages are base64 Dramatiq JSON; AWS accepts up to 1 MiB since 2025 (256 KiB
  before, and still on some SQS-compatible servers), so we cap them at 256 KiB.
  Payloads are job ids (a few hundred bytes encoded), far below either.
* Prefetch: Dramatiq asks for ``2 x worker threads``; dramatiq_sqs caps it at 10
  messages per receive. A prefetched message's visibility timeout is already running.
* IAM: ``sqs:ListQueues`` (ping), ``GetQueueUrl``, ``CreateQueue``, ``TagQueue`` (only with
  tags), ``SendMessage``, ``ReceiveMessage``, ``DeleteMessage``, ``ChangeMessageVisibility``.

Errors: boto3 errors while enqueueing become Dramatiq ``ConnectionFailed`` (the job queue
reports ``BackendUnavailable``); ``ping`` raises ``BackendUnavailable`` with the error
class or AWS error code only, never request details that could carry credentials.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final, Self

import anyio.to_thread
import boto3
import dramatiq
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from dramatiq.errors import ConnectionFailed
from dramatiq_sqs import SQSBroker

from adapters.job_broker.dramatiq_jobs import ConsumesJobs, DramatiqJobQueue
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL

log = structlog.get_logger()

#: SQS's longest message delay, in seconds.
MAX_DELAY_SECONDS: Final = 15 * 60
#: The largest message we send, in bytes of base64 (see module doc).
MAX_MESSAGE_BYTES: Final = 256 * 1024
_SETTING: Final = "STUDIO9_BROKER_URL"
_PARAMETERS: Final = frozenset(
    {"region", "namespace", "endpoint_url", "visibility_timeout", "wait_time_seconds", "dead_letter"}
)
_NAMESPACE: Final = re.compile(r"[A-Za-z0-9_-]{1,60}")
_BROKER_ATTEMPTS: Final = 3


class ClampingSQSBroker(SQSBroker):  # type: ignore[misc]  # dramatiq_sqs ships no type information
    """dramatiq_sqs's broker, with long polling, clamped delays and Dramatiq connection errors."""

    def __init__(self, *, wait_time_seconds: int, **kwargs: Any) -> None:
        """``kwargs`` go to ``dramatiq_sqs.SQSBroker`` (and from there to ``boto3.resource``)."""
        super().__init__(**kwargs)
        self.wait_time_seconds = wait_time_seconds

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 0) -> dramatiq.Consumer:
        """Long-poll for ``wait_time_seconds`` whatever the worker's own timeout."""
        try:
            consumer: dramatiq.Consumer = super().consume(queue_name, prefetch, self.wait_time_seconds * 1000)
        except (BotoCoreError, ClientError) as exc:
            raise _connection_failed(f"SQS refused queue {queue_name!r}: {_describe(exc)}") from exc
        return consumer

    def enqueue(self, message: dramatiq.Message[Any], *, delay: int | None = None) -> dramatiq.Message[Any]:
        """Send ``message``; ``delay`` (ms) is rounded up to seconds and clamped to 15 min."""
        applied = clamp_delay(delay)
        if delay is not None and delay > MAX_DELAY_SECONDS * 1000:
            log.debug("sqs_delay_clamped", requested_ms=delay, applied_ms=applied)
        try:
            sent: dramatiq.Message[Any] = super().enqueue(message, delay=applied)
        except (BotoCoreError, ClientError) as exc:
            raise _connection_failed(f"SQS refused a message: {_describe(exc)}") from exc
        return sent


class SqsJobBroker(ConsumesJobs):
    """An SQS-backed Dramatiq broker, plus a ping and a close."""

    shared_between_processes = True
    job_queue_name = "jobs"  # the namespace prefixes it on SQS: ``studio9_jobs``
    dramatiq_broker: ClampingSQSBroker

    def __init__(self, broker: ClampingSQSBroker, *, ping_client: Any, namespace: str) -> None:
        """Wrap ``broker``; ``ping_client`` is a boto3 SQS client with short timeouts."""
        self.dramatiq_broker = broker
        self._ping_client = ping_client
        self._namespace = namespace
        self._closed = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the broker for ``url`` (no request is sent until the first use).

        Raises:
            ConfigError: the URL is not of the documented form, or no region is known.
        """
        _check_form(url)
        query = url.query
        namespace = query.get("namespace", "studio9")
        if not _NAMESPACE.fullmatch(namespace):
            raise ConfigError(f"{url}: namespace must match {_NAMESPACE.pattern}", setting=_SETTING)
        wait = _int_parameter(url, "wait_time_seconds", default=5, high=20)
        visibility = _int_parameter(url, "visibility_timeout", default=60, high=12 * 3600)
        dead_letter = _bool_parameter(url, "dead_letter", default=True)
        session = boto3.session.Session()
        region = query.get("region") or session.region_name
        if not region:
            raise ConfigError(f"{url}: add ?region=... (or set AWS_REGION)", setting=_SETTING)
        endpoint = query.get("endpoint_url")
        timeout = options.timeout
        broker = ClampingSQSBroker(
            namespace=namespace,
            dead_letter=dead_letter,
            visibility_timeout=visibility,
            max_message_size=MAX_MESSAGE_BYTES,
            wait_time_seconds=wait,
            region_name=region,
            endpoint_url=endpoint,
            # A receive may legitimately wait wait_time_seconds before answering.
            config=_config(connect=timeout, read=wait + timeout, attempts=_BROKER_ATTEMPTS),
        )
        ping_client = session.client(
            "sqs",
            region_name=region,
            endpoint_url=endpoint,
            config=_config(connect=timeout / 2, read=timeout / 2, attempts=1),
        )
        return cls(broker, ping_client=ping_client, namespace=namespace)

    def job_queue(self) -> DramatiqJobQueue:
        # boto3 blocks: each send runs on a thread, off the event loop.
        return DramatiqJobQueue(self.dramatiq_broker, self.job_queue_name, blocking=True)

    async def ping(self) -> None:
        """List (at most one of) our queues; raise BackendUnavailable when SQS does not answer."""
        await anyio.to_thread.run_sync(self._ping_blocking, abandon_on_cancel=True)

    def _ping_blocking(self) -> None:
        try:
            self._ping_client.list_queues(QueueNamePrefix=self._namespace, MaxResults=1)
        except ClientError as exc:  # it answered, with an error (credentials, permissions...)
            raise BackendUnavailable(f"SQS refused the request: {_describe(exc)}") from exc
        except BotoCoreError as exc:
            raise BackendUnavailable(f"SQS unreachable: {_describe(exc)}") from exc

    async def queue_depths(self) -> dict[str, int]:
        """``ApproximateNumberOfMessages`` of each declared queue (SQS counts are approximate)."""
        return await anyio.to_thread.run_sync(self._depths_blocking, abandon_on_cancel=True)

    def _depths_blocking(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for name in sorted(self.dramatiq_broker.get_declared_queues()):
            try:
                url = self._ping_client.get_queue_url(QueueName=f"{self._namespace}_{name}")["QueueUrl"]
                attributes = self._ping_client.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]
            except ClientError as exc:
                if "NonExistentQueue" in _describe(exc):
                    depths[name] = 0
                    continue
                raise BackendUnavailable(f"SQS refused the request: {_describe(exc)}") from exc
            except BotoCoreError as exc:
                raise BackendUnavailable(f"SQS unreachable: {_describe(exc)}") from exc
            depths[name] = int(attributes["ApproximateNumberOfMessages"])
        return depths

    async def aclose(self) -> None:
        """Close both HTTP connection pools. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.dramatiq_broker.close()
        self.dramatiq_broker.sqs.meta.client.close()
        self._ping_client.close()


def clamp_delay(delay_ms: int | None) -> int | None:
    """``delay_ms`` rounded up to whole seconds and clamped to SQS's 15 minutes (in ms)."""
    if delay_ms is None or delay_ms <= 0:
        return delay_ms
    return min(math.ceil(delay_ms / 1000), MAX_DELAY_SECONDS) * 1000


def _config(*, connect: float, read: float, attempts: int) -> Config:
    return Config(
        connect_timeout=connect,
        read_timeout=read,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


def _connection_failed(text: str) -> ConnectionFailed:
    """Dramatiq's connection error (Dramatiq workers and our job queue know how to handle it)."""
    return ConnectionFailed(text)  # type: ignore[no-untyped-call]  # DramatiqError.__init__ is untyped


def _describe(exc: BotoCoreError | ClientError) -> str:
    """The error class, or AWS's error code: never the request, which may carry a signature."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def _check_form(url: AdapterURL) -> None:
    if url.host or url.username or url.password is not None or url.path not in ("", "/"):
        raise ConfigError(
            f"{url}: write sqs://?region=...&namespace=... (no host, path or credentials;"
            " boto3 finds credentials in the environment, a profile or a role)",
            setting=_SETTING,
        )
    unknown = sorted(set(url.query) - _PARAMETERS)
    if unknown:
        raise ConfigError(
            f"{url}: unknown parameter(s) {', '.join(unknown)}; expected {', '.join(sorted(_PARAMETERS))}",
            setting=_SETTING,
        )


def _int_parameter(url: AdapterURL, name: str, *, default: int, high: int) -> int:
    raw = url.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise ConfigError(f"{url}: {name} must be a whole number from 0 to {high}", setting=_SETTING)
    return int(raw)


def _bool_parameter(url: AdapterURL, name: str, *, default: bool) -> bool:
    raw = url.query.get(name)
    if raw is None:
        return default
    if raw.lower() not in {"true", "false", "1", "0"}:
        raise ConfigError(f"{url}: {name} must be true or false", setting=_SETTING)
    return raw.lower() in {"true", "1"}
