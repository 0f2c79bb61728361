"""Jobs over Dramatiq, shared by the broker adapters: the ``jobs.run`` actor, the queue that
sends job ids to it, and the worker threads that consume it.

Dramatiq calls actors from its worker threads; the job runtime is async and lives on the
process's event loop, so the actor hands the job over to that loop and waits. Failures
are logged and the message is acknowledged: the job table, not the broker, decides what
happens next (the supervisor re-sends jobs that are still queued).

Sending needs no actor: a message names its actor (``jobs.run``), so a process that only
submits (``studio9 api``) declares the queue and never the actor; a process that runs jobs
declares the actor when it starts consuming (``consume_jobs``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Coroutine
from typing import Any, Final

import anyio.to_thread
import attrs
import dramatiq
import dramatiq.errors
import structlog

from studio9.errors import BackendUnavailable

log = structlog.get_logger()

ACTOR_NAME: Final = "jobs.run"
# Our own timeouts apply (per job type); Dramatiq's time limit must never cut a job short.
_NO_TIME_LIMIT_MS: Final = 30 * 24 * 3600 * 1000
# How often (ms) an idle worker thread looks again for messages and for a stop.
_WORKER_TIMEOUT_MS: Final = 100


def job_message(queue_name: str, job_id: str) -> dramatiq.Message[None]:
    """The message ``jobs.run(job_id)`` on ``queue_name``: what ``Actor.message_with_options``
    builds, without an actor in this process."""
    return dramatiq.Message(
        queue_name=queue_name, actor_name=ACTOR_NAME, args=(job_id,), kwargs={}, options={}
    )


class DramatiqJobQueue:
    """``JobQueue`` through a Dramatiq broker: sends job ids, never payloads. ``blocking`` brokers
    (SQS) are called from a thread so that a slow broker never stalls the event loop; the
    in-process one is not."""

    def __init__(self, broker: dramatiq.Broker, queue_name: str, *, blocking: bool) -> None:
        """Declare ``queue_name`` on ``broker`` (no I/O) and send to it."""
        broker.declare_queue(queue_name)
        self._broker = broker
        self._queue_name = queue_name
        self._blocking = blocking

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        delay = int(delay_seconds * 1000) or None
        try:
            if self._blocking:
                await anyio.to_thread.run_sync(self._send, job_id, delay)
            else:
                self._send(job_id, delay)
        except (dramatiq.errors.DramatiqError, OSError) as exc:
            raise BackendUnavailable(f"broker refused job {job_id}: {type(exc).__name__}") from exc

    def _send(self, job_id: str, delay: int | None) -> None:
        self._broker.enqueue(job_message(self._queue_name, job_id), delay=delay)


def declare_job_actor(
    broker: dramatiq.Broker,
    run: Callable[[str], Coroutine[Any, Any, None]],
    loop: asyncio.AbstractEventLoop,
    *,
    queue_name: str,
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


class ConsumesJobs:
    """``JobBroker.consume_jobs`` for an adapter over a Dramatiq broker (each of ours is one):
    its ``dramatiq_broker`` and ``job_queue_name`` say where."""

    dramatiq_broker: dramatiq.Broker
    job_queue_name: str

    def consume_jobs(
        self,
        run: Callable[[str], Coroutine[Any, Any, None]],
        loop: asyncio.AbstractEventLoop,
        *,
        threads: int,
    ) -> WorkerThreads:
        """Declare ``jobs.run`` on the job queue (see ``declare_job_actor``); worker threads
        consuming every declared queue, not started yet."""
        declare_job_actor(self.dramatiq_broker, run, loop, queue_name=self.job_queue_name)
        return WorkerThreads(self.dramatiq_broker, threads)


@attrs.define
class WorkerThreads:
    """A Dramatiq worker consuming every queue declared on ``broker``: in the API process for
    ``serve`` (edge), or alone for ``worker``. ``start`` and ``stop`` block: call them from a thread."""

    broker: dramatiq.Broker
    threads: int
    _worker: dramatiq.Worker | None = None

    def start(self) -> None:
        self._worker = dramatiq.Worker(
            self.broker, worker_threads=self.threads, worker_timeout=_WORKER_TIMEOUT_MS
        )
        self._worker.start()
        log.info("workers_started", threads=self.threads, queues=sorted(self.broker.get_declared_queues()))

    def stop(self, timeout: float) -> None:
        """Stop consuming; wait up to ``timeout`` seconds for messages in flight."""
        if self._worker is not None:
            self._worker.stop(timeout=int(timeout * 1000))
            self._worker = None
            log.info("workers_stopped")
