"""In-process broker: Dramatiq's StubBroker, consumed by worker threads in the same process.

URL:      memory://
Features: no persistence (the job table is the truth; lost messages are re-sent by the
          supervisor) · single process only
Extra:    none
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Self

import dramatiq
from dramatiq.brokers.stub import StubBroker

from adapters.job_broker.dramatiq_jobs import DramatiqJobQueue, WorkerThreads, consume_jobs
from studio9.backends import AdapterOptions
from studio9.urls import AdapterURL


class MemoryJobBroker:
    shared_between_processes = False
    job_queue_name = "jobs"

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.dramatiq_broker = broker

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls(StubBroker())

    def job_queue(self) -> DramatiqJobQueue:
        # The StubBroker's send is a put on an in-process queue: no thread needed.
        return DramatiqJobQueue(self.dramatiq_broker, self.job_queue_name, blocking=False)

    def consume_jobs(
        self,
        run: Callable[[str], Coroutine[Any, Any, None]],
        loop: asyncio.AbstractEventLoop,
        *,
        threads: int,
    ) -> WorkerThreads:
        return consume_jobs(self.dramatiq_broker, run, loop, queue_name=self.job_queue_name, threads=threads)

    async def ping(self) -> None:
        return None

    async def queue_depths(self) -> dict[str, int]:
        broker: StubBroker = self.dramatiq_broker  # type: ignore[assignment]
        return {
            name: queue.qsize() for name, queue in broker.queues.items() if not name.endswith((".DQ", ".XQ"))
        }

    async def aclose(self) -> None:
        self.dramatiq_broker.close()
