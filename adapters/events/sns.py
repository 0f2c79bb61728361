"""Events on an Amazon SNS topic (subscribe SQS queues, Lambdas, HTTPS endpoints to it).

URL:      sns://topic-name?region=eu-west-1&endpoint_url=http://127.0.0.1:PORT&create=false
Features: batches of 10 (publish_batch) · message attribute ``topic`` for subscription filters
Extra:    cloud (aioboto3)
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from typing import Any, Self

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.events import Event

_BATCH = 10


class SnsEventPublisher:
    def __init__(
        self, topic: str, *, region: str, endpoint_url: str | None, create: bool, timeout: float
    ) -> None:
        self.topic = topic
        self._region, self._endpoint, self._create = region, endpoint_url, create
        self._config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2})
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._arn: str | None = None

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        if not url.host:
            raise ConfigError(
                "sns:// needs a topic name: sns://topic-name?region=…", setting="STUDIO9_EVENTS_URL"
            )
        return cls(
            url.host,
            region=url.query.get("region", "us-east-1"),
            endpoint_url=url.query.get("endpoint_url"),
            create=url.query.get("create", "false") == "true",
            timeout=options.timeout,
        )

    async def publish(self, events: Sequence[Event]) -> None:
        arn = await self._topic_arn()
        for start in range(0, len(events), _BATCH):
            entries = [
                {
                    "Id": str(i),
                    "Message": json.dumps(e.to_json_dict()),
                    "MessageAttributes": {"topic": {"DataType": "String", "StringValue": e.topic}},
                }
                for i, e in enumerate(events[start : start + _BATCH])
            ]
            try:
                answer = await self._client.publish_batch(TopicArn=arn, PublishBatchRequestEntries=entries)
            except (BotoCoreError, ClientError) as exc:
                raise BackendUnavailable(f"SNS refused events: {type(exc).__name__}") from exc
            if answer.get("Failed"):
                raise BackendUnavailable(f"SNS refused {len(answer['Failed'])} events")

    async def ping(self) -> None:
        await self._topic_arn()

    async def aclose(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def _topic_arn(self) -> str:
        if self._arn is not None:
            return self._arn
        try:
            if self._client is None:
                session = aioboto3.Session()
                self._client = await self._stack.enter_async_context(
                    session.client(
                        "sns", region_name=self._region, endpoint_url=self._endpoint, config=self._config
                    )
                )
            if self._create:
                self._arn = str((await self._client.create_topic(Name=self.topic))["TopicArn"])
            else:
                self._arn = await self._find_topic()
        except (BotoCoreError, ClientError) as exc:
            raise BackendUnavailable(f"SNS unreachable: {type(exc).__name__}") from exc
        return self._arn

    async def _find_topic(self) -> str:
        paginator = self._client.get_paginator("list_topics")
        async for page in paginator.paginate():
            for topic in page.get("Topics", []):
                arn = str(topic["TopicArn"])
                if arn.rsplit(":", 1)[-1] == self.topic:
                    return arn
        raise BackendUnavailable(f"SNS topic {self.topic!r} does not exist (add create=true to make it)")
