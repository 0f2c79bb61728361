"""ConfigStore contract on every system-of-record adapter."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from studio9.config.domain import ConfigSetting, SettingNotFound

NOW = datetime(2026, 4, 1, tzinfo=UTC)


def _setting(name: str = "retries", value: Any = None, **changes: Any) -> ConfigSetting:
    values: dict[str, Any] = {
        "service": "jobs",
        "name": name,
        "value": {"n": 3} if value is None else value,
        "tags": ("a",),
        "created_at": NOW,
        "updated_at": NOW,
        "updated_by": "u1",
    }
    values.update(changes)
    return ConfigSetting(**values)


async def test_put_creates_then_replaces_with_increasing_versions(database: Any) -> None:
    store = database.config_settings
    first = await store.put(_setting(), expected_version=None)
    assert first is not None and first.version == 1
    second = await store.put(_setting(value=[1, "x", None]), expected_version=1)
    assert second is not None and second.version == 2
    stored = await store.get("jobs", "retries")
    assert (stored.value, stored.version, stored.tags) == ([1, "x", None], 2, ("a",))


async def test_expected_version_is_a_compare_and_set(database: Any) -> None:
    store = database.config_settings
    assert await store.put(_setting(), expected_version=0) is not None
    assert await store.put(_setting(), expected_version=0) is None  # already exists
    assert await store.put(_setting(), expected_version=5) is None
    results = await asyncio.gather(*(store.put(_setting(value=i), expected_version=1) for i in range(5)))
    assert sum(r is not None for r in results) == 1


async def test_delete_keeps_history_and_list_filters_by_tag(database: Any) -> None:
    store = database.config_settings
    await store.put(_setting("a", tags=("x",)), expected_version=None)
    await store.put(_setting("b", tags=("x", "y")), expected_version=None)
    await store.put(_setting("c", tags=()), expected_version=None)
    assert [s.name for s in await store.list("jobs", tag="x", limit=10, after=None)] == ["a", "b"]
    assert [s.name for s in await store.list("jobs", tag=None, limit=10, after="a")] == ["b", "c"]
    assert await store.list("other", tag=None, limit=10, after=None) == []
    assert await store.delete("jobs", "a", expected_version=2, by="u2") is False
    assert await store.delete("jobs", "a", expected_version=1, by="u2") is True
    with pytest.raises(SettingNotFound):
        await store.get("jobs", "a")
    history = await store.history("jobs", "a", limit=10)
    assert [(v.version, v.deleted, v.by) for v in history] == [(2, True, "u2"), (1, False, "u1")]
