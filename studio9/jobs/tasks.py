"""The Dramatiq actor that delivers jobs to the runtime: ``jobs.run(job_id)``.

Dramatiq calls actors from its worker threads; the job runtime is async and lives on the
process's event loop, so the actor hands the job over to that loop and waits. Failures
are logged and the message is acknowledged: the job table, not the broker, decides what
happens next (the supervisor re-sends jobs that are still queued).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any

import dramatiq
import structlog

log = structlog.get_logger()

ACTOR_NAME = "jobs.run"
QUEUE_NAME = "jobs"
# Our own timeouts apply (per job type); Dramatiq's time limit must never cut a job short.
_NO_TIME_LIMIT_MS = 30 * 24 * 3600 * 1000


def declare_job_actor(
    broker: dramatiq.Broker,
    run: Callable[[str], Coroutine[Any, Any, None]],
    loop: asyncio.AbstractEventLoop,
    *,
    queue_name: str = QUEUE_NAME,
) -> dramatiq.Actor[[str], None]:
    """Declare ``jobs.run`` on ``broker``'s ``queue_name``; each message runs ``run(job_id)`` on ``loop``."""

    def run_job(job_id: str) -> None:
        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(run(job_id), loop)
        try:
            future.result()
        except concurrent.futures.CancelledError:
            # The process is stopping and its event loop cancelled the run: a stopping worker
            # gives its jobs back (``JobRuntime.release_held``), so this is no failure.
            log.info("job_delivery_stopped", job_id=job_id)
        except Exception:
            log.exception("job_delivery_failed", job_id=job_id)

    declare = dramatiq.actor(
        actor_name=ACTOR_NAME,
        queue_name=queue_name,
        broker=broker,
        max_retries=0,
        time_limit=_NO_TIME_LIMIT_MS,
    )
    actor: dramatiq.Actor[[str], None] = declare(run_job)
    return actor
