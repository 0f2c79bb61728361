"""Items out of queue messages: S3 ``ObjectCreated`` notifications (bare, or in an SNS envelope), or plain.

As in the original, S3 writes to an SNS topic and the topic to an SQS queue, so a message
body is the SNS envelope ``{"Type": "Notification", "Message": "<S3 event JSON>"}``; a queue
subscribed with raw delivery, or S3 writing to the queue directly, gives the event itself.
Each ``ObjectCreated`` record becomes the item ``{bucket, key, size, etag}`` keyed
``s3://bucket/key#etag`` (a re-upload of the same object with new content is a new item;
a re-delivered notification is not). Any other message is one item: its JSON object, or
``{"body": …}`` for anything else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from studio9.json_depth import exceeds_depth
from studio9.messaging.streams.domain import Item


def items_from_message(body: str | bytes) -> list[Item]:
    """The items one queue message carries (none for S3's ``s3:TestEvent`` or removals)."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    document = _json(text)
    if isinstance(document, Mapping) and document.get("Type") == "Notification":
        inner = document.get("Message")
        if isinstance(inner, str):
            text, document = inner, _json(inner)
    if isinstance(document, Mapping):
        if document.get("Event") == "s3:TestEvent":
            return []
        records = document.get("Records")
        if isinstance(records, list) and records and all(_is_s3(r) for r in records):
            return [item for r in records if (item := _s3_item(r)) is not None]
        return [Item.of(dict(document))]
    return [Item.of({"body": text if document is _NOT_JSON else document})]


_NOT_JSON = object()


def _json(text: str) -> Any:
    if exceeds_depth(text.encode("utf-8", "replace")):
        return _NOT_JSON  # kept as text: decoding it would recurse past any sane depth
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def _is_s3(record: Any) -> bool:
    return isinstance(record, Mapping) and isinstance(record.get("s3"), Mapping)


def _s3_item(record: Mapping[str, Any]) -> Item | None:
    if not str(record.get("eventName", "")).startswith("ObjectCreated"):
        return None  # removals, restores, replication events: nothing to process
    s3 = record["s3"]
    bucket = str((s3.get("bucket") or {}).get("name", ""))
    obj = s3.get("object") or {}
    # S3 URL-encodes keys in notifications (a space arrives as '+').
    key = unquote_plus(str(obj.get("key", "")))
    etag = str(obj.get("eTag") or obj.get("etag") or "")
    payload = {"bucket": bucket, "key": key, "size": int(obj.get("size") or 0), "etag": etag}
    return Item.of(payload, key=f"s3://{bucket}/{key}" + (f"#{etag}" if etag else ""))
