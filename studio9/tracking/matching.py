"""Run search evaluated in Python: whether a run matches a parsed filter (``matches``), the order
runs sort in (``sort_key``), and offset paging (``page_of``). The in-memory store uses them; the SQL
store translates the same rules to SQL, and the contract suite holds the two to the same answers.

The rules, MLflow's:

- a comparison on a param, tag or metric the run lacks is false, except ``IS NULL``;
- a metric compares its latest value (``RunData.metrics``); NaN compares as IEEE does (``!=`` is
  true, every other comparator false);
- ``LIKE`` is case-sensitive, ``ILIKE`` not; ``%`` is any run of characters (line breaks too),
  ``_`` any one, and nothing escapes them;
- a dataset comparison is true when any of the run's dataset inputs satisfies it (``context``: of
  the inputs that have a context tag);
- order: each ``OrderKey`` in turn, with missing values last in both directions and NaN after
  every number; then ``start_time`` descending (unless an ``OrderKey`` names it; a run without a
  start time last), then run id ascending. Strings order by code point.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, TypeVar

from studio9.tracking.domain import Run, RunRecord
from studio9.tracking.search import (
    Comparison,
    EntityType,
    OrderKey,
    Value,
    decode_page_token,
    encode_page_token,
)

T = TypeVar("T")
_NUMERIC: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def attribute(run: Run, key: str) -> str | int | None:
    """The run's attribute as the search language names it (``user_id`` is the user's name)."""
    if key == "run_id":
        return run.id
    if key == "run_name":
        return run.name
    if key == "status":
        return str(run.status)
    if key == "user_id":
        return run.user_name
    if key == "artifact_uri":
        return run.artifact_uri
    if key == "start_time":
        return run.start_time
    if key == "end_time":
        return run.end_time
    raise ValueError(f"no run attribute {key!r}")


@functools.cache
def _like_pattern(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    parts = [".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL | (0 if case_sensitive else re.IGNORECASE))


def like(value: str, pattern: str, *, case_sensitive: bool = True) -> bool:
    """SQL's ``LIKE`` (``ILIKE`` when not ``case_sensitive``) without an escape character."""
    return _like_pattern(pattern, case_sensitive).fullmatch(value) is not None


def _holds(lhs: Any, comparator: str, rhs: Value) -> bool:
    if comparator == "IS NULL":
        return lhs is None
    if comparator == "IS NOT NULL":
        return lhs is not None
    if lhs is None:
        return False
    if comparator == "LIKE":
        return like(lhs, str(rhs))
    if comparator == "ILIKE":
        return like(lhs, str(rhs), case_sensitive=False)
    if comparator in ("IN", "NOT IN"):
        listed = rhs if isinstance(rhs, tuple) else ()
        return (lhs in listed) == (comparator == "IN")
    return _NUMERIC[comparator](lhs, rhs)


def holds(record: RunRecord, comparison: Comparison) -> bool:
    """Whether the run satisfies one comparison."""
    entity, key, comparator, value = (
        comparison.entity,
        comparison.key,
        comparison.comparator,
        comparison.value,
    )
    if entity is EntityType.METRIC:
        metric = record.data.metrics.get(key)
        return _holds(None if metric is None else metric.value, comparator, value)
    if entity is EntityType.PARAM:
        return _holds(record.data.params.get(key), comparator, value)
    if entity is EntityType.TAG:
        return _holds(record.data.tags.get(key), comparator, value)
    if entity is EntityType.ATTRIBUTE:
        return _holds(attribute(record.run, key), comparator, value)
    if key == "context":
        values = [d.context for d in record.inputs if d.context is not None]
    else:
        values = [getattr(d, key) for d in record.inputs]
    return any(_holds(v, comparator, value) for v in values)


def matches(record: RunRecord, comparisons: Sequence[Comparison]) -> bool:
    """Whether the run satisfies every comparison (a filter is a conjunction)."""
    return all(holds(record, c) for c in comparisons)


@functools.total_ordering
class _Descending:
    """A value that sorts in reverse (one key ascending, another descending, in one sort)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return bool(other.value < self.value)

    __hash__ = None  # type: ignore[assignment]


def _sort_value(record: RunRecord, key: OrderKey) -> Any:
    if key.entity is EntityType.METRIC:
        metric = record.data.metrics.get(key.key)
        return None if metric is None else metric.value
    if key.entity is EntityType.PARAM:
        return record.data.params.get(key.key)
    if key.entity is EntityType.TAG:
        return record.data.tags.get(key.key)
    return attribute(record.run, key.key)


def _part(value: Any, ascending: bool) -> tuple[int, Any]:
    # Missing last and NaN after the numbers, whichever the direction: the rank is not reversed.
    if value is None:
        return (2, 0)
    if isinstance(value, float) and math.isnan(value):
        return (1, 0)
    return (0, value if ascending else _Descending(value))


def sort_key(record: RunRecord, order_by: Sequence[OrderKey]) -> tuple[Any, ...]:
    """The key ``sorted`` orders runs by (see the module)."""
    parts: list[Any] = [_part(_sort_value(record, k), k.ascending) for k in order_by]
    if not any(k.entity is EntityType.ATTRIBUTE and k.key == "start_time" for k in order_by):
        parts.append(_part(record.run.start_time, False))
    parts.append(record.run.id)
    return tuple(parts)


def page_of(items: Sequence[T], page_token: str | None, max_results: int) -> tuple[list[T], str | None]:
    """The page of ``items`` that ``page_token`` starts (the first without one), at most
    ``max_results`` long, and the next page's token (None after the last page)."""
    start = decode_page_token(page_token)
    end = start + max_results
    return list(items[start:end]), encode_page_token(end) if end < len(items) else None
