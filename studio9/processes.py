"""What runs beside the HTTP server in a process: job worker threads and background loops.

``serve`` (edge) runs all of it with the API; ``api`` runs the loops; ``worker`` runs the
worker threads and the loops. The loops (supervisor sweeps, search indexer) are safe to
run in every process at once: each change they make is a compare-and-set.
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
from studio9.messaging import WorkerThreads
from studio9.messaging.events import EventSubscriber

log = structlog.get_logger()


@contextlib.asynccontextmanager
async def running(container: Container, *, workers: bool, loops: bool) -> AsyncIterator[None]:
    """Start worker threads and/or background loops; stop them in reverse order on exit."""
    settings = container.settings
    threads = WorkerThreads(container.broker.dramatiq_broker, settings.worker_threads)
    tasks: list[asyncio.Task[None]] = []
    # Events from other processes (config changes: cache invalidation), for as long as this
    # process serves; one-shot CLI commands build a container without running it, and skip it.
    subscriptions = contextlib.AsyncExitStack()
    events: object = container.backends.get("events")
    if isinstance(events, EventSubscriber):
        await subscriptions.enter_async_context(events.listening())
    if loops:
        tasks.append(asyncio.create_task(container.indexer.run_forever(), name="indexer"))
    if workers:
        await anyio.to_thread.run_sync(threads.start)
        tasks.append(asyncio.create_task(_announce(container), name="worker-announcer"))
    if loops:
        tasks.append(
            asyncio.create_task(container.supervisor.run_forever(settings.sweep_interval), name="supervisor")
        )
        # Message streams: each is served by the one process holding its lease.
        tasks.append(asyncio.create_task(container.stream_runner.run_forever(), name="stream-runner"))
    try:
        yield
    finally:
        for task in reversed(tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if workers:
            # Stop taking jobs and let those in flight finish for up to shutdown_timeout; give
            # back the rest, so that another worker picks them up at once, not after a lease.
            await anyio.to_thread.run_sync(threads.stop, settings.shutdown_timeout)
            await container.runtime.release_held()
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
