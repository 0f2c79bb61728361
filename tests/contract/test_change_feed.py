"""The outbox's drain lock (``ChangeFeed.draining``) on every system-of-record adapter."""

from __future__ import annotations

from typing import Any

from studio9.metadata.ports import ChangeFeed


def _shared_between_processes(database: Any) -> bool:
    return getattr(database, "dialect", None) == "postgresql"


async def test_one_drainer_at_a_time_and_the_lock_is_released_on_exit(database: Any) -> None:
    feed: ChangeFeed = database.jobs
    async with feed.draining() as first:
        assert first
        async with feed.draining() as second:
            # PostgreSQL: another process (here: another connection) must wait its turn;
            # in-process feeds have one drainer per process anyway.
            assert second is not _shared_between_processes(database)
    async with feed.draining() as again:
        assert again


async def test_a_failed_drain_releases_the_lock(database: Any) -> None:
    feed: ChangeFeed = database.jobs
    try:
        async with feed.draining() as mine:
            assert mine
            raise RuntimeError("indexing failed")
    except RuntimeError:
        pass
    async with feed.draining() as again:
        assert again
