"""The composition root: the one module that picks adapters and wires services.

Adapters are named by string in the scheme tables below and imported lazily, so the
edge install never imports a cloud SDK it does not have. ``build(settings)`` opens every
backend the settings name, checks that each answers, wires the services, and closes
everything in reverse order on exit.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import importlib
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import anyio
import attrs
import structlog

import adapters.blob_store as blob_store_adapters
import adapters.database as database_adapters
import adapters.event_publisher as event_publisher_adapters
import adapters.job_broker as job_broker_adapters
import adapters.prediction_sink as prediction_sink_adapters
import adapters.search_index as search_index_adapters
import adapters.stream_source as stream_source_adapters
from studio9.auth.ports import TokenStore, UserStore
from studio9.auth.service import AuthPolicy, AuthService
from studio9.backends import AdapterOptions, Backend
from studio9.config.service import ConfigService
from studio9.config.settings import Settings
from studio9.errors import BackendUnavailable, ConfigError
from studio9.files.ports import BlobStore
from studio9.files.service import FileService
from studio9.jobs.builtin import builtin_registry
from studio9.jobs.ports import JobHistory, JobStore, WorkerRegistry
from studio9.jobs.runtime import JobRuntime
from studio9.jobs.search import JobIndexer, JobSearch
from studio9.jobs.service import JobPolicy, JobService
from studio9.jobs.supervisor import Supervisor
from studio9.jobs.tasks import declare_job_actor
from studio9.messaging.events import EventPublisher, EventSubscriber
from studio9.messaging.ports import JobBroker
from studio9.messaging.streams import domain as stream_domain
from studio9.messaging.streams.ports import StreamSource
from studio9.messaging.streams.runner import StreamRunner
from studio9.messaging.streams.service import StreamService
from studio9.messaging.streams.wiring import build_streams
from studio9.metadata.ports import SearchIndex
from studio9.offboarding import UserOffboarding
from studio9.predictions.jobs import import_job_type
from studio9.predictions.ports import PredictionSink
from studio9.predictions.service import PredictionService
from studio9.urls import AdapterURL

log = structlog.get_logger()

DATABASES: Final = database_adapters.SCHEMES
BROKERS: Final = job_broker_adapters.SCHEMES
INDEXES: Final = search_index_adapters.SCHEMES
BLOB_STORES: Final = blob_store_adapters.SCHEMES
SINKS: Final = prediction_sink_adapters.SCHEMES
EVENTS: Final = event_publisher_adapters.SCHEMES
STREAM_SOURCES: Final = stream_source_adapters.SCHEMES
# setting name -> (scheme table, field of Settings), in opening order.
BACKENDS: Final = {
    "database": (DATABASES, "database_url"),
    "broker": (BROKERS, "broker_url"),
    "index": (INDEXES, "index_url"),
    "blobs": (BLOB_STORES, "blob_url"),
    "sink": (SINKS, "sink_url"),
    "events": (EVENTS, "events_url"),
}
ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


def adapter_class(table: Mapping[str, str], url: AdapterURL, *, setting: str) -> Any:
    """The adapter class for ``url``'s scheme, imported now.

    Raises:
        ConfigError: unknown scheme, or the adapter needs an extra that is not installed.
    """
    try:
        target = table[url.scheme]
    except KeyError:
        expected = ", ".join(f"{s}://" for s in sorted(table))
        raise ConfigError(
            f"unknown scheme {url.scheme!r} in {url}; expected one of {expected}", setting=setting
        ) from None
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"{url.scheme}:// needs the optional dependency {exc.name!r}; install studio9[cloud]",
            setting=setting,
        ) from exc
    return getattr(module, class_name)


@contextlib.asynccontextmanager
async def open_adapter(
    table: Mapping[str, str], raw_url: str, *, setting: str, options: AdapterOptions, check: bool = True
) -> AsyncIterator[Any]:
    """Open, check and (on exit) close one adapter, exactly as production does."""
    url = AdapterURL.parse(raw_url, setting=setting)
    adapter = adapter_class(table, url, setting=setting).from_url(url, options)
    try:
        if check:
            await _check(adapter, url, setting=setting, timeout=options.timeout)
        yield adapter
    finally:
        await adapter.aclose()


async def _check(adapter: Backend, url: AdapterURL, *, setting: str, timeout: float) -> None:
    try:
        with anyio.fail_after(timeout):
            await adapter.ping()
    except TimeoutError:
        raise ConfigError(f"{url} did not answer within {timeout:g}s", setting=setting) from None
    except BackendUnavailable as exc:
        raise ConfigError(f"cannot reach {url}: {exc.message}", setting=setting) from None


@attrs.frozen(kw_only=True)
class Container:
    """Every service of one process, built from its settings."""

    settings: Settings
    backends: Mapping[str, Backend]
    broker: JobBroker
    auth: AuthService
    files: FileService
    jobs: JobService
    runtime: JobRuntime
    supervisor: Supervisor
    indexer: JobIndexer
    job_search: JobSearch
    workers: WorkerRegistry
    config: ConfigService
    streams: StreamService
    stream_runner: StreamRunner
    predictions: PredictionService
    started_at: float = attrs.field(factory=time.monotonic)


@contextlib.asynccontextmanager
async def build(settings: Settings, *, check: bool = True) -> AsyncIterator[Container]:
    """Open every adapter named by ``settings``; close them in reverse order on exit.

    Raises:
        ConfigError: a backend URL cannot be used or its backend does not answer.
    """
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[str, Any] = {}
        for name, (table, field) in BACKENDS.items():
            options = AdapterOptions(
                timeout=settings.backend_timeout, data_dir=settings.data_dir, database=opened.get("database")
            )
            opened[name] = await stack.enter_async_context(
                open_adapter(
                    table,
                    getattr(settings, field),
                    setting="STUDIO9_" + field.upper(),
                    options=options,
                    check=check,
                )
            )
        database = opened["database"]
        users: UserStore = database.users
        tokens: TokenStore = database.tokens
        policy = AuthPolicy(
            token_ttl=timedelta(days=settings.token_ttl_days),
            max_failures=settings.login_max_failures,
            lockout=timedelta(seconds=settings.login_lockout_seconds),
            cache_seconds=settings.auth_cache_seconds,
        )
        log.info(
            "backends_opened", **{name: _scheme(settings, field) for name, (_, field) in BACKENDS.items()}
        )
        broker: JobBroker = opened["broker"]
        blobs: BlobStore = opened["blobs"]
        index: SearchIndex = opened["index"]
        if check and hasattr(index, "check_schema"):  # opensearch: the alias is at this schema version
            await index.check_schema()
        events: EventPublisher = opened["events"]
        config = ConfigService(
            database.config_settings,
            events=events,
            cache_seconds=settings.auth_cache_seconds,
            owned={stream_domain.SETTINGS_SERVICE: stream_domain.owner_of},  # the stream's access
        )
        if isinstance(events, EventSubscriber):
            # Config changes made by any process invalidate this one's cache: at once on the
            # in-process bus, once ``processes.running`` listens on amqp:// and sns://.
            events.subscribe(config.on_event, prefix="config.", on_gap=config.on_gap)
        files = FileService(blobs, database.files, max_upload_bytes=settings.max_upload_bytes)
        sink: PredictionSink = opened["sink"]
        predictions = PredictionService(sink)
        jobs, runtime = _job_core(settings, database, broker, blobs, files, predictions)
        jobs.defaults = functools.partial(config.cached, "jobs")
        streams, stream_runner = build_streams(settings, database, jobs, open_source=open_stream_source)
        yield Container(
            settings=settings,
            backends=opened,
            broker=broker,
            auth=AuthService(users, tokens, policy, owned=UserOffboarding(jobs, streams, database.files)),
            files=files,
            jobs=jobs,
            runtime=runtime,
            supervisor=Supervisor(jobs, blobs),
            indexer=JobIndexer(database.jobs, jobs.store, jobs.history, index, events=events),
            job_search=JobSearch(index, jobs.store),
            workers=database.workers,
            config=config,
            streams=streams,
            stream_runner=stream_runner,
            predictions=predictions,
        )


def _job_core(
    settings: Settings,
    database: Any,
    broker: JobBroker,
    blobs: BlobStore,
    files: FileService,
    predictions: PredictionService,
) -> tuple[JobService, JobRuntime]:
    """The job service and its worker runtime, joined through the broker's ``jobs.run`` actor."""
    store: JobStore = database.jobs
    history: JobHistory = database.jobs
    registry = builtin_registry()
    registry.register(import_job_type(predictions))
    policy = JobPolicy(
        heartbeat_interval=settings.heartbeat_interval,
        lease_timeout=settings.lease_timeout,
        start_timeout=settings.start_timeout,
        cancel_grace=settings.cancel_grace,
        redeliver_after=settings.redeliver_after,
        retry_backoff=settings.retry_backoff,
        max_lost_attempts=settings.max_lost_attempts,
    )
    runtime_holder: list[JobRuntime] = []

    async def run(job_id: str) -> None:
        await runtime_holder[0].run(job_id)

    actor = declare_job_actor(
        broker.dramatiq_broker, run, asyncio.get_running_loop(), queue_name=broker.job_queue_name
    )
    queue = broker.job_queue(actor)
    jobs = JobService(store, history, queue, registry, policy)
    runtime = JobRuntime(jobs, registry, blobs, files, settings.data_dir / "scratch")
    runtime_holder.append(runtime)
    return jobs, runtime


def open_stream_source(raw_url: str, *, timeout: float) -> StreamSource:
    """The source adapter a stream's ``source`` URL names (no I/O yet). Raises ConfigError."""
    url = AdapterURL.parse(raw_url, setting="source")
    source: StreamSource = adapter_class(STREAM_SOURCES, url, setting="source").from_url(
        url, AdapterOptions(timeout=timeout)
    )
    return source


def _scheme(settings: Settings, field: str) -> str:
    return str(AdapterURL.parse(getattr(settings, field)).scheme)


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


def write_admin_token(data_dir: Path, secret: str) -> Path:
    """Write the first admin token to ``<data dir>/admin-token``, readable by the owner only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    path.chmod(0o600)
    return path
