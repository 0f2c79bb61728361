"""The JSON depth limit, measured on bytes: exact at the limit, blind to brackets inside strings."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from studio9.json_depth import MAX_JSON_DEPTH, exceeds_depth
from studio9.messaging.streams.notifications import items_from_message


def _nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def _depth(value: Any) -> int:
    """The reference: how deep a decoded document nests."""
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def test_the_limit_itself_passes_and_one_more_level_does_not() -> None:
    assert not exceeds_depth(_nested(MAX_JSON_DEPTH).encode())
    assert exceeds_depth(_nested(MAX_JSON_DEPTH + 1).encode())
    assert not exceeds_depth(json.dumps({"a": json.loads(_nested(MAX_JSON_DEPTH - 1))}).encode())
    assert exceeds_depth(json.dumps({"a": json.loads(_nested(MAX_JSON_DEPTH))}).encode())


def test_a_flood_of_brackets_is_too_deep_even_unclosed() -> None:
    assert exceeds_depth(b"[" * 100_000)
    assert exceeds_depth(b'{"a":' * 70)


def test_many_brackets_side_by_side_are_not_deep() -> None:
    wide = json.dumps([[{"k": [1, 2]}, []] for _ in range(5_000)]).encode()
    assert not exceeds_depth(wide)


def test_brackets_inside_strings_and_escaped_quotes_are_text() -> None:
    text = json.dumps(["[" * 200, '"' + "{" * 200, "\\", {'\\"[[[': "]]]" * 100}]).encode()
    assert not exceeds_depth(text, 2)
    assert exceeds_depth(text, 1)
    # A string ending in an escaped backslash: the quote after it closes the string.
    assert exceeds_depth(b'["\\\\", ' + _nested(3).encode() + b"]", 3)


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_a_parser_on_random_documents(seed: int) -> None:
    rng = random.Random(seed)
    budget = [0]

    def document(levels: int) -> Any:
        budget[0] -= 1
        if levels == 0 or budget[0] <= 0 or rng.random() < 0.2:
            return rng.choice(["a[b", "]]}", 'q"x', "\\", 1, None, "{}"])
        width = rng.choice([0, 1, 1, 1, 2, 3])
        if rng.random() < 0.5:
            return [document(levels - 1) for _ in range(width)]
        return {rng.choice(["k", "[", "]}", '\\"']) + str(i): document(levels - 1) for i in range(width)}

    for _ in range(150):
        budget[0] = 300
        value = document(rng.randint(0, 80))
        text = json.dumps(value).encode()
        for limit in (0, 1, 2, 3, 10, 40, MAX_JSON_DEPTH):
            assert exceeds_depth(text, limit) == (_depth(value) > limit), (text, limit)


def test_a_queue_message_too_deep_to_decode_is_one_text_item() -> None:
    # json.loads would raise RecursionError, and the message would come back forever.
    (item,) = items_from_message(b"[" * 100_000)
    assert item.payload == {"body": "[" * 100_000}
    (shallow,) = items_from_message(_nested(MAX_JSON_DEPTH - 1, '{"a": 1}'))
    assert shallow.payload == {"body": json.loads(_nested(MAX_JSON_DEPTH - 1, '{"a": 1}'))}
