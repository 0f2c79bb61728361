"""Use cases of the files context: upload (streamed, size-limited), read, list, delete.

Bytes go to the blob store under ``files/<id>``; the record is written only once the
blob is complete, so a record always has its bytes. Files belong to their uploader:
another user's file is answered as not found, admins see every file. A ``FileListener`` (the
catalog's, wired by the composition root) hears of each stored file and of each delete first.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio
import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.errors import BackendUnavailable, InvalidInput, PermissionDenied
from studio9.files.domain import (
    BlobNotFound,
    FileNotFound,
    FileTooLarge,
    StoredFile,
    clean_content_type,
    clean_name,
    file_blob_key,
)
from studio9.files.ports import BlobStore, FileListener, FileRecords, FileSharing
from studio9.ids import new_id

log = structlog.get_logger()

DEFAULT_MAX_UPLOAD_BYTES = 1 << 30  # 1 GiB


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.define
class FileService:
    blobs: BlobStore
    records: FileRecords
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    clock: Callable[[], datetime] = utcnow
    listener: FileListener | None = None
    #: Who else may read a file (a share of its asset); None: its owner and admins only.
    sharing: FileSharing | None = None

    async def upload(
        self,
        actor: Principal,
        name: str | None,
        content_type: str | None,
        chunks: AsyncIterable[bytes],
        *,
        declared_size: int | None = None,
    ) -> StoredFile:
        """Stream ``chunks`` into a new file owned by ``actor``.

        ``declared_size`` (a Content-Length) lets an oversized upload fail before any byte
        is read; the limit is enforced on the bytes actually received either way.

        Raises:
            InvalidInput: the name or content type is unusable (field ``name`` / ``content_type``).
            FileTooLarge: more than ``max_upload_bytes``; nothing is kept.
        """
        name = clean_name(name)
        content_type = clean_content_type(content_type)
        if declared_size is not None and declared_size > self.max_upload_bytes:
            raise FileTooLarge(self.max_upload_bytes)
        file_id = new_id()
        key = file_blob_key(file_id)
        digest = hashlib.sha256()
        recorded = False
        try:
            async with contextlib.aclosing(self._metered(chunks, digest.update)) as metered:
                size = await self.blobs.put(key, metered)
            stored = StoredFile(
                id=file_id,
                owner_id=actor.user_id,
                name=name,
                size=size,
                sha256=digest.hexdigest(),
                content_type=content_type,
                blob_key=key,
                created_at=self.clock(),
            )
            await self.records.add(stored)
            recorded = True
            if self.listener is not None:
                await self.listener.file_stored(stored)
        except BaseException:
            # put() leaves nothing on failure; this also covers a record that could not be
            # written after the blob was, a listener that refused the file, and a cancellation
            # in between.
            with anyio.CancelScope(shield=True):
                if recorded:
                    await self._forget(file_id)
                await self._discard(key)
            raise
        log.info("file_uploaded", file_id=file_id, owner_id=actor.user_id, size=size)
        return stored

    async def _metered(
        self, chunks: AsyncIterable[bytes], update: Callable[[bytes], object]
    ) -> AsyncGenerator[bytes, None]:
        received = 0
        async for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if received > self.max_upload_bytes:
                log.info("upload_refused_too_large", limit=self.max_upload_bytes)
                raise FileTooLarge(self.max_upload_bytes)
            update(chunk)
            yield chunk

    async def _discard(self, key: str) -> None:
        """Delete a blob no record points to (any more); a failure only costs space."""
        try:
            await self.blobs.delete(key)
        except BackendUnavailable:
            # Unreachable bytes: no reader can find them without a record. Left for a sweep
            # rather than failing a request whose outcome is already decided.
            log.warning("file_blob_orphaned", blob_key=key)

    async def _forget(self, file_id: str) -> None:
        """Delete the record of an upload that failed after it was written."""
        try:
            await self.records.delete(file_id)
        except FileNotFound:
            pass
        except BackendUnavailable:
            # A record without a listener's consent: its bytes go below, so reads find none.
            log.warning("file_record_orphaned", file_id=file_id)

    async def get(self, actor: Principal, file_id: str) -> StoredFile:
        """One file the actor may read: theirs, one whose asset is shared with them, or (admins)
        anyone's. Raises FileNotFound."""
        stored = await self.records.get(file_id)
        if actor.owns(stored.owner_id):
            return stored
        if self.sharing is not None and await self.sharing.may_read(actor, stored):
            return stored
        raise FileNotFound(file_id)

    async def open(self, actor: Principal, file_id: str) -> tuple[StoredFile, AsyncIterator[bytes]]:
        """The file and its bytes, streamed. Raises FileNotFound."""
        stored = await self.get(actor, file_id)
        try:
            return stored, await self.blobs.open(stored.blob_key)
        except BlobNotFound:
            # Deleted since the record was read, or lost: either way the file is not there.
            log.warning("file_blob_missing", file_id=file_id, blob_key=stored.blob_key)
            raise FileNotFound(file_id) from None

    async def list(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[StoredFile]:
        """The actor's files (admins: everyone's), newest first, older than ``after``."""
        if limit < 1:
            raise InvalidInput("limit must be at least 1", field="limit")
        return await self.records.list(None if actor.is_admin else actor.user_id, limit=limit, after=after)

    async def delete(self, actor: Principal, file_id: str) -> None:
        """Delete the record, then the bytes. Raises FileNotFound, or the listener's refusal
        (a Conflict: assets were derived from the file), PermissionDenied (a reader who does
        not own it)."""
        stored = await self.get(actor, file_id)
        if not actor.owns(stored.owner_id):
            raise PermissionDenied(f"only the owner of file {file_id!r} may delete it")
        if self.listener is not None:
            await self.listener.file_deleting(stored)
        await self.records.delete(stored.id)
        await self._discard(stored.blob_key)
        log.info("file_deleted", file_id=stored.id, by=actor.user_id)

    async def file_name(self, owner_id: str | None, file_id: str) -> str:
        """The name the file was uploaded with, for the job runtime. Raises FileNotFound."""
        return (await self._visible(file_id, owner_id)).name

    @contextlib.asynccontextmanager
    async def local_path(self, owner_id: str | None, file_id: str) -> AsyncIterator[Path]:
        """A local, read-only path to the file's bytes, for the job runtime.

        ``owner_id`` is the user the job runs for: a file of someone else is FileNotFound.
        None skips the check (trusted callers only: admins' jobs, maintenance).
        """
        stored = await self._visible(file_id, owner_id)
        async with self.blobs.local_path(stored.blob_key) as path:
            yield path

    async def _visible(self, file_id: str, owner_id: str | None) -> StoredFile:
        """The file, if the job's user ``owner_id`` owns it or it is shared with them."""
        stored = await self.records.get(file_id)
        if owner_id is None or stored.owner_id == owner_id:
            return stored
        if self.sharing is not None and await self.sharing.may_read_as(owner_id, stored):
            return stored
        raise FileNotFound(file_id)
