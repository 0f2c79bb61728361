"""SQLAlchemy engines for the system of record: URL normalisation, SQLite pragmas, PostgreSQL pools.

Shared by every SQL adapter of the system of record (``adapters.database.sql`` builds the
engine; migrations read the same URLs).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from studio9.errors import ConfigError
from studio9.urls import AdapterURL

# Our own query parameters, taken off the URL before SQLAlchemy sees it (psycopg would
# otherwise pass them on to the server as connection options and fail).
_POOL_PARAMS = {"pool_size": int, "max_overflow": int, "pool_recycle": int}


#: PostgreSQL connections kept per process (override with ``?pool_size=``).
DEFAULT_POOL_SIZE = 10


_CACHED_STATEMENT_PARAMS = 200


#: Each SQLite connection's page cache, in KiB.
SQLITE_CACHE_KIB = 16_384


#: A pooled connection idle this long is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0


_SCHEME_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


def normalise_url(url: AdapterURL) -> str:
    """The URL with the scheme SQLAlchemy wants and our own parameters removed."""
    raw = url.with_scheme(_SCHEME_ALIASES.get(url.scheme, url.scheme))
    head, _, query = raw.partition("?")
    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] not in _POOL_PARAMS]
    return head + ("?" + "&".join(kept) if kept else "")


def sqlite_file(driver_url: str) -> Path | None:
    """The file of a SQLite URL, or None (in memory). ``?uri=true`` names it ``file:<path>``."""
    parsed = sa.engine.make_url(driver_url)
    database = parsed.database
    if not database or database == ":memory:":
        return None
    if parsed.query.get("uri") == "true":
        database = database.removeprefix("file:").partition("?")[0]
        if not database or database == ":memory:" or "mode=memory" in str(parsed):
            return None
    return Path(database)


def sqlite_engine(driver_url: str, timeout: float) -> AsyncEngine:
    if (database := sqlite_file(driver_url)) is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(driver_url, connect_args={"timeout": timeout})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _: Any) -> None:
        # WAL lets the API and the in-process workers read while one of them writes;
        # SQLite leaves foreign keys off unless asked, per connection.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        # A page cache of 16 MiB (the default is 2 MiB) keeps a run search's working set (a page of
        # runs' rows, the index pages) between calls; it fills only as pages are read, and the
        # pool has up to 15 connections, so 64 MiB would risk a lot of memory for no gain measured.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    return engine


def pool_sizes(url: AdapterURL) -> dict[str, int]:
    pool: dict[str, int] = {}
    for name, kind in _POOL_PARAMS.items():
        if name in url.query:
            try:
                pool[name] = kind(url.query[name])
            except ValueError:
                raise ConfigError(f"{name} must be an integer", setting="STUDIO9_DATABASE_URL") from None
            if pool[name] < (1 if name == "pool_size" else 0):
                raise ConfigError(f"{name} must be at least 1", setting="STUDIO9_DATABASE_URL")
    return pool


def postgres_engine(
    driver_url: str, pool: dict[str, int], timeout: float, *, idle_ping_seconds: float = IDLE_PING_SECONDS
) -> AsyncEngine:
    # Connections are opened lazily and then KEPT: SQLAlchemy closes an overflow connection as
    # soon as it is returned, so a load above pool_size would open (fork a PostgreSQL backend)
    # and close one per statement, which measured at half the throughput. Callers beyond the
    # pool wait for a connection instead (pool_timeout), which also caps what PostgreSQL sees.
    pool.setdefault("max_overflow", 0)
    engine = create_async_engine(
        driver_url,
        connect_args={"connect_timeout": max(1, int(timeout))},
        **pool,
    )
    _ping_when_idle(engine, idle_ping_seconds)
    _cache_many_parameter_statements()
    return engine


def _cache_many_parameter_statements() -> None:
    """Let psycopg cache the parsing of statements with up to 200 parameters (its default is 50).

    psycopg re-splits every statement with more parameters at its placeholders on each call,
    to spare its cache the one-off statements ORMs generate. The job store's statements have
    60-100 parameters (a job's every column with its event and outbox rows) but come in a
    handful of fixed shapes, so caching them is right; re-parsing was ~7% of a worker's CPU.
    """
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_PARAMS", 0) < _CACHED_STATEMENT_PARAMS:
        _queries.MAX_CACHED_STATEMENT_PARAMS = _CACHED_STATEMENT_PARAMS


def _ping_when_idle(engine: AsyncEngine, idle_ping_seconds: float) -> None:
    """Check a pooled connection before use only when it has idled ``idle_ping_seconds``
    (``IDLE_PING_SECONDS`` unless a test says otherwise).

    ``pool_pre_ping`` would add a round trip to every checkout (most of the job store's
    calls are one statement); a connection in steady use is known to be alive, and one
    that idled may have been dropped by a restart, a failover or a firewall.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(_: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_ping_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure means: not usable
            raise sa.exc.DisconnectionError("idle connection is gone") from exc
        if not alive:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError("idle connection is gone")
