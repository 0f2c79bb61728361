"""Group commit on PostgreSQL (``adapters.sql.pg_batch``): job changes that arrive together
share one transaction, and each caller still gets the answer it would have had alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg
import pytest
import sqlalchemy as sa

from adapters.sql import pg_batch, pg_raw
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config.settings import Settings
from studio9.errors import BackendUnavailable
from studio9.ids import new_id
from studio9.jobs.domain import Claim, Job, JobExists, JobStatus

pytestmark = pytest.mark.service("postgres")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
async def database(postgres_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    bootstrap.migrate(Settings(database_url=postgres_url, data_dir=tmp_path))
    async with bootstrap.open_adapter(
        bootstrap.DATABASES,
        postgres_url,
        setting="STUDIO9_DATABASE_URL",
        options=AdapterOptions(data_dir=tmp_path),
    ) as adapter:
        yield adapter


def _job(job_id: str | None = None) -> Job:
    return Job(
        id=job_id or new_id(), owner_id="u1", type="system.noop", params={}, status=JobStatus.QUEUED,
        submitted_at=NOW, queued_at=NOW,
    )  # fmt: skip


def _claim() -> Claim:
    return Claim(
        worker="w1", at=NOW, lease_expires_at=NOW + timedelta(seconds=30), deadlines={"system.noop": NOW}
    )


def _libpq(postgres_url: str) -> str:
    """The test database's URL as psycopg takes it (without SQLAlchemy's driver name)."""
    return postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _transactions(postgres_url: str) -> int:
    """Transactions committed in the test's database so far."""
    with psycopg.connect(_libpq(postgres_url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        row = conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        return int(row.fetchone()[0])  # type: ignore[index]


async def test_changes_that_arrive_together_share_a_transaction(database: Any, postgres_url: str) -> None:
    store = database.jobs
    await store.add(_job(), [])  # opens the pool
    before = _transactions(postgres_url)
    # When 30 jobs are added at once
    jobs = [_job() for _ in range(30)]
    await asyncio.gather(*(store.add(job, []) for job in jobs))
    # Then all of them are stored, in far fewer transactions than jobs
    stored = await asyncio.gather(*(store.get(job.id) for job in jobs))
    assert [job.id for job in stored] == [job.id for job in jobs]
    assert _transactions(postgres_url) - before < 15


async def test_a_failing_change_gets_its_error_and_the_others_are_written(database: Any) -> None:
    store = database.jobs
    taken = _job()
    await store.add(taken, [])
    for _ in range(6):  # past psycopg's prepare threshold: the statements are prepared
        await asyncio.gather(*(store.add(_job(), []) for _ in range(3)))
    # When a batch holds a duplicate job id among new ones
    fresh = [_job() for _ in range(5)]
    results = await asyncio.gather(
        *(store.add(job, []) for job in [*fresh[:2], _job(taken.id), *fresh[2:]]), return_exceptions=True
    )
    # Then only the duplicate fails, with JobExists, and every other job is stored
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["JobExists"] + ["NoneType"] * 3
    assert {j.id for j in await asyncio.gather(*(store.get(job.id) for job in fresh))} == {
        j.id for j in fresh
    }
    # And the connection that carried the failed batch does not break later ones
    for _ in range(3):
        await asyncio.gather(*(store.add(_job(), []) for _ in range(10)))
    with pytest.raises(JobExists):
        await store.add(_job(taken.id), [])


async def test_two_claims_of_one_job_at_once_leave_one_winner(database: Any) -> None:
    store = database.jobs
    job = _job()
    await store.add(job, [])
    # When two deliveries of one job claim it at once
    claimed, other = await asyncio.gather(store.claim(job.id, _claim()), store.claim(job.id, _claim()))
    # Then exactly one claim wins (the second sees it running)
    assert (claimed is None) != (other is None)
    winner = claimed or other
    assert winner is not None and winner.status is JobStatus.RUNNING and winner.attempt == 1
    assert (await store.get(job.id)).version == winner.version


async def test_two_changes_of_one_job_in_one_batch_apply_in_the_order_they_came(database: Any) -> None:
    store = database.jobs
    job, other = _job(), _job()
    await asyncio.gather(store.add(job, []), store.add(other, []))
    current = await store.get(job.id)
    first = attrs.evolve(current, message="first")
    second = attrs.evolve(current, message="second", version=current.version + 1)
    # When a change and the change made from it are queued together, among another job's
    saved = await asyncio.gather(
        store.save(first, expected_version=current.version),
        store.save(attrs.evolve(other, message="x"), expected_version=other.version),
        store.save(second, expected_version=current.version + 1),
    )
    # Then both apply, the second on top of the first
    assert all(s is not None for s in saved)
    stored = await store.get(job.id)
    assert (stored.message, stored.version) == ("second", current.version + 2)


async def test_a_lost_database_fails_every_waiting_change(postgres_url: str) -> None:
    runner = pg_raw.PgRunner(_libpq(postgres_url), size=2, timeout=5.0)

    async def unreachable(runner: pg_raw.PgRunner, batch: list[Any]) -> list[pg_batch.Row]:
        raise BackendUnavailable("job database unavailable: OperationalError")

    writes = pg_batch.GroupCommit(runner, together=unreachable)
    insert = sa.text("INSERT INTO marks (id) VALUES (:id) RETURNING id")
    try:
        async with runner.connection() as conn:
            await conn.execute("CREATE TABLE marks (id text PRIMARY KEY)")
        # When the database is lost under a batch of writes
        keys = [f"m{n}" for n in range(8)]
        results = await asyncio.gather(
            *(writes.write(insert, {"id": key}, key=key) for key in keys), return_exceptions=True
        )
        # Then every write of the batch fails with BackendUnavailable (none replayed, none stored)
        assert all(isinstance(r, BackendUnavailable) for r in results)
        async with runner.connection() as conn:
            assert await (await conn.execute("SELECT count(*) FROM marks")).fetchone() == (0,)
    finally:
        await runner.aclose()


async def test_a_failed_batch_leaves_no_stale_prepared_statement(postgres_url: str) -> None:
    # psycopg prepares a statement on its 5th run on a connection. When that run is in a
    # batch that fails before reaching it, the server never saw the PREPARE: the next run
    # must not rely on it (the batch's connection is replaced).
    runner = pg_raw.PgRunner(_libpq(postgres_url), size=1, timeout=5.0)
    writes = pg_batch.GroupCommit(runner)
    insert = sa.text("INSERT INTO marks (id) VALUES (:id) RETURNING id")
    try:
        async with runner.connection() as conn:
            await conn.execute("CREATE TABLE marks (id text PRIMARY KEY)")
        for key in ("m1", "m2", "m3", "m4"):  # 4 runs: the next is the one that prepares
            await writes.write(insert, {"id": key}, key=key)
        # When a batch fails at its first statement (keys run in order: "a" first)
        results = await asyncio.gather(
            writes.write(insert, {"id": "m1"}, key="a"),
            writes.write(insert, {"id": "m5"}, key="b"),
            return_exceptions=True,
        )
        # Then the duplicate fails alone and the other is written when replayed
        assert isinstance(results[0], psycopg.errors.UniqueViolation)
        assert results[1] == ("m5",)
        # And the statement keeps working
        assert await writes.write(insert, {"id": "m6"}, key="m6") == ("m6",)
    finally:
        await runner.aclose()


async def test_closing_the_database_lets_batches_in_flight_finish(database: Any) -> None:
    store = database.jobs
    await store.add(_job(), [])  # opens the pool
    jobs = [_job() for _ in range(10)]
    adding = [asyncio.create_task(store.add(job, [])) for job in jobs]
    await asyncio.sleep(0)  # queued, and a flusher started
    # When the process closes its database while the batch is being written
    await database.aclose()
    # Then every caller gets its answer: the batch was written, not cut off
    assert await asyncio.gather(*adding) == [None] * len(jobs)
