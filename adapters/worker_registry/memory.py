"""WorkerRegistry in memory.

URL:      memory:// (as STUDIO9_DATABASE_URL)
Features: nothing kept · thread-safe · single process
Extra:    none
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

import attrs

from studio9.jobs.ports import WorkerInfo


class MemoryWorkerRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: dict[str, WorkerInfo] = {}

    async def announce(self, worker: WorkerInfo) -> None:
        with self._lock:
            known = self._workers.get(worker.id)
            self._workers[worker.id] = attrs.evolve(worker, started_at=known.started_at) if known else worker

    async def live(self, *, seen_after: datetime) -> Sequence[WorkerInfo]:
        with self._lock:
            found = [w for w in self._workers.values() if w.seen_at > seen_after]
        return sorted(found, key=lambda w: (w.host, w.id))

    async def forget(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)
