"""Events on an Amazon SNS topic (subscribe SQS queues, Lambdas, HTTPS endpoints to it).

URL:      sns://topic-name?region=eu-west-1&endpoint_url=http://127.0.0.1:PORT&create=false
Features: batches of 10 (publish_batch) · message attribute ``topic`` for subscription filters
          · ``EventSubscriber``: SNS cannot push to a process, so ``listening()`` creates an SQS
          queue of this process's own (``<topic>-sub-<random>``, tagged ``studio9=event-subscription``),
          lets the topic write to it, subscribes it (raw delivery, a filter policy on the
          ``topic`` attribute per subscribed prefix), long-polls it, and on exit unsubscribes and
          deletes it. A queue found deleted is made again (and a gap signalled).
Extra:    cloud (aioboto3)

Permissions for subscribing: sqs:CreateQueue, sqs:TagQueue, sqs:GetQueueAttributes,
sqs:SetQueueAttributes, sqs:ReceiveMessage, sqs:DeleteMessage, sqs:DeleteQueue, sns:Subscribe,
sns:Unsubscribe, sns:ListSubscriptionsByTopic, sqs:ListQueues, sqs:ListQueueTags. A process
killed without its exit (SIGKILL, a lost host) leaves its queue behind: messages in it expire
after ``_RETENTION`` seconds, and the other subscribers remove it once it has not been stamped
alive for a while (``sns_orphans``); its tags name host and pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, Final, Self

import aioboto3
import aiohttp
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from adapters.event_publisher import sns_orphans
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.messaging.domain import Event, EventHandler, GapHandler
from studio9.messaging.events import Subscriptions
from studio9.urls import AdapterURL

log = structlog.get_logger()

_BATCH: Final = 10  # SNS's limit per PublishBatch, SQS's per ReceiveMessage / DeleteMessageBatch
#: Seconds one receive waits for a message (long polling; SQS allows up to 20).
_WAIT: Final = 10
#: Seconds an event stays in a subscription queue: only a process that polls it needs it, and a
#: queue left by a killed process should not grow.
_RETENTION: Final = 300
_RETRY_FIRST: Final = 0.5
_RETRY_MAX: Final = 30.0
_ERRORS: Final = (BotoCoreError, ClientError, aiohttp.ClientError, BackendUnavailable)


class SnsEventPublisher:
    def __init__(
        self,
        topic: str,
        *,
        region: str,
        endpoint_url: str | None,
        create: bool,
        timeout: float,
        receive_wait: int = _WAIT,
        renew_every: float = sns_orphans.RENEW_EVERY,
        sweep: sns_orphans.Sweep = sns_orphans.sweep,
    ) -> None:
        """``receive_wait`` (seconds one receive long-polls), ``renew_every`` (seconds between two
        stamps of the queue) and ``sweep`` are seams for tests; production keeps the defaults."""
        self.topic = topic
        self._region, self._endpoint, self._create = region, endpoint_url, create
        self._receive_wait, self._renew_every, self._sweep = receive_wait, renew_every, sweep
        self._config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2})
        # A receive may rightly wait its long-poll time before answering.
        self._poll_config = Config(
            connect_timeout=timeout, read_timeout=timeout + receive_wait, retries={"max_attempts": 2}
        )
        self._timeout = timeout
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None
        self._arn: str | None = None
        self._subscriptions = Subscriptions()

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

    # -- EventSubscriber -----------------------------------------------------------------------

    def subscribe(self, handler: EventHandler, *, prefix: str = "", on_gap: GapHandler | None = None) -> None:
        """See ``EventSubscriber.subscribe``."""
        self._subscriptions.add(handler, prefix=prefix, on_gap=on_gap)

    @contextlib.asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        """Poll a queue of this process's own until exit (see ``EventSubscriber.listening``)."""
        if not self._subscriptions:
            yield
            return
        async with contextlib.AsyncExitStack() as stack:
            session = aioboto3.Session()
            sqs = await stack.enter_async_context(
                session.client(
                    "sqs", region_name=self._region, endpoint_url=self._endpoint, config=self._poll_config
                )
            )
            inbox = _Inbox(sqs)
            stack.push_async_callback(self._tear_down, inbox)  # after the poller stopped (LIFO)
            ready = asyncio.Event()
            poller = _background(self._poll_forever(inbox, ready), name="sns-event-subscription")
            stack.push_async_callback(_cancel, poller)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), self._timeout)
            if not ready.is_set():
                log.warning("event_subscription_pending", topic=self.topic, waited=self._timeout)
            yield

    async def _poll_forever(self, inbox: _Inbox, ready: asyncio.Event) -> None:
        delay, missed = _RETRY_FIRST, False
        while True:
            try:
                if not inbox.ready:
                    await self._set_up(inbox)
                    # After the subscription exists, not before: a read that follows this clear
                    # either sees the change or is invalidated again by the change's event.
                    self._subscriptions.gap()
                    missed = False
                    ready.set()
                    log.info("event_subscription_started", topic=self.topic, queue=inbox.name)
                await self._upkeep(inbox)
                answer = await inbox.sqs.receive_message(
                    QueueUrl=inbox.url, MaxNumberOfMessages=_BATCH, WaitTimeSeconds=self._receive_wait
                )
                if missed:  # events may have expired in the queue while it could not be read
                    self._subscriptions.gap()
                    missed = False
                messages = answer.get("Messages", [])
                for message in messages:
                    self._subscriptions.deliver_raw(
                        _unwrap(message.get("Body", "")), source=f"sns:{self.topic}"
                    )
                if messages:
                    entries = [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
                    ]
                    await inbox.sqs.delete_message_batch(QueueUrl=inbox.url, Entries=entries)
                delay = _RETRY_FIRST
            except _ERRORS as exc:
                if _code(exc) in sns_orphans.QUEUE_GONE:
                    inbox.ready = False  # deleted under us: make another one
                missed = True
                log.warning("event_subscription_failed", topic=self.topic, error=_code(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)

    async def _set_up(self, inbox: _Inbox) -> None:
        """Create the queue, let the topic write to it, subscribe it; leftovers go first."""
        await self._tear_down(inbox)
        topic_arn = await self._topic_arn()
        inbox.name = f"{sns_orphans.queue_prefix(self.topic)}{secrets.token_hex(6)}"
        owner = {"studio9-host": socket.gethostname()[:200], "studio9-pid": str(os.getpid())}
        tags = sns_orphans.tags(self.topic, time.time(), **owner)
        created = await inbox.sqs.create_queue(
            QueueName=inbox.name, Attributes={"MessageRetentionPeriod": str(_RETENTION)}, tags=tags
        )
        inbox.url = str(created["QueueUrl"])
        attributes = await inbox.sqs.get_queue_attributes(QueueUrl=inbox.url, AttributeNames=["QueueArn"])
        queue_arn = str(attributes["Attributes"]["QueueArn"])
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
                }
            ],
        }
        await inbox.sqs.set_queue_attributes(QueueUrl=inbox.url, Attributes={"Policy": json.dumps(policy)})
        # Raw delivery: the body is the event itself, not SNS's envelope around it.
        subscription = {"RawMessageDelivery": "true"}
        prefixes = self._subscriptions.prefixes
        if "" not in prefixes:
            subscription["FilterPolicy"] = json.dumps({"topic": [{"prefix": p} for p in sorted(prefixes)]})
        answer = await self._client.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn,
            Attributes=subscription,
            ReturnSubscriptionArn=True,
        )
        inbox.subscription = str(answer["SubscriptionArn"])
        inbox.ready = True
        inbox.renew_at = time.monotonic() + self._renew_every

    async def _upkeep(self, inbox: _Inbox) -> None:
        """Stamp our queue as alive and remove dead processes' queues, when due. A failure is
        logged and tried again at the next due time: it must not stop the events."""
        now = time.monotonic()
        try:
            if now >= inbox.renew_at and inbox.url is not None:
                inbox.renew_at = now + self._renew_every
                await sns_orphans.renew(inbox.sqs, inbox.url, time.time())
            if now >= inbox.sweep_at:
                inbox.sweep_at = now + sns_orphans.SWEEP_EVERY
                arn = await self._topic_arn()
                await self._sweep(
                    inbox.sqs, self._client, topic=self.topic, topic_arn=arn, keep=inbox.url, now=time.time()
                )
        except _ERRORS as exc:
            log.warning("event_queue_upkeep_failed", topic=self.topic, queue=inbox.name, error=_code(exc))

    async def _tear_down(self, inbox: _Inbox) -> None:
        """Unsubscribe and delete the queue, as far as they exist; failures are logged only
        (a queue left behind is tagged and its messages expire; nothing else depends on it)."""
        subscription, url = inbox.subscription, inbox.url
        inbox.ready, inbox.subscription, inbox.url = False, None, None
        if subscription is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._client.unsubscribe(SubscriptionArn=subscription)
            except (*_ERRORS, TimeoutError) as exc:
                log.warning("event_unsubscribe_failed", topic=self.topic, queue=inbox.name, error=_code(exc))
        if url is not None:
            try:
                async with asyncio.timeout(self._timeout):
                    await inbox.sqs.delete_queue(QueueUrl=url)
                log.info("event_subscription_stopped", topic=self.topic, queue=inbox.name)
            except (*_ERRORS, TimeoutError) as exc:
                log.warning("event_queue_delete_failed", topic=self.topic, queue=inbox.name, error=_code(exc))


class _Inbox:
    """The SQS queue one ``listening()`` reads, and its subscription to the topic."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs
        self.name = ""
        self.url: str | None = None
        self.subscription: str | None = None
        #: Queue and subscription both in place (False: make them, after removing leftovers).
        self.ready = False
        #: When (``time.monotonic()``) to stamp the queue again, and to look for dead processes'
        #: queues (at once, then every ``SWEEP_EVERY``).
        self.renew_at = self.sweep_at = 0.0


def _background(coroutine: Coroutine[Any, Any, None], *, name: str) -> asyncio.Task[None]:
    """A task whose unexpected death is logged when it happens, not at shutdown."""
    task = asyncio.create_task(coroutine, name=name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("event_subscription_crashed", task=task.get_name(), exc_info=exc)


async def _cancel(task: asyncio.Task[None]) -> None:
    """Stop ``task``; a crash was logged already (``_log_crash``) and does not stop the exit."""
    if task.done():
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _unwrap(body: str) -> str:
    """The event inside SNS's envelope, for a queue subscribed without raw delivery."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        return str(data["Message"])
    return body


def _code(exc: BaseException) -> str:
    """The AWS error code or the error class: never the request, which may carry a signature."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__
