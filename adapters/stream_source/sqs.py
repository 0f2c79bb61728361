"""Stream source: an Amazon SQS queue, fed by S3 ``ObjectCreated`` notifications through SNS or by anyone.

URL:      sqs://queue-name?region=eu-west-1&endpoint_url=http://127.0.0.1:4566&visibility_timeout=300
          No credentials in the URL: boto3's chain supplies them (environment, profile, role).
Features: long polling (up to the runner's tick, at most 20 s) · up to 10 messages per receive ·
          messages deleted (DeleteMessageBatch) only after their items are stored
Extra:    cloud (aioboto3)

A message that is not deleted (the process died, the delete failed) comes back after the
queue's visibility timeout (``visibility_timeout=`` overrides it per receive) and its items
are dropped as duplicates. Give the queue a redrive policy for messages that cannot be parsed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from typing import Any, Final, Self
from urllib.parse import urlsplit

import aioboto3
import aiohttp
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.streams.notifications import items_from_message
from studio9.messaging.streams.ports import Delivery
from studio9.urls import AdapterURL

log = structlog.get_logger()

_SETTING: Final = "source"
_QUEUE: Final = re.compile(r"[A-Za-z0-9_-]{1,80}(\.fifo)?")
_OPTIONS: Final = frozenset({"region", "endpoint_url", "visibility_timeout"})
_MAX_RECEIVE: Final = 10  # SQS's limit per ReceiveMessage / DeleteMessageBatch
_MAX_WAIT: Final = 20
_ERRORS: Final = (BotoCoreError, ClientError, aiohttp.ClientError)


class SqsStreamSource:
    def __init__(
        self,
        queue: str,
        *,
        region: str | None,
        endpoint_url: str | None,
        visibility_timeout: int | None,
        timeout: float,
    ) -> None:
        self.queue = queue
        self._region, self._endpoint, self._visibility = region, endpoint_url, visibility_timeout
        # A receive may rightly wait its long-poll time before answering.
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout + _MAX_WAIT,
            retries={"mode": "standard", "total_max_attempts": 2},
        )
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._url: str | None = None

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """``sqs://queue-name?…`` (the queue name keeps its case). Raises ConfigError."""
        netloc = urlsplit(url.secret()).netloc
        if url.username or url.password is not None or not _QUEUE.fullmatch(netloc):
            raise ConfigError(f"{url}: write sqs://queue-name?region=… (no credentials)", setting=_SETTING)
        if unknown := sorted(set(url.query) - _OPTIONS):
            raise ConfigError(
                f"{url}: unknown option(s) {unknown}; known: {sorted(_OPTIONS)}", setting=_SETTING
            )
        visibility = url.query.get("visibility_timeout")
        if visibility is not None and not (visibility.isdigit() and int(visibility) <= 43_200):
            raise ConfigError(f"{url}: visibility_timeout must be 0 to 43200 seconds", setting=_SETTING)
        return cls(
            netloc,
            region=url.query.get("region"),
            endpoint_url=url.query.get("endpoint_url"),
            visibility_timeout=int(visibility) if visibility is not None else None,
            timeout=options.timeout,
        )

    async def receive(self, *, max_messages: int, wait_seconds: float) -> Sequence[Delivery]:
        request: dict[str, Any] = {
            "MaxNumberOfMessages": max(1, min(_MAX_RECEIVE, max_messages)),
            "WaitTimeSeconds": max(0, min(_MAX_WAIT, int(wait_seconds))),
        }
        if self._visibility is not None:
            request["VisibilityTimeout"] = self._visibility
        try:
            client, queue_url = await self._queue()
            answer = await client.receive_message(QueueUrl=queue_url, **request)
        except _ERRORS as exc:
            raise BackendUnavailable(f"SQS queue {self.queue!r}: {_describe(exc)}") from exc
        return [
            Delivery(tuple(items_from_message(m.get("Body", ""))), m["ReceiptHandle"])
            for m in answer.get("Messages", [])
        ]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        try:
            client, queue_url = await self._queue()
            for start in range(0, len(deliveries), _MAX_RECEIVE):
                chunk = deliveries[start : start + _MAX_RECEIVE]
                entries = [{"Id": str(i), "ReceiptHandle": d.receipt} for i, d in enumerate(chunk)]
                answer = await client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
                if failed := answer.get("Failed"):
                    # Harmless: the messages come back and their items are dropped as duplicates.
                    log.warning("sqs_delete_failed", queue=self.queue, count=len(failed))
        except _ERRORS as exc:
            raise BackendUnavailable(f"SQS queue {self.queue!r}: {_describe(exc)}") from exc

    async def aclose(self) -> None:
        self._client, self._url = None, None
        await self._stack.aclose()

    async def _queue(self) -> tuple[Any, str]:
        if self._client is None:
            session = aioboto3.Session()
            self._client = await self._stack.enter_async_context(
                session.client(
                    "sqs", region_name=self._region, endpoint_url=self._endpoint, config=self._config
                )
            )
        if self._url is None:
            self._url = str((await self._client.get_queue_url(QueueName=self.queue))["QueueUrl"])
        return self._client, self._url


def _describe(exc: BaseException) -> str:
    """The AWS error code or the error class: never the request, which may carry a signature."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
