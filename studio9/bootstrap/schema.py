"""Schemas: bring the system of record, the search index and the prediction sink to the version
this release needs (``studio9 migrate``), or check that they are (``studio9 api``, ``worker``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from studio9.backends import AdapterOptions
from studio9.bootstrap.opening import DATABASES, INDEXES, SINKS, adapter_class
from studio9.config.settings import Settings
from studio9.errors import BackendUnavailable, ConfigError
from studio9.urls import AdapterURL

log = structlog.get_logger()


def migrate(settings: Settings, *, revision: str = "head", downgrade: bool = False) -> None:
    """Bring the system-of-record schema to ``revision`` (no-op for memory://), then the index's
    and the prediction sink's own.

    Blocks until done; from async code it runs its own event loop on a thread of its own.
    """
    url = AdapterURL.parse(settings.database_url, setting="STUDIO9_DATABASE_URL")
    adapter_class(DATABASES, url, setting="STUDIO9_DATABASE_URL")  # fail early on a bad scheme/extra
    if url.scheme != "memory":
        from adapters.sql import migrations

        migrations.run(url, revision=revision, downgrade=downgrade)
    if not downgrade:
        _migrate_index(settings)
        _migrate_sink(settings)


def _migrate_sink(settings: Settings) -> None:
    """Create the prediction sink's tables (every sink owns its DDL; idempotent, concurrency-safe).

    Here rather than in ``build``: ``studio9 api`` replicas then never race to run DDL, and the
    Redshift sink, which only creates its table on the first load, answers queries before that.
    """
    url = AdapterURL.parse(settings.sink_url, setting="STUDIO9_SINK_URL")
    cls = adapter_class(SINKS, url, setting="STUDIO9_SINK_URL")
    options = AdapterOptions(timeout=settings.backend_timeout, data_dir=settings.data_dir)

    async def run() -> None:
        sink = cls.from_url(url, options)
        try:
            await sink.ensure_schema()
        except BackendUnavailable as exc:
            raise ConfigError(f"cannot reach {url}: {exc.message}", setting="STUDIO9_SINK_URL") from None
        finally:
            await sink.aclose()

    _run_to_completion(run)


def _migrate_index(settings: Settings) -> None:
    """Create or upgrade the search index's own schema (opensearch: versioned index + alias)."""
    url = AdapterURL.parse(settings.index_url, setting="STUDIO9_INDEX_URL")
    cls = adapter_class(INDEXES, url, setting="STUDIO9_INDEX_URL")
    if not hasattr(cls, "ensure_schema"):
        return  # memory:// keeps nothing; sql://'s tables come with the database migrations
    options = AdapterOptions(timeout=settings.backend_timeout, data_dir=settings.data_dir)

    async def run() -> None:
        adapter = cls.from_url(url, options)
        try:
            await adapter.ensure_schema()
        finally:
            await adapter.aclose()

    _run_to_completion(run)


def _run_to_completion(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """``asyncio.run(main())``; on a thread of its own when this thread already runs an event
    loop (async tests and embedding programs call ``migrate`` from async code)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="studio9-migrate") as pool:
        pool.submit(lambda: asyncio.run(main())).result()


def check_schema(settings: Settings) -> None:
    """Raise ConfigError unless the system-of-record schema is up to date (no-op for memory://)."""
    url = AdapterURL.parse(settings.database_url, setting="STUDIO9_DATABASE_URL")
    adapter_class(DATABASES, url, setting="STUDIO9_DATABASE_URL")
    if url.scheme == "memory":
        return
    from adapters.sql import migrations

    migrations.check_current(url)
