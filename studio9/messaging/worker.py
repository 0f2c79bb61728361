"""Dramatiq worker threads: in the API process for ``serve`` (edge), or alone for ``worker``."""

from __future__ import annotations

import attrs
import dramatiq
import structlog

log = structlog.get_logger()


@attrs.define
class WorkerThreads:
    """A running Dramatiq worker consuming every queue declared on ``broker``."""

    broker: dramatiq.Broker
    threads: int
    _worker: dramatiq.Worker | None = None

    def start(self) -> None:
        self._worker = dramatiq.Worker(self.broker, worker_threads=self.threads, worker_timeout=100)
        self._worker.start()
        log.info("workers_started", threads=self.threads, queues=sorted(self.broker.get_declared_queues()))

    def stop(self, timeout: float) -> None:
        """Stop consuming; wait up to ``timeout`` seconds for messages in flight."""
        if self._worker is not None:
            self._worker.stop(timeout=int(timeout * 1000))
            self._worker = None
            log.info("workers_stopped")
