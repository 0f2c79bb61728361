"""The PostgreSQL pools (SQLAlchemy's, and the job store's psycopg one): connections are kept,
and a connection that idled is checked before use."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.sql import engine as sql_engine
from adapters.sql import pg_raw
from studio9 import bootstrap
from studio9.backends import AdapterOptions

pytestmark = pytest.mark.service("postgres")


@pytest.fixture
async def database(postgres_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    options = AdapterOptions(data_dir=tmp_path)
    async with bootstrap.open_adapter(
        bootstrap.DATABASES, postgres_url, setting="STUDIO9_DATABASE_URL", options=options
    ) as adapter:
        yield adapter


@contextlib.asynccontextmanager
async def _engine(postgres_url: str, *, idle_ping_seconds: float) -> AsyncIterator[AsyncEngine]:
    """A PostgreSQL engine as the database adapter builds it, pinging after ``idle_ping_seconds``."""
    engine = sql_engine.postgres_engine(postgres_url, {}, 5.0, idle_ping_seconds=idle_ping_seconds)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one())


def _terminate(postgres_server: str, pid: int) -> None:
    """Kill the server process ``pid`` and wait until it is gone (the kill is asynchronous)."""
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):
            if conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is None:
                return
            time.sleep(0.01)
    raise AssertionError(f"server process {pid} did not exit")


async def test_a_connection_killed_while_idle_is_replaced_before_use(
    postgres_url: str, postgres_server: str
) -> None:
    async with _engine(postgres_url, idle_ping_seconds=0.0) as engine:
        # Given a pooled connection whose server process is killed while it idles
        pid = await _backend_pid(engine)
        _terminate(postgres_server, pid)
        # Then the next use gets a working connection, on a new server process
        assert await _backend_pid(engine) != pid


async def test_a_connection_in_steady_use_is_not_pinged(postgres_url: str, postgres_server: str) -> None:
    # The counterpart: without the idle check a dead connection is handed out and fails,
    # which is what the check above prevents (and shows that it, not luck, did).
    async with _engine(postgres_url, idle_ping_seconds=3600.0) as engine:
        pid = await _backend_pid(engine)
        _terminate(postgres_server, pid)
        with pytest.raises(sa.exc.OperationalError):
            await _backend_pid(engine)
        assert await _backend_pid(engine) != pid  # and the pool recovers on the next checkout


async def test_connections_are_kept_between_uses(database: Any) -> None:
    pids = {await _backend_pid(database.engine) for _ in range(5)}
    assert len(pids) == 1
    assert database.engine.pool.size() == sql_engine.DEFAULT_POOL_SIZE // 2


async def _job_store_pid(runner: pg_raw.PgRunner) -> int:
    async with runner.connection() as conn:
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        return int(row[0])


async def test_the_job_store_replaces_connections_killed_while_idle(
    postgres_url: str, postgres_server: str
) -> None:
    libpq = postgres_url.replace("postgresql+psycopg://", "postgresql://", 1)
    runner = pg_raw.PgRunner(libpq, size=10, timeout=5.0, idle_ping_seconds=0.0)
    try:
        # Given every connection of the job store's pool, killed while it idles
        pids = {await _job_store_pid(runner) for _ in range(3)}
        for pid in pids:
            _terminate(postgres_server, pid)
        # Then the store's next use works, on a new server process
        assert await _job_store_pid(runner) not in pids
    finally:
        await runner.aclose()
