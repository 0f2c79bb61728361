"""The SQL system of record: an async SQLAlchemy engine and the stores built on it.

URL:      sqlite+aiosqlite:///path/studio9.db   (edge default; WAL, foreign keys on)
          postgresql+psycopg://user:pass@host:5432/db?pool_size=10
          (``sqlite://`` and ``postgresql://`` / ``postgres://`` are accepted as shorthands)
Features: transactions · full-text search (SQLite FTS5 / PostgreSQL tsvector)
Extra:    cloud (psycopg, psycopg_pool) for PostgreSQL; SQLite needs nothing beyond the edge install

PostgreSQL pools: the job store (``postgresql``) keeps up to ``pool_size`` connections
(default 10) on psycopg's pool; the other stores share a SQLAlchemy pool of half that
(``max_overflow``, default 0, and ``pool_recycle`` apply to it). Connections open on demand
and are kept; callers beyond a full pool wait for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adapters.access_store.sql import SqlAccessStore
from adapters.audit_log.sql import SqlAuditLog
from adapters.catalog_store.sql import SqlCatalogStore
from adapters.config_store.sql import SqlConfigStore
from adapters.file_records.sql import SqlFileRecords
from adapters.job_store.sql import SqlJobStore
from adapters.job_store.sqlite import SqliteJobStore
from adapters.model_registry.sql import SqlModelRegistryStore
from adapters.sql.engine import DEFAULT_POOL_SIZE, normalise_url, pool_sizes, postgres_engine, sqlite_engine
from adapters.sql.sqlite_thread import SqliteThread
from adapters.stream_store.sql import SqlStreamBacklog, SqlStreamStates
from adapters.tracking_store.sql import SqlTrackingStore
from adapters.user_store.sql import SqlTokenStore, SqlUserStore
from adapters.worker_registry.sql import SqlWorkerRegistry
from studio9.backends import AdapterOptions
from studio9.database import Database
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL, redact

if TYPE_CHECKING:  # psycopg is the cloud extra's: imported when a PostgreSQL URL is opened
    from adapters.job_store.postgresql import PostgresJobStore
    from adapters.sql.pg_raw import PgRunner


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
        self.jobs: SqlJobStore | SqliteJobStore | PostgresJobStore
        if job_runner is not None:
            from adapters.job_store.postgresql import PostgresJobStore

            self.jobs = PostgresJobStore(job_runner)
        elif self._job_threads:
            self.jobs = SqliteJobStore(*self._job_threads)
        else:
            self.jobs = SqlJobStore(engine)
        self.files = SqlFileRecords(self.sessions)
        self.workers = SqlWorkerRegistry(self.sessions)
        self.config_settings = SqlConfigStore(self.sessions)
        self.stream_states = SqlStreamStates(self.sessions)
        self.stream_backlog = SqlStreamBacklog(self.sessions)
        self.catalog = SqlCatalogStore(self.sessions)
        self.access = SqlAccessStore(self.sessions)
        self.audit = SqlAuditLog(self.sessions)
        self.model_registry = SqlModelRegistryStore(self.sessions)
        self.tracking = SqlTrackingStore(self.sessions)

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        driver_url = normalise_url(url)
        if driver_url.startswith("sqlite+aiosqlite"):
            return cls(sqlite_engine(driver_url, options.timeout), url=url, timeout=options.timeout)
        pool = pool_sizes(url)
        # The job store's pool takes ``pool_size``; the other stores, light by comparison,
        # share a SQLAlchemy pool of half that.
        jobs_pool = pool.pop("pool_size", DEFAULT_POOL_SIZE)
        pool.setdefault("pool_size", max(2, jobs_pool // 2))
        engine = postgres_engine(driver_url, pool, options.timeout)
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
            from adapters.job_store.postgresql import PostgresJobStore  # loaded for PostgreSQL URLs only

            if isinstance(self.jobs, PostgresJobStore):
                await self.jobs.aclose()  # its batches in flight finish before the pool closes
            await self._job_runner.aclose()
        await self.engine.dispose()


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


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[Database] = SqlDatabase
