"""File records held in a dictionary: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.files``)
Features: thread-safe · newest-first paging by id
Extra:    none
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs

from studio9.errors import Conflict
from studio9.files.domain import FileNotFound, StoredFile


class MemoryFileRecords:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, StoredFile] = {}

    async def add(self, file: StoredFile) -> None:
        with self._lock:
            if file.id in self._files:
                raise Conflict(f"file {file.id!r} exists")
            self._files[file.id] = file

    async def get(self, file_id: str) -> StoredFile:
        with self._lock:
            try:
                return self._files[file_id]
            except KeyError:
                raise FileNotFound(file_id) from None

    async def list(
        self, owner_id: str | None, *, limit: int, after: str | None = None
    ) -> Sequence[StoredFile]:
        with self._lock:
            ids = sorted(
                (
                    f.id
                    for f in self._files.values()
                    if (owner_id is None or f.owner_id == owner_id) and (after is None or f.id < after)
                ),
                reverse=True,
            )[:limit]
            return [self._files[i] for i in ids]

    async def delete(self, file_id: str) -> None:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                raise FileNotFound(file_id)

    async def transfer(self, owner_id: str, to: str) -> int:
        with self._lock:
            moving = [f for f in self._files.values() if f.owner_id == owner_id]
            for file in moving:
                self._files[file.id] = attrs.evolve(file, owner_id=to)
            return len(moving)
