"""WorkerRegistry contract, run against every system-of-record adapter (memory, SQLite, PostgreSQL).

The registry is reached as the composition root hands it out (``database.workers``), never by
importing an adapter module.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest

from studio9.jobs.ports import WorkerInfo, WorkerRegistry

STARTED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def registry(database: Any) -> WorkerRegistry:
    workers: WorkerRegistry = database.workers
    return workers


def _worker(worker_id: str = "w-1", **changes: Any) -> WorkerInfo:
    values: dict[str, Any] = {
        "id": worker_id,
        "host": "host-a",
        "pid": 4321,
        "threads": 8,
        "started_at": STARTED,
        "seen_at": NOW,
    }
    values.update(changes)
    return WorkerInfo(**values)


async def test_an_empty_registry_has_no_live_workers(registry: WorkerRegistry) -> None:
    assert list(await registry.live(seen_after=datetime(2000, 1, 1, tzinfo=UTC))) == []


async def test_an_announced_worker_is_live_with_every_field_kept(registry: WorkerRegistry) -> None:
    worker = _worker(pid=2**31 - 1, host="build-07.example.internal", threads=1)
    await registry.announce(worker)
    live = await registry.live(seen_after=NOW - timedelta(seconds=30))
    assert list(live) == [worker]
    assert live[0].seen_at.microsecond == 123456  # heartbeats a few ms apart stay apart
    assert live[0].started_at.tzinfo is not None and live[0].seen_at.tzinfo is not None


async def test_live_is_ordered_by_host_then_id(registry: WorkerRegistry) -> None:
    for host, worker_id in [("host-b", "w-1"), ("host-a", "w-3"), ("host-c", "w-0"), ("host-a", "w-2")]:
        await registry.announce(_worker(worker_id, host=host))
    live = await registry.live(seen_after=NOW - timedelta(seconds=1))
    assert [(w.host, w.id) for w in live] == [
        ("host-a", "w-2"),
        ("host-a", "w-3"),
        ("host-b", "w-1"),
        ("host-c", "w-0"),
    ]


async def test_live_keeps_only_workers_seen_strictly_after_the_cut_off(registry: WorkerRegistry) -> None:
    cut_off = NOW - timedelta(seconds=30)
    await registry.announce(_worker("stale", seen_at=cut_off - timedelta(seconds=1)))
    await registry.announce(_worker("on-the-cut-off", seen_at=cut_off))
    await registry.announce(_worker("fresh", seen_at=cut_off + timedelta(microseconds=1)))
    await registry.announce(_worker("newest", seen_at=NOW))
    assert [w.id for w in await registry.live(seen_after=cut_off)] == ["fresh", "newest"]
    assert [w.id for w in await registry.live(seen_after=NOW)] == []
    earlier = cut_off - timedelta(hours=1)
    assert [w.id for w in await registry.live(seen_after=earlier)] == [
        "fresh",
        "newest",
        "on-the-cut-off",
        "stale",
    ]


async def test_announcing_again_refreshes_seen_at_and_threads_but_keeps_started_at(
    registry: WorkerRegistry,
) -> None:
    stale_seen = NOW - timedelta(minutes=10)
    await registry.announce(_worker(seen_at=stale_seen, threads=4))
    assert list(await registry.live(seen_after=NOW - timedelta(minutes=1))) == []
    # The same process announces itself on its next heartbeat; a started_at differing from the
    # first one's (a clock that moved) must not rewrite when the worker came up.
    later = NOW + timedelta(seconds=5)
    await registry.announce(_worker(seen_at=later, threads=16, started_at=STARTED + timedelta(hours=1)))
    live = await registry.live(seen_after=NOW - timedelta(minutes=1))
    assert list(live) == [_worker(seen_at=later, threads=16, started_at=STARTED)]
    every = await registry.live(seen_after=datetime(2000, 1, 1, tzinfo=UTC))
    assert [w.id for w in every] == ["w-1"]  # one row per worker, however often it announces


async def test_datetimes_in_other_zones_are_compared_as_instants(registry: WorkerRegistry) -> None:
    paris = timezone(timedelta(hours=2))
    seen_local = datetime(2026, 5, 1, 14, 0, tzinfo=paris)  # 12:00 UTC
    started_local = datetime(2026, 5, 1, 1, 0, tzinfo=timezone(timedelta(hours=-7)))  # 08:00 UTC
    await registry.announce(_worker(seen_at=seen_local, started_at=started_local))
    just_before_utc = datetime(2026, 5, 1, 11, 59, 59, tzinfo=UTC)
    (found,) = await registry.live(seen_after=just_before_utc)
    assert found.seen_at == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert found.started_at == STARTED
    assert found.seen_at.utcoffset() is not None
    assert list(await registry.live(seen_after=datetime(2026, 5, 1, 12, 0, tzinfo=UTC))) == []
    new_york = timezone(timedelta(hours=-4))
    assert len(await registry.live(seen_after=datetime(2026, 5, 1, 7, 59, tzinfo=new_york))) == 1
    assert list(await registry.live(seen_after=datetime(2026, 5, 1, 8, 0, tzinfo=new_york))) == []


async def test_forget_removes_only_that_worker(registry: WorkerRegistry) -> None:
    await registry.announce(_worker("w-1"))
    await registry.announce(_worker("w-2"))
    await registry.forget("w-1")
    assert [w.id for w in await registry.live(seen_after=NOW - timedelta(seconds=1))] == ["w-2"]


async def test_forget_is_idempotent_and_ignores_unknown_ids(registry: WorkerRegistry) -> None:
    await registry.announce(_worker("w-1"))
    await registry.forget("never-announced")
    await registry.forget("w-1")
    await registry.forget("w-1")
    assert list(await registry.live(seen_after=datetime(2000, 1, 1, tzinfo=UTC))) == []


async def test_a_forgotten_worker_that_announces_again_starts_afresh(registry: WorkerRegistry) -> None:
    await registry.announce(_worker(threads=2))
    await registry.forget("w-1")
    restarted = _worker(started_at=NOW, seen_at=NOW + timedelta(seconds=1), threads=6, pid=99)
    await registry.announce(restarted)
    assert list(await registry.live(seen_after=NOW - timedelta(seconds=1))) == [restarted]


async def test_workers_announcing_at_once_are_all_registered(registry: WorkerRegistry) -> None:
    workers = [_worker(f"w-{n:02d}", host=f"host-{n % 3}", pid=1000 + n) for n in range(12)]
    await asyncio.gather(*(registry.announce(w) for w in workers))
    await asyncio.gather(
        *(registry.announce(attrs.evolve(w, seen_at=NOW + timedelta(seconds=1))) for w in workers)
    )
    live = await registry.live(seen_after=NOW)
    assert [(w.host, w.id, w.pid) for w in live] == sorted((w.host, w.id, w.pid) for w in workers)
