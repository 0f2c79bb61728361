"""ConfigService's cache: what change events and gaps make it forget, and the read/invalidate race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.config_store.memory import MemoryConfigStore
from studio9.auth.domain import Principal, Role
from studio9.config.domain import ConfigSetting
from studio9.config.service import ConfigService
from studio9.messaging.domain import Event

ADMIN = Principal(
    user_id="admin",
    username="admin",
    role=Role.ADMIN,
    token_id="t",
    token_expires_at=datetime.now(UTC) + timedelta(days=1),
)


def change(topic: str, payload: dict[str, Any]) -> Event:
    return Event(topic=topic, subject_id="x", version=1, at=datetime.now(UTC), payload=payload)


async def cached_after_hidden_write(service: ConfigService, value: Any) -> Any:
    """Write ``value`` behind the service's back (as another process would), then read the cache."""
    current = await service.store.get("jobs", "x")
    await service.store.put(
        ConfigSetting(
            service="jobs",
            name="x",
            value=value,
            tags=(),
            version=current.version + 1,
            created_at=current.created_at,
            updated_at=datetime.now(UTC),
            updated_by="other",
        ),
        expected_version=current.version,
    )
    return await service.cached("jobs", "x")


async def test_a_change_event_drops_only_that_setting() -> None:
    service = ConfigService(MemoryConfigStore(), cache_seconds=300)
    await service.put(ADMIN, "jobs", "x", 1, [])
    await service.put(ADMIN, "jobs", "y", 1, [])
    assert (await service.cached("jobs", "x"), await service.cached("jobs", "y")) == (1, 1)
    assert await cached_after_hidden_write(service, 2) == 1  # the cache holds
    service.on_event(change("job.completed", {"service": "jobs", "name": "x"}))
    assert await service.cached("jobs", "x") == 1  # not a config event
    service.on_event(change("config.updated", {"service": "jobs", "name": "x", "version": 2}))
    assert await service.cached("jobs", "x") == 2


async def test_a_gap_or_an_unreadable_config_event_drops_everything() -> None:
    service = ConfigService(MemoryConfigStore(), cache_seconds=300)
    await service.put(ADMIN, "jobs", "x", 1, [])
    assert await service.cached("jobs", "x") == 1
    assert await cached_after_hidden_write(service, 2) == 1
    service.on_event(change("config.updated", {"name": 7}))
    assert await service.cached("jobs", "x") == 2
    assert await cached_after_hidden_write(service, 3) == 2
    service.on_gap()
    assert await service.cached("jobs", "x") == 3


class HeldReads(MemoryConfigStore):
    """A config store whose reads, while ``held``, wait for ``release`` after reading."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False
        self.reading, self.release = asyncio.Event(), asyncio.Event()

    async def get(self, service: str, name: str) -> ConfigSetting:
        answer = await super().get(service, name)  # the old value, read before the change…
        if self.held:
            self.reading.set()
            await self.release.wait()
        return answer


async def test_a_read_overtaken_by_an_invalidation_is_not_cached() -> None:
    store = HeldReads()
    service = ConfigService(store, cache_seconds=300)
    await service.put(ADMIN, "jobs", "x", 1, [])
    store.held = True
    read = asyncio.create_task(service.cached("jobs", "x"))
    await store.reading.wait()
    # …whose event arrives while the read is still on its way back
    service.on_event(change("config.updated", {"service": "jobs", "name": "x"}))
    store.release.set()
    assert await read == 1  # that caller gets what it read
    store.held = False
    assert await cached_after_hidden_write(service, 2) == 2  # but it was not kept
