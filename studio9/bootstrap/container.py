"""The object graph of one process: ``build(settings)`` opens every backend the settings name,
checks that each answers, builds every service in one pass, and closes everything in reverse
order on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import structlog

from adapters.lineage_sink.http import HttpLineageSink
from studio9.access.groups import GroupService
from studio9.access.policy import AccessPolicy, LineageReferences
from studio9.access.projects import ProjectService
from studio9.access.sharing.service import ShareService
from studio9.audit.service import AuditService
from studio9.auth.domain import UserNotFound
from studio9.auth.ports import UserStore
from studio9.auth.service import AuthPolicy, AuthService
from studio9.backends import AdapterOptions, Backend
from studio9.bootstrap.ml import build_ml
from studio9.bootstrap.opening import BACKENDS, open_adapter, open_stream_source, scheme_of
from studio9.bootstrap.tracking import build_tracking
from studio9.catalog.domain import AssetKind
from studio9.catalog.service import CatalogService
from studio9.config.service import ConfigService
from studio9.config.settings import Settings
from studio9.database import Database
from studio9.file_assets import FileAssets
from studio9.files.ports import BlobStore
from studio9.files.service import FileService
from studio9.jobs.builtin import builtin_registry
from studio9.jobs.ports import JobSearch, WorkerRegistry
from studio9.jobs.runtime import JobRuntime
from studio9.jobs.service import JobPolicy, JobService
from studio9.jobs.supervisor import Supervisor
from studio9.messaging.ports import EventPublisher, EventSubscriber, JobBroker
from studio9.messaging.streams import domain as stream_domain
from studio9.messaging.streams.runner import StreamRunner
from studio9.messaging.streams.service import StreamService
from studio9.metadata.asset_indexer import AssetIndexer
from studio9.metadata.indexer import JobIndexer
from studio9.metadata.job_search import IndexedJobSearch
from studio9.metadata.library import Library
from studio9.metadata.ports import SearchIndex
from studio9.ml.imports import ModelImporter
from studio9.ml.prediction_log import PredictionLog
from studio9.ml.service import ModelService
from studio9.ml.serving import OnlinePredictor
from studio9.offboarding import UserOffboarding
from studio9.predictions.jobs import import_job_type
from studio9.predictions.ports import PredictionSink
from studio9.predictions.service import PredictionService
from studio9.tables.content import TableBlobs
from studio9.tables.derive import derive_job_type
from studio9.tables.import_job import table_import_job_type
from studio9.tables.job_tables import JobTables
from studio9.tables.jobs import profile_job_type
from studio9.tables.queries.service import SqlService
from studio9.tables.resolving import TableResolver
from studio9.tables.service import TableService
from studio9.tables.sql_databases import Databases
from studio9.tables.sql_limits import SqlLimits
from studio9.tables.stats_job import table_stats_job_type
from studio9.tracking.artifacts import ArtifactService
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.service import TrackingService

log = structlog.get_logger()

ADMIN_TOKEN_FILE = "admin-token"  # noqa: S105 - a file name, not a secret


@attrs.frozen(kw_only=True)
class Container:
    """Every service of one process, built from its settings."""

    settings: Settings
    backends: Mapping[str, Backend]
    broker: JobBroker
    auth: AuthService
    files: FileService
    catalog: CatalogService
    audit: AuditService
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
    tables: TableService
    #: Resolves the table names of SQL as a caller (previews, derives).
    table_resolver: TableResolver
    sql: SqlService
    groups: GroupService
    shares: ShareService
    library: Library
    projects: ProjectService
    models: ModelService
    predictor: OnlinePredictor
    model_importer: ModelImporter
    prediction_log: PredictionLog
    experiments: ExperimentService
    tracking: TrackingService
    artifacts: ArtifactService
    started_at: float = attrs.field(factory=time.monotonic)


@contextlib.asynccontextmanager
async def build(settings: Settings, *, check: bool = True) -> AsyncIterator[Container]:
    """Open every adapter named by ``settings``; close them in reverse order on exit.

    Raises:
        ConfigError: a backend URL cannot be used or its backend does not answer.
    """
    async with contextlib.AsyncExitStack() as stack:
        opened: dict[str, Backend] = {}

        async def open_backend(name: str) -> Any:
            table, field = BACKENDS[name]
            options = AdapterOptions(
                timeout=settings.backend_timeout, data_dir=settings.data_dir, database=opened.get("database")
            )
            raw_url = getattr(settings, field)
            setting = "STUDIO9_" + field.upper()
            adapter = await stack.enter_async_context(
                open_adapter(table, raw_url, setting=setting, options=options, check=check)
            )
            opened[name] = adapter
            return adapter

        # In BACKENDS' order: the database first, as sql:// indexes live in it.
        database: Database = await open_backend("database")
        broker: JobBroker = await open_backend("broker")
        index: SearchIndex = await open_backend("index")
        blobs: BlobStore = await open_backend("blobs")
        sink: PredictionSink = await open_backend("sink")
        events: EventPublisher = await open_backend("events")
        log.info(
            "backends_opened", **{name: scheme_of(settings, field) for name, (_, field) in BACKENDS.items()}
        )
        if check and hasattr(index, "check_schema"):  # opensearch: the alias is at this schema version
            await index.check_schema()
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
        # The one access policy: owners, shares (user, group, email) and project memberships.
        catalog = CatalogService(
            database.catalog,
            # Readers of an experiment also read what it references (composite shares).
            rule=AccessPolicy(database.access, references=LineageReferences(database.catalog)),
        )
        # Every uploaded file is a ``file`` asset: the bridge hears of uploads and deletes, and
        # deletes a file whose asset the catalog deleted.
        file_assets = FileAssets(catalog, database.files, blobs, users=database.users)
        catalog.register(AssetKind.FILE, file_assets)
        files = FileService(
            blobs,
            database.files,
            max_upload_bytes=settings.max_upload_bytes,
            listener=file_assets,
            sharing=file_assets,
        )
        predictions = PredictionService(sink)
        jobs, runtime = _job_core(settings, database, broker, blobs, files, predictions, config)
        # SQL over tables: names resolve through the catalog's access rule, as the caller or,
        # in a ``tables.sql`` job, as the job's owner.
        sql_limits = SqlLimits()
        # Previews' DuckDB databases, opened ahead of demand (from the first preview on).
        sql_databases = Databases(memory_limit=sql_limits.preview_memory, threads=sql_limits.threads)
        stack.callback(sql_databases.close)
        table_resolver = TableResolver(catalog, database.users, blobs, sql_databases)
        # OpenLineage run events of the jobs that read and write assets: on the event bus, and
        # to STUDIO9_OPENLINEAGE_URL when set.
        lineage = HttpLineageSink(events, settings.openlineage_url, timeout=settings.backend_timeout)
        jobs.registry.register(
            derive_job_type(
                assets=catalog,
                tables=table_resolver,
                users=database.users,
                blobs=blobs,
                limits=sql_limits,
                lineage=lineage,
            )
        )
        # Tables: catalog assets whose parts live under ``tables/<id>/``; an import is a job.
        catalog.register(AssetKind.TABLE, TableBlobs(blobs, catalog))
        jobs.registry.register(table_import_job_type(catalog, blobs, lineage))
        jobs.registry.register(table_stats_job_type(assets=catalog, users=database.users, blobs=blobs))
        tables = TableService(catalog, blobs, database.files, jobs, resolver=table_resolver)
        tracking = build_tracking(
            settings, database=database, catalog=catalog, users=database.users, blobs=blobs
        )
        ml = build_ml(
            settings,
            database=database,
            catalog=catalog,
            users=database.users,
            blobs=blobs,
            events=events,
            tables=JobTables(catalog, table_resolver, blobs, jobs=jobs),
            predictions=predictions,
            registry=jobs.registry,
            tracking=tracking.tracking,
        )
        streams, stream_runner = _streams(settings, database, jobs)
        yield Container(
            settings=settings,
            backends=opened,
            broker=broker,
            auth=AuthService(
                database.users,
                database.tokens,
                _auth_policy(settings),
                owned=UserOffboarding(jobs, streams, database.files, database.catalog),
            ),
            files=files,
            catalog=catalog,
            audit=AuditService(database.audit, catalog, database.tokens),
            jobs=jobs,
            runtime=runtime,
            supervisor=Supervisor(jobs, blobs),
            indexer=JobIndexer(
                database.jobs,
                jobs.store,
                jobs.history,
                index,
                events=events,
                assets=AssetIndexer(database.catalog, database.access, index),
            ),
            job_search=IndexedJobSearch(index, jobs.store),
            workers=database.workers,
            config=config,
            streams=streams,
            stream_runner=stream_runner,
            predictions=predictions,
            tables=tables,
            table_resolver=table_resolver,
            sql=SqlService(table_resolver, sql_limits, sql_databases),
            groups=GroupService(database.access, database.users),
            shares=ShareService(database.access, database.users, catalog),
            library=Library(index, database.access, database.catalog),
            projects=ProjectService(database.access, database.users, catalog),
            models=ml.models,
            predictor=ml.predictor,
            model_importer=ml.importer,
            prediction_log=ml.prediction_log,
            experiments=tracking.experiments,
            tracking=tracking.tracking,
            artifacts=tracking.artifacts,
        )


def _job_core(
    settings: Settings,
    database: Database,
    broker: JobBroker,
    blobs: BlobStore,
    files: FileService,
    predictions: PredictionService,
    config: ConfigService,
) -> tuple[JobService, JobRuntime]:
    """The job service, sending job ids through the broker, and the runtime that runs them (the
    process that runs jobs hands ``runtime.run`` to ``broker.consume_jobs``: ``processes.running``)."""
    registry = builtin_registry()
    registry.register(profile_job_type())
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
    # Per-type default params: the config setting ``jobs/<type>``.
    defaults = functools.partial(config.cached, "jobs")
    jobs = JobService(database.jobs, database.jobs, broker.job_queue(), registry, policy, defaults=defaults)
    runtime = JobRuntime(jobs, registry, blobs, files, settings.data_dir / "scratch")
    return jobs, runtime


def write_admin_token(data_dir: Path, secret: str) -> Path:
    """Write the first admin token to ``<data dir>/admin-token``, readable by the owner only."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / ADMIN_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    path.chmod(0o600)
    return path


