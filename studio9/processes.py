"""What runs beside the HTTP server in a process: job worker threads and background loops.

``serve`` (edge) runs all of it with the API; ``api`` runs the loops; ``worker`` runs the
worker threads and the loops. The loops (supervisor sweeps, search indexer) are safe to
run in every process at once: each change they make is a compare-and-set.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import anyio.to_thread

from studio9.bootstrap import Container
from studio9.messaging import WorkerThreads


@contextlib.asynccontextmanager
async def running(container: Container, *, workers: bool, loops: bool) -> AsyncIterator[None]:
    """Start worker threads and/or background loops; stop them in reverse order on exit."""
    settings = container.settings
    threads = WorkerThreads(container.broker.dramatiq_broker, settings.worker_threads)
    tasks: list[asyncio.Task[None]] = []
    if loops:
        tasks.append(asyncio.create_task(container.indexer.run_forever(), name="indexer"))
    if workers:
        await anyio.to_thread.run_sync(threads.start)
    if loops:
        tasks.append(
            asyncio.create_task(container.supervisor.run_forever(settings.sweep_interval), name="supervisor")
        )
    try:
        yield
    finally:
        for task in reversed(tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if workers:
            await anyio.to_thread.run_sync(threads.stop, settings.shutdown_timeout)
