"""In-process broker: Dramatiq's StubBroker, consumed by worker threads in the same process.

URL:      memory://
Features: no persistence (the job table is the truth; lost messages are re-sent by the
          supervisor) · single process only
Extra:    none
"""

from __future__ import annotations

from typing import Self

import dramatiq
from dramatiq.brokers.stub import StubBroker

from adapters.job_broker.dramatiq_jobs import ConsumesJobs, DramatiqJobQueue
from studio9.backends import AdapterOptions
from studio9.urls import AdapterURL


class MemoryJobBroker(ConsumesJobs):
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

    async def ping(self) -> None:
        return None

    async def queue_depths(self) -> dict[str, int]:
        broker: StubBroker = self.dramatiq_broker  # type: ignore[assignment]
        return {
            name: queue.qsize() for name, queue in broker.queues.items() if not name.endswith((".DQ", ".XQ"))
        }

    async def aclose(self) -> None:
        self.dramatiq_broker.close()
