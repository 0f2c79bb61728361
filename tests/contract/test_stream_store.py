"""StreamStates and StreamBacklog contract on every system-of-record adapter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.messaging.streams.domain import BatchStatus, Item, StreamNotFound

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
SID = "01jstream0000000000000000a"
LONG_AGO = T0 - timedelta(hours=1)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A migrated, empty system of record, opened by URL (migrations run off the event loop)."""
    url = {"memory": "memory://", "sqlite": f"sqlite+aiosqlite:///{tmp_path}/streams.db"}.get(request.param)
    if url is None:
        url = request.getfixturevalue("postgres_url")
    await asyncio.to_thread(
        bootstrap.migrate, Settings(database_url=url, data_dir=tmp_path, sink_url="memory://")
    )
    async with bootstrap.open_adapter(
        bootstrap.DATABASES, url, setting="STUDIO9_DATABASE_URL", options=AdapterOptions(data_dir=tmp_path)
    ) as adapter:
        yield adapter


def _items(*keys: str) -> list[Item]:
    return [Item.of({"key": k, "n": i}) for i, k in enumerate(keys)]


async def _stream(database: Any, stream_id: str = SID) -> tuple[Any, Any]:
    await database.stream_states.ensure(stream_id, "owner1", T0)
    await database.stream_states.ensure(stream_id, "someone-else", T0)  # idempotent: the first stays
    return database.stream_states, database.stream_backlog


async def test_items_are_deduplicated_by_key_and_counted(database: Any) -> None:
    states, backlog = await _stream(database)
    first = await backlog.add(SID, _items("a", "b", "a"), T0)
    second = await backlog.add(SID, _items("b", "c"), T0)
    assert (first.accepted, first.duplicates, second.accepted, second.duplicates) == (2, 1, 1, 1)
    state = await states.get(SID)
    assert (state.owner_id, state.received, state.duplicates, state.pending) == ("owner1", 3, 2, 3)
    with pytest.raises(StreamNotFound):
        await backlog.add("01jstream0000000000000000z", _items("a"), T0)


async def test_batches_form_when_full_or_when_the_oldest_item_waited_long_enough(database: Any) -> None:
    states, backlog = await _stream(database)
    await backlog.add(SID, _items("a", "b", "c"), T0)
    assert await backlog.form(SID, limit=5, due_before=LONG_AGO, per_item=False, at=T0) == 0
    assert await backlog.form(SID, limit=2, due_before=LONG_AGO, per_item=False, at=T0) == 1  # full
    assert await backlog.form(SID, limit=2, due_before=LONG_AGO, per_item=False, at=T0) == 0  # 1 left
    later = T0 + timedelta(seconds=5)
    assert await backlog.form(SID, limit=2, due_before=later, per_item=False, at=later) == 1  # due
    assert await backlog.form(SID, limit=2, due_before=later, per_item=False, at=later) == 0  # none left
    open_batches = await backlog.open_batches(SID, limit=10)
    assert [[p["key"] for p in b.items] for b in open_batches] == [["a", "b"], ["c"]]
    assert [b.item_count for b in open_batches] == [2, 1]
    assert len({b.job_id for b in open_batches}) == 2
    assert all(b.status is BatchStatus.SUBMITTING for b in open_batches)
    state = await states.get(SID)
    assert (state.batched, state.pending) == (3, 0)


async def test_per_item_makes_one_batch_per_item(database: Any) -> None:
    _, backlog = await _stream(database)
    await backlog.add(SID, _items("a", "b", "c"), T0)
    assert await backlog.form(SID, limit=3, due_before=LONG_AGO, per_item=True, at=T0) == 3
    batches = await backlog.open_batches(SID, limit=10)
    assert [b.items[0]["key"] for b in batches] == ["a", "b", "c"]


async def test_finishing_a_batch_happens_once_and_is_counted(database: Any) -> None:
    states, backlog = await _stream(database)
    await backlog.add(SID, _items("a", "b"), T0)
    await backlog.form(SID, limit=1, due_before=LONG_AGO, per_item=True, at=T0)
    await backlog.form(SID, limit=1, due_before=LONG_AGO, per_item=True, at=T0)
    ok, bad = await backlog.open_batches(SID, limit=10)
    assert await backlog.finish(SID, ok.id, error=None, at=T0)
    assert not await backlog.finish(SID, ok.id, error=None, at=T0)
    assert await backlog.finish(SID, bad.id, error="invalid params", at=T0)
    assert await backlog.open_batches(SID, limit=10) == []
    listed = await backlog.batches(SID, limit=10, before=None)
    assert [(b.id, b.status, b.error) for b in listed] == [
        (bad.id, BatchStatus.FAILED, "invalid params"),
        (ok.id, BatchStatus.SUBMITTED, None),
    ]
    assert [b.id for b in await backlog.batches(SID, limit=10, before=bad.id)] == [ok.id]
    state = await states.get(SID)
    assert (state.jobs_submitted, state.failed) == (1, 1)


async def test_the_lease_is_exclusive_until_it_expires(database: Any) -> None:
    states, _ = await _stream(database)
    until = T0 + timedelta(seconds=30)
    assert await states.lease(SID, "runner-a", now=T0, until=until)
    assert not await states.lease(SID, "runner-b", now=T0 + timedelta(seconds=10), until=until)
    assert await states.lease(SID, "runner-a", now=T0 + timedelta(seconds=10), until=until)  # renewal
    expired = until + timedelta(seconds=1)
    assert await states.lease(SID, "runner-b", now=expired, until=expired + timedelta(seconds=30))
    assert not await states.lease(SID, "runner-a", now=expired, until=expired + timedelta(seconds=30))
    await states.release(SID, "runner-a")  # not its lease: nothing happens
    assert (await states.get(SID)).lease_owner == "runner-b"
    await states.release(SID, "runner-b")
    assert await states.lease(SID, "runner-a", now=expired, until=expired + timedelta(seconds=30))
    assert not await states.lease("01jstream0000000000000000z", "runner-a", now=T0, until=until)


async def test_pause_flag_and_delete(database: Any) -> None:
    states, backlog = await _stream(database)
    assert await states.set_paused(SID, True, T0)
    assert (await states.get(SID)).paused
    await backlog.add(SID, _items("a"), T0)
    await backlog.form(SID, limit=1, due_before=LONG_AGO, per_item=False, at=T0)
    await states.delete(SID)
    await states.delete(SID)  # idempotent
    assert await states.get(SID) is None
    assert await backlog.batches(SID, limit=10, before=None) == []
    assert not await states.set_paused(SID, False, T0)
    await states.ensure(SID, "owner1", T0)  # a stream made again under that id starts empty
    assert (await backlog.add(SID, _items("a"), T0)).accepted == 1


async def test_set_owner_changes_only_that_streams_owner(database: Any) -> None:
    states, backlog = await _stream(database)
    other = "01jstream0000000000000000b"
    await states.ensure(other, "owner1", T0)
    await backlog.add(SID, _items("a"), T0)
    assert await states.set_owner(SID, "owner2", T0 + timedelta(seconds=1))
    moved = await states.get(SID)
    assert (moved.owner_id, moved.received, moved.updated_at) == ("owner2", 1, T0 + timedelta(seconds=1))
    assert (await states.get(other)).owner_id == "owner1"
    assert not await states.set_owner("01jstream0000000000000000z", "owner2", T0)
