"""Subscription queues left behind by processes that died without their exit (SIGKILL, a lost host).

SNS cannot push to a process, so every subscribing process reads a queue of its own
(``sns.SnsEventPublisher.listening``) and deletes it on exit. A process killed before its exit
leaves the queue and its subscription behind: SNS keeps delivering every event to it, and each
killed process adds one more. So a live subscriber stamps its queue with the tag
``studio9-seen`` (Unix seconds) every ``RENEW_EVERY`` seconds, and every subscriber, soon after
it starts and every ``SWEEP_EVERY`` seconds after that, removes the queues of its topic not
stamped for ``ORPHANED_AFTER`` seconds: first their subscription, then the queue. A queue
made before the stamp existed counts from its creation time. Removing a live process's queue
by mistake (a clock far off, a process stalled for minutes) is not fatal: its owner finds the
queue gone, makes another one and signals a gap, as when anyone deletes it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final, Protocol

import structlog
from botocore.exceptions import ClientError

log = structlog.get_logger()

#: The error codes of a queue that does not exist (SQS's JSON and query protocols).
QUEUE_GONE: Final = frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"})
_SUBSCRIPTION_GONE: Final = frozenset({"NotFound"})
KIND_TAG: Final = "studio9"
KIND: Final = "event-subscription"
TOPIC_TAG: Final = "studio9-topic"
SEEN_TAG: Final = "studio9-seen"
#: Seconds between two stamps of a live subscriber's queue.
RENEW_EVERY: Final = 60.0
#: Seconds without a stamp after which a queue is taken for a dead process's (15 missed stamps).
ORPHANED_AFTER: Final = 900.0
#: Seconds between two sweeps of one subscriber (the first comes right after it starts).
SWEEP_EVERY: Final = 3600.0


def queue_prefix(topic: str) -> str:
    """The name every subscription queue of ``topic`` starts with."""
    return f"{topic[:50]}-sub-"


def tags(topic: str, now: float, **more: str) -> dict[str, str]:
    """The tags a new subscription queue of ``topic`` gets."""
    return {KIND_TAG: KIND, TOPIC_TAG: topic, SEEN_TAG: str(int(now)), **more}


async def renew(sqs: Any, queue_url: str, now: float) -> None:
    """Stamp a live subscriber's queue."""
    await sqs.tag_queue(QueueUrl=queue_url, Tags={SEEN_TAG: str(int(now))})


class Sweep(Protocol):
    """What removes the orphaned queues of a topic: ``sweep`` below, or a test's stand-in."""

    async def __call__(
        self, sqs: Any, sns: Any, *, topic: str, topic_arn: str, keep: str | None, now: float
    ) -> int: ...


async def sweep(sqs: Any, sns: Any, *, topic: str, topic_arn: str, keep: str | None, now: float) -> int:
    """Remove the subscription queues of ``topic`` (but ``keep``, the caller's own) not stamped
    for ``ORPHANED_AFTER`` seconds, and their subscriptions. Returns how many queues went.

    Raises the clients' errors, except for a queue that another sweeper removed meanwhile."""
    orphans: dict[str, str] = {}  # queue ARN -> URL
    async for page in sqs.get_paginator("list_queues").paginate(QueueNamePrefix=queue_prefix(topic)):
        for url in page.get("QueueUrls", []):
            if url != keep and (arn := await _orphan_arn(sqs, url, topic, now)) is not None:
                orphans[arn] = url
    if not orphans:
        return 0
    async for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        for subscription in page.get("Subscriptions", []):
            if subscription.get("Endpoint") in orphans:
                arn = subscription["SubscriptionArn"]
                await _unless_gone(sns.unsubscribe(SubscriptionArn=arn), gone=_SUBSCRIPTION_GONE)
    removed = 0
    for url in orphans.values():
        if await _unless_gone(sqs.delete_queue(QueueUrl=url)) is not None:
            removed += 1
    log.info("event_queues_orphaned_removed", topic=topic, count=removed)
    return removed


async def _orphan_arn(sqs: Any, url: str, topic: str, now: float) -> str | None:
    """The queue's ARN if it is a subscription queue of ``topic`` that nobody stamped lately."""
    if (listed := await _unless_gone(sqs.list_queue_tags(QueueUrl=url))) is None:
        return None
    queue_tags = listed.get("Tags", {})
    if queue_tags.get(KIND_TAG) != KIND or queue_tags.get(TOPIC_TAG) != topic:
        return None  # not ours, or another topic's whose name starts the same way
    wanted = ["QueueArn", "CreatedTimestamp"]
    if (read := await _unless_gone(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=wanted))) is None:
        return None
    attributes = read.get("Attributes", {})
    try:
        seen = float(queue_tags.get(SEEN_TAG) or attributes.get("CreatedTimestamp") or now)
    except ValueError:
        return None  # a stamp we did not write: leave the queue alone
    return str(attributes["QueueArn"]) if now - seen > ORPHANED_AFTER and "QueueArn" in attributes else None


async def _unless_gone(call: Awaitable[Any], *, gone: frozenset[str] = QUEUE_GONE) -> Any:
    """The answer of ``call``, or None when what it acts on no longer exists (another sweeper
    was first)."""
    try:
        return await call
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in gone:
            return None
        raise
