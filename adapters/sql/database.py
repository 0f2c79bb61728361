"""The SQL system of record: an async SQLAlchemy engine and the stores built on it.

URL:      sqlite+aiosqlite:///path/studio9.db   (edge default; WAL, foreign keys on)
          postgresql+psycopg://user:pass@host:5432/db?pool_size=10
          (``sqlite://`` and ``postgresql://`` / ``postgres://`` are accepted as shorthands)
Features: transactions · full-text search (SQLite FTS5 / PostgreSQL tsvector)
Extra:    cloud (psycopg, psycopg_pool) for PostgreSQL; SQLite needs nothing beyond the edge install

PostgreSQL pools: the job store (``jobs_pg_store``) keeps up to ``pool_size`` connections
(default 10) on psycopg's pool; the other stores share a SQLAlchemy pool of half that
(``max_overflow``, default 0, and ``pool_recycle`` apply to it). Connections open on demand
and are kept; callers beyond a full pool wait for one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from adapters.sql.auth import SqlTokenStore, SqlUserStore
from adapters.sql.config_settings import SqlConfigStore
from adapters.sql.files import SqlFileRecords
from adapters.sql.jobs import SqlJobStore
from adapters.sql.jobs_sqlite import SqliteJobStore
from adapters.sql.jobs_sqlite_thread import SqliteThread
from adapters.sql.streams import SqlStreamBacklog, SqlStreamStates
from adapters.sql.workers import SqlWorkerRegistry
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL, redact

if TYPE_CHECKING:  # psycopg is the cloud extra's: imported when a PostgreSQL URL is opened
    from adapters.sql.jobs_pg_store import PgJobStore
    from adapters.sql.pg_raw import PgRunner

# Our own query parameters, taken off the URL before SQLAlchemy sees it (psycopg would
# otherwise pass them on to the server as connection options and fail).
_POOL_PARAMS = {"pool_size": int, "max_overflow": int, "pool_recycle": int}
#: PostgreSQL connections kept per process (override with ``?pool_size=``).
DEFAULT_POOL_SIZE = 10
_CACHED_STATEMENT_PARAMS = 200
#: A pooled connection idle this long is pinged before it is handed out.
IDLE_PING_SECONDS = 10.0
_SCHEME_ALIASES = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


class SqlDatabase:
    """One engine per process; sessions are short-lived, one per unit of work."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        url: AdapterURL,
        timeout: float = 5.0,
        job_runner: PgRunner | None = None,
    ) -> None:
        self.engine = engine
        self.url = url
        self.sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)
        self.users = SqlUserStore(self.sessions)
        self.tokens = SqlTokenStore(self.sessions)
        # The job core's hot path: on an SQLite file, connections of its own on threads of
        # its own, one that writes and one that reads.
        # On PostgreSQL, psycopg without SQLAlchemy in between (``pg_raw``).
        self._job_threads = _sqlite_job_threads(engine, timeout)
        self._job_runner = job_runner
        self.jobs: SqlJobStore | SqliteJobStore | PgJobStore
        if job_runner is not None:
            from adapters.sql.jobs_pg_store import PgJobStore

            self.jobs = PgJobStore(job_runner)
        elif self._job_threads:
            self.jobs = SqliteJobStore(*self._job_threads)
        else:
            self.jobs = SqlJobStore(engine)
        self.files = SqlFileRecords(self.sessions)
        self.workers = SqlWorkerRegistry(self.sessions)
        self.config_settings = SqlConfigStore(self.sessions)
        self.stream_states = SqlStreamStates(self.sessions)
        self.stream_backlog = SqlStreamBacklog(self.sessions)

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        driver_url = normalise_url(url)
        if driver_url.startswith("sqlite+aiosqlite"):
            return cls(_sqlite_engine(driver_url, options.timeout), url=url, timeout=options.timeout)
        pool = _pool_sizes(url)
        # The job store's pool takes ``pool_size``; the other stores, light by comparison,
        # share a SQLAlchemy pool of half that.
        jobs_pool = pool.pop("pool_size", DEFAULT_POOL_SIZE)
        pool.setdefault("pool_size", max(2, jobs_pool // 2))
        engine = _postgres_engine(driver_url, pool, options.timeout)
        conninfo = sa.engine.make_url(driver_url).set(drivername="postgresql")
        try:
            from adapters.sql.pg_raw import PgRunner
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"PostgreSQL needs the optional dependency {exc.name!r}; install studio9[cloud]",
                setting="STUDIO9_DATABASE_URL",
            ) from exc
        runner = PgRunner(
            conninfo.render_as_string(hide_password=False), size=jobs_pool, timeout=options.timeout
        )
        return cls(engine, url=url, timeout=options.timeout, job_runner=runner)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    async def ping(self) -> None:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except (SQLAlchemyError, OSError) as exc:
            raise BackendUnavailable(f"database unreachable: {redact(str(exc.__cause__ or exc))}") from exc

    async def aclose(self) -> None:
        for thread in self._job_threads:
            await thread.aclose()
        if self._job_runner is not None:
            from adapters.sql.jobs_pg_store import PgJobStore  # loaded for PostgreSQL URLs only

            if isinstance(self.jobs, PgJobStore):
                await self.jobs.aclose()  # its batches in flight finish before the pool closes
            await self._job_runner.aclose()
        await self.engine.dispose()


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


def _sqlite_engine(driver_url: str, timeout: float) -> AsyncEngine:
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
        cursor.close()

    return engine


def _sqlite_job_threads(engine: AsyncEngine, timeout: float) -> tuple[SqliteThread, ...]:
    """The job store's writer and reader threads for an SQLite file; none for other databases,
    for in-memory or URI-named SQLite (another connection may not see the same database) and
    for SQLite older than 3.35."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or not SqliteThread.supported() or "uri" in engine.url.query:
        return ()
    if database in ("", ":memory:"):
        return ()
    return (
        SqliteThread(database, timeout=timeout, name="studio9-jobs-writer"),
        SqliteThread(database, timeout=timeout, name="studio9-jobs-reader"),
    )


def _pool_sizes(url: AdapterURL) -> dict[str, int]:
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


def _postgres_engine(driver_url: str, pool: dict[str, int], timeout: float) -> AsyncEngine:
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
    _ping_when_idle(engine)
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


def _ping_when_idle(engine: AsyncEngine) -> None:
    """Check a pooled connection before use only when it has idled ``IDLE_PING_SECONDS``.

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
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # any failure means: not usable
            raise sa.exc.DisconnectionError("idle connection is gone") from exc
        if not alive:
            # The pool discards this connection and checks out (or opens) another.
            raise sa.exc.DisconnectionError("idle connection is gone")