def _auth_policy(settings: Settings) -> AuthPolicy:
    return AuthPolicy(
        token_ttl=timedelta(days=settings.token_ttl_days),
        max_failures=settings.login_max_failures,
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        cache_seconds=settings.auth_cache_seconds,
    )


def _streams(settings: Settings, database: Database, jobs: JobService) -> tuple[StreamService, StreamRunner]:
    """Stream settings in the config store, their runtime in the stream tables, jobs through the
    job service (its registry names the known job types).

    The runner reuses the job core's timings: a stream's lease lasts ``STUDIO9_LEASE_TIMEOUT``,
    idle streams cycle every ``STUDIO9_HEARTBEAT_INTERVAL`` (at most 1 s) and unserved streams
    are looked for every ``STUDIO9_SWEEP_INTERVAL``.
    """
    # Set when a stream is created or changed in this process: the runner looks for it at once.
    wakeup = asyncio.Event()
    service = StreamService(
        database.config_settings,
        database.stream_states,
        database.stream_backlog,
        jobs,
        open_source=functools.partial(open_stream_source, timeout=settings.backend_timeout),
        known_job_type=lambda name: any(t.name == name for t in jobs.registry),
        owner_exists=functools.partial(_user_exists, database.users),
        on_change=wakeup.set,
    )
    runner = StreamRunner(
        service,
        lease_seconds=settings.lease_timeout,
        tick=min(1.0, settings.heartbeat_interval),
        discover_every=settings.sweep_interval,
        wakeup=wakeup,
    )
    return service, runner


async def _user_exists(users: UserStore, user_id: str) -> bool:
    """Whether the user exists (a stream whose owner was deleted must not submit jobs)."""
    try:
        await users.get(user_id)
    except UserNotFound:
        return False
    return True
