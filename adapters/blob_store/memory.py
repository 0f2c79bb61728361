"""Blobs held in a dictionary: nothing survives the process.

URL:      memory://
Features: atomic puts (the blob appears when its last chunk is in) · thread-safe ·
          local_path spills to a temporary file, deleted on exit · nothing staged to sweep
Extra:    none
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path, PurePosixPath
from typing import Self

import anyio.to_thread

from studio9.backends import AdapterOptions
from studio9.files.domain import BlobNotFound, check_key, check_prefix
from studio9.urls import AdapterURL

CHUNK_SIZE = 1 << 20


class MemoryBlobStore:
    def __init__(self) -> None:
        # A threading lock, never held across an await: the job runtime may use the store
        # from worker threads running their own event loops.
        self._lock = threading.Lock()
        self._blobs: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        with self._lock:
            self._blobs.clear()

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        check_key(key)
        parts = [bytes(chunk) async for chunk in chunks]
        blob = b"".join(parts)
        with self._lock:
            self._blobs[key] = blob
        return len(blob)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        return _chunks(self._get(key))

    async def size(self, key: str) -> int:
        return len(self._get(key))

    async def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._blobs.pop(key, None)

    async def delete_prefix(self, prefix: str) -> int:
        check_prefix(prefix)
        with self._lock:
            doomed = [key for key in self._blobs if key.startswith(prefix)]
            for key in doomed:
                del self._blobs[key]
        return len(doomed)

    async def list_prefix(self, prefix: str) -> list[tuple[str, int]]:
        check_prefix(prefix)
        with self._lock:
            found = [(key, len(blob)) for key, blob in self._blobs.items() if key.startswith(prefix)]
        return sorted(found)

    @contextlib.asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        blob = self._get(key)
        path = await anyio.to_thread.run_sync(_spill, blob, PurePosixPath(key).suffix)
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # synchronous, so that it also runs in a cancelled scope

    async def sweep_staging(self, older_than: float) -> int:
        return 0  # nothing is staged: a blob appears whole, and dies with its process

    def _get(self, key: str) -> bytes:
        check_key(key)
        with self._lock:
            try:
                return self._blobs[key]
            except KeyError:
                raise BlobNotFound(key) from None


async def _chunks(blob: bytes) -> AsyncIterator[bytes]:
    view = memoryview(blob)
    for start in range(0, len(blob), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])


def _spill(blob: bytes, suffix: str) -> Path:
    # Keep the key's extension: some readers pick a format from the file name.
    fd, name = tempfile.mkstemp(prefix="studio9-blob-", suffix=suffix)
    with os.fdopen(fd, "wb") as handle:
        handle.write(blob)
    return Path(name)
