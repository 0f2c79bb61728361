"""What runs beside the HTTP server in a process: job worker threads and background loops.

``serve`` (edge) runs all of it with the API; ``api`` runs the loops; ``worker`` runs the
worker threads and the loops. The loops (supervisor sweeps, search indexer, stream runner,
staging sweeper) are safe to run in every process at once: each change they make is a
compare-and-set, or (staging) a removal that a second remover finds already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import anyio.to_thread
import structlog

from studio9.bootstrap import Container
from studio9.jobs.ports import WorkerInfo
from studio9.messaging import JobConsumer
from studio9.messaging.ports import EventSubscriber

log = structlog.get_logger()

#: Seconds a stopping worker waits for the handlers of the jobs it gave back to stop (they do at
#: their next report, within half a second for the built-in ones) before cancelling them.
RELEASED_STOP_WAIT = 2.0

#: Seconds between sweeps of what killed uploads left in the blob store, at most (see ``_sweep_staging``).
STAGING_SWEEP_EVERY = 3600.0


@contextlib.asynccontextmanager
async def running(container: Container, *, workers: bool, loops: bool) -> AsyncIterator[None]:
    """Start worker threads and/or background loops; stop them in reverse order on exit."""
    settings = container.settings
    consumer: JobConsumer | None = None
    tasks: list[asyncio.Task[None]] = []
    # Events from other processes (config changes: cache invalidation), for as long as this
    # process serves; one-shot CLI commands build a container without running it, and skip it.
    subscriptions = contextlib.AsyncExitStack()
    events: object = container.backends.get("events")
    if isinstance(events, EventSubscriber):
        await subscriptions.enter_async_context(events.listening())
    # Online predictions reach the prediction sink in batches, from whichever process served them.
    tasks.append(asyncio.create_task(container.prediction_log.run(), name="prediction-log"))
    if loops:
        tasks.append(asyncio.create_task(container.indexer.run_forever(), name="indexer"))
    if workers:
        consumer = container.broker.consume_jobs(
            container.runtime.run, asyncio.get_running_loop(), threads=settings.worker_threads
        )
        await anyio.to_thread.run_sync(consumer.start)
        tasks.append(asyncio.create_task(_announce(container), name="worker-announcer"))
    if loops:
        tasks.append(
            asyncio.create_task(container.supervisor.run_forever(settings.sweep_interval), name="supervisor")
        )
        # Message streams: each is served by the one process holding its lease.
        tasks.append(asyncio.create_task(container.stream_runner.run_forever(), name="stream-runner"))
        tasks.append(asyncio.create_task(_sweep_staging(container), name="staging-sweeper"))
    try:
        yield
    finally:
        for task in reversed(tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if consumer is not None:
            # Stop taking jobs and let those in flight finish for up to shutdown_timeout; give
            # back the rest, so that another worker picks them up at once, not after a lease.
            await anyio.to_thread.run_sync(consumer.stop, settings.shutdown_timeout)
            await container.runtime.release_held()
            # Released handlers stop at their next report; none may outlive the backends.
            await container.runtime.wait_stopped(RELEASED_STOP_WAIT)
            with contextlib.suppress(Exception):
                await container.workers.forget(container.runtime.worker_id)
        await subscriptions.aclose()


async def _announce(container: Container) -> None:
    """Tell the registry this worker process is alive, every heartbeat interval."""
    started = datetime.now(UTC)
    while True:
        info = WorkerInfo(
            id=container.runtime.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            threads=container.settings.worker_threads,
            started_at=started,
            seen_at=datetime.now(UTC),
        )
        try:
            await container.workers.announce(info)
        except Exception:
            log.warning("worker_announce_failed", exc_info=True)
        await asyncio.sleep(container.settings.heartbeat_interval)


async def _sweep_staging(container: Container) -> None:
    """Remove what uploads killed with their process left in the blob store (``.part`` files,
    open multipart uploads): at start-up, then every ``STAGING_SWEEP_EVERY`` seconds, or every
    half ``STUDIO9_STAGING_MAX_AGE`` when that is shorter, so nothing outlives twice its age."""
    max_age = container.settings.staging_max_age
    every = min(STAGING_SWEEP_EVERY, max_age / 2)
    while True:
        try:
            removed = await container.files.blobs.sweep_staging(max_age)
        except Exception:  # a loop at the process edge: the next round tries again
            log.warning("staging_sweep_failed", exc_info=True)
        else:
            if removed:
                log.info("staging_swept", removed=removed, older_than=max_age)
        await asyncio.sleep(every)
