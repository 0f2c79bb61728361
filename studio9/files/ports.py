"""What the files context (and the job runtime) needs from storage: blobs and file records.

Adapters: ``adapters/blob_store/memory.py`` (memory://), ``adapters/blob_store/file.py`` (file://),
``adapters/blob_store/s3.py`` (s3://);
``adapters/file_records/memory.py`` and ``adapters/file_records/sql.py`` (SQLite, PostgreSQL).
Contracts: ``tests/contract/test_blob_store.py``, ``tests/contract/test_file_records.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

from studio9.auth.domain import Principal
from studio9.backends import Backend
from studio9.files.domain import StoredFile


class BlobStore(Backend, Protocol):
    """**Protocol:** named byte streams (uploaded files, job inputs/outputs/temp, artifacts).

    Keys look like ``files/<id>`` or ``jobs/<job_id>/outputs/<name>``; every method checks
    them with ``studio9.files.domain.check_key`` (``check_prefix`` for prefixes) and
    raises InvalidInput for a bad one before touching storage.
    """

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Stream ``chunks`` into ``key`` (replacing any blob there) and return its size.

        Atomic: readers see the old blob or the whole new one, never a part. When
        ``chunks`` raises or the task is cancelled, the error propagates and nothing of
        the new blob is left behind.
        """

    async def open(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes as an async iterator of chunks.

        Raises BlobNotFound when awaited, before any chunk, if the blob is absent. A blob
        replaced or deleted while it is being read may still be read to its end.
        """

    async def size(self, key: str) -> int:
        """The blob's size in bytes. Raises BlobNotFound."""

    async def delete(self, key: str) -> None:
        """Remove the blob; an absent blob is not an error."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with ``prefix``; return how many went."""

    async def list_prefix(self, prefix: str) -> list[tuple[str, int]]:
        """Every blob whose key starts with ``prefix``, with its size in bytes, sorted by key
        (empty when there is none)."""

    def local_path(self, key: str) -> AbstractAsyncContextManager[Path]:
        """``async with store.local_path(key) as path:`` a local file holding the blob.

        For libraries that can only read a path. Read-only: do not change or delete the
        file. It may be the stored file itself or a temporary copy removed on exit.
        Raises BlobNotFound on entry.
        """

    async def sweep_staging(self, older_than: float) -> int:
        """Remove what unfinished uploads left behind (a crashed process cannot clean up):
        staged parts untouched, or multipart uploads started, more than ``older_than`` seconds
        ago. Never one this process is still writing, whatever its age. Returns how many went;
        safe to run in several processes at once. Stores that stage nothing return 0.
        """


class Presigner(Protocol):
    """Blob stores that can hand out short-lived download URLs (S3): downloads become redirects."""

    async def presigned_url(
        self,
        key: str,
        *,
        filename: str | None = None,
        seconds: int | None = None,
        content_type: str | None = None,
    ) -> str:
        """A URL that GETs the blob without credentials for a short while. Never log it."""


class FileListener(Protocol):
    """**Protocol:** told when a file is stored and before one is deleted (the catalog keeps an
    asset per file: ``studio9.file_assets``; the composition root passes it in)."""

    async def file_stored(self, file: StoredFile) -> None:
        """The file's bytes and record are stored. Raising undoes the upload (record and bytes)."""

    async def file_deleting(self, file: StoredFile) -> None:
        """The file is about to be deleted; raising (a Conflict: others were derived from it)
        refuses the delete, and nothing of the file is removed. Called again if a delete is retried."""


class FileSharing(Protocol):
    """**Protocol:** whether someone who does not own a file may read it anyway: the file's asset
    is shared with them (``studio9.file_assets`` asks the catalog's access policy)."""

    async def may_read(self, actor: Principal, file: StoredFile) -> bool:
        """True when ``actor`` may read the asset of ``file``."""

    async def may_read_as(self, user_id: str, file: StoredFile) -> bool:
        """``may_read`` for a job acting as ``user_id`` (False when that user is gone)."""


class FileRecords(Protocol):
    """**Protocol:** the records of uploaded files, in the system of record."""

    async def add(self, file: StoredFile) -> None:
        """Store a new record. Raises Conflict when its id exists."""

    async def get(self, file_id: str) -> StoredFile:
        """Raises FileNotFound."""

    async def list(
        self, owner_id: str | None, *, limit: int, after: str | None = None
    ) -> Sequence[StoredFile]:
        """Records newest first (id descending), only those older than ``after`` when given.

        ``owner_id`` None lists everyone's (for admins).
        """

    async def delete(self, file_id: str) -> None:
        """Remove the record. Raises FileNotFound."""

    async def transfer(self, owner_id: str, to: str) -> int:
        """Give every file of ``owner_id`` to ``to`` (their user is being deleted), in one
        write; return how many moved. Idempotent: a second call finds none."""
