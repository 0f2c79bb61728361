"""Stream items out of queue messages, item keys, and how a batch's items reach its job's params."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from studio9.messaging.streams.domain import (
    InvalidStreamSettings,
    Item,
    StreamMode,
    StreamSpec,
    batch_ids,
    job_params,
)
from studio9.messaging.streams.notifications import items_from_message


def s3_event(*objects: tuple[str, str, int, str], event: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventName": event,
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": etag}},
            }
            for bucket, key, size, etag in objects
        ]
    }


def sns_envelope(message: str) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "m1", "TopicArn": "arn:t", "Message": message})


def test_s3_notifications_inside_sns_envelopes_become_one_item_per_object() -> None:
    body = sns_envelope(
        json.dumps(s3_event(("in", "images/a+b.png", 10, "e1"), ("in", "images/c.png", 5, "e2")))
    )
    items = items_from_message(body)
    assert [i.payload for i in items] == [
        {"bucket": "in", "key": "images/a b.png", "size": 10, "etag": "e1"},
        {"bucket": "in", "key": "images/c.png", "size": 5, "etag": "e2"},
    ]
    assert [i.key for i in items] == ["s3://in/images/a b.png#e1", "s3://in/images/c.png#e2"]
    assert items_from_message(json.dumps(s3_event(("in", "x", 1, "e")))) == [
        Item.of({"bucket": "in", "key": "x", "size": 1, "etag": "e"}, key="s3://in/x#e")
    ]


def test_test_events_and_removals_carry_no_items() -> None:
    assert items_from_message(sns_envelope(json.dumps({"Event": "s3:TestEvent", "Bucket": "in"}))) == []
    assert items_from_message(json.dumps(s3_event(("in", "x", 1, "e"), event="ObjectRemoved:Delete"))) == []


def test_plain_messages_are_one_item_each() -> None:
    (obj,) = items_from_message(b'{"key": "k1", "file": "f"}')
    assert (obj.key, obj.payload) == ("k1", {"key": "k1", "file": "f"})
    (text,) = items_from_message("not json")
    assert text.payload == {"body": "not json"} and text.key.startswith("sha256:")
    (wrapped,) = items_from_message(sns_envelope(json.dumps({"n": 1})))
    assert wrapped.payload == {"n": 1}
    assert items_from_message("[1, 2]")[0].payload == {"body": [1, 2]}


def test_item_keys_default_to_a_hash_of_the_payload_and_long_ones_are_hashed() -> None:
    assert Item.of({"b": 1, "a": 2}).key == Item.of({"a": 2, "b": 1}).key
    assert Item.of({"a": 1}).key != Item.of({"a": 2}).key
    long_key = Item.of({"key": "x" * 300}).key
    assert long_key.startswith("sha256:") and len(long_key) < 255


def _spec(**changes: Any) -> StreamSpec:
    values: dict[str, Any] = {
        "id": "s1",
        "owner_id": "u1",
        "job_type": "system.noop",
        "params": {"format": "csv"},
        "created_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    values.update(changes)
    return StreamSpec(**values)


def test_batch_mode_lists_the_items_under_item_param() -> None:
    assert job_params(_spec(item_param="echo"), [{"a": 1}, {"a": 2}]) == {
        "format": "csv",
        "echo": [{"a": 1}, {"a": 2}],
    }


def test_per_item_mode_takes_the_items_field_of_that_name_or_the_whole_item() -> None:
    spec = _spec(mode="per_item", item_param="file")
    assert spec.mode is StreamMode.PER_ITEM
    assert job_params(spec, [{"file": "f1", "key": "k"}]) == {"format": "csv", "file": "f1"}
    assert job_params(spec, [{"bucket": "b"}]) == {"format": "csv", "file": {"bucket": "b"}}


def test_settings_round_trip_and_bad_ones_are_reported() -> None:
    spec = _spec(batch_size=5, max_wait=0.5, source="sqs://q")
    assert StreamSpec.from_value("s1", spec.to_value()) == spec
    with pytest.raises(InvalidStreamSettings):
        StreamSpec.from_value("s1", {"owner_id": "u1"})
    with pytest.raises(InvalidStreamSettings):
        StreamSpec.from_value("s1", {**spec.to_value(), "batch_size": 0})


def test_batch_ids_increase_even_within_one_millisecond() -> None:
    ids = batch_ids(500)
    assert ids == sorted(ids) and len(set(ids)) == 500 and all(len(i) == 26 for i in ids)
