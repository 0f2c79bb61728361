"""Multipart uploads of the S3 blob store: one put's upload (``Upload``), and the sweep of the
uploads a killed process left open (``abort_stale``, the ``s3://`` side of ``sweep_staging``).

A put is a single PutObject until the blob reaches the threshold, then a multipart upload
whose parts S3 keeps, invisible and billed, until it is completed or aborted. A failed or
cancelled put aborts its own upload; a process killed mid-put cannot. ``abort_stale`` lists
the uploads under the store's prefix and aborts those started more than ``older_than``
seconds ago. Uploads this process is still sending are registered by id and never aborted,
whatever their age; another process's upload that old is past the longest upload time.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import anyio
import anyio.to_thread
import attrs
import structlog
from botocore.exceptions import BotoCoreError, ClientError

from studio9.errors import PayloadTooLarge

if TYPE_CHECKING:
    from adapters.blob_store.s3 import S3BlobStore

log = structlog.get_logger()

MAX_PARTS = 10_000
#: Errors that mean the endpoint could not be reached (as opposed to an answer from S3).
UNREACHABLE = (BotoCoreError, aiohttp.ClientError)
_GONE = frozenset({"NoSuchUpload", "404"})  # aborted by another sweeper, or completed, meanwhile
# Ids of the multipart uploads this process is sending (any store): spared by sweeps.
_SENDING: set[str] = set()
_SENDING_LOCK = threading.Lock()


@attrs.define
class Upload:
    """One put: a single PutObject, or a multipart upload once the blob reaches the threshold.

    The put calls ``forget()`` when it is over, whichever way it ended."""

    store: S3BlobStore
    client: Any
    key: str
    target: dict[str, str]  # Bucket and Key
    id: str | None = None
    parts: list[dict[str, Any]] = attrs.Factory(list)

    async def send(self, data: bytes) -> None:
        """Upload ``data`` as the next part, starting the multipart upload first if needed."""
        if len(self.parts) == MAX_PARTS:
            limit = MAX_PARTS * self.store.options.part_size
            raise PayloadTooLarge(f"blob exceeds {limit} bytes ({MAX_PARTS} parts of part_size)", limit=limit)
        if self.id is None:
            # Shielded: an upload that S3 started is one we know of, and can abort.
            with anyio.CancelScope(shield=True), self.store._boundary(self.key):
                started = await self.client.create_multipart_upload(**self.target, ChecksumAlgorithm="SHA256")
            self.id = str(started["UploadId"])
            with _SENDING_LOCK:
                _SENDING.add(self.id)
        number, checksum = len(self.parts) + 1, await _checksum(data)
        with self.store._boundary(self.key):
            answer = await self.client.upload_part(
                **self.target, UploadId=self.id, PartNumber=number, Body=data, **checksum
            )
        self.parts.append(
            {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum["ChecksumSHA256"]}
        )

    async def finish(self, rest: bytes) -> None:
        """Store ``rest`` as the whole blob, or send it as the last part and complete the upload."""
        if self.id is None:
            checksum = await _checksum(rest)
            with self.store._boundary(self.key):
                await self.client.put_object(**self.target, Body=rest, **checksum)
            return
        if rest or not self.parts:
            await self.send(rest)
        with self.store._boundary(self.key):
            await self.client.complete_multipart_upload(
                **self.target, UploadId=self.id, MultipartUpload={"Parts": self.parts}
            )

    async def abort(self) -> None:
        """Abort the multipart upload, if one started: shielded from cancellation, bounded in time."""
        if self.id is None:
            return
        error = "timeout"
        with anyio.move_on_after(self.store.options.timeout * 2, shield=True):
            try:
                await self.client.abort_multipart_upload(**self.target, UploadId=self.id)
                return
            except (ClientError, *UNREACHABLE) as exc:
                error = type(exc).__name__
        log.warning("s3_upload_abort_failed", bucket=self.store.bucket, upload_id=self.id, error=error)

    def forget(self) -> None:
        """The put is over: sweeps may treat the upload (if one is left) as anyone's."""
        if self.id is not None:
            with _SENDING_LOCK:
                _SENDING.discard(self.id)


async def abort_stale(client: Any, bucket: str, prefix: str, older_than: float) -> int:
    """Abort the multipart uploads under ``prefix`` started over ``older_than`` seconds ago, but
    this process's own; return how many. Raises ClientError or an ``UNREACHABLE`` error."""
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    aborted = 0
    pages = client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix)
    async for page in pages:
        for upload in page.get("Uploads", ()):
            upload_id, key = str(upload["UploadId"]), str(upload["Key"])
            with _SENDING_LOCK:
                ours = upload_id in _SENDING
            if ours or upload["Initiated"] >= cutoff:
                continue
            try:
                await client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _GONE:
                    continue
                raise
            aborted += 1
    return aborted


async def _checksum(data: bytes) -> dict[str, str]:
    """Parameters that make S3 verify the body's SHA-256 (and keep it for ChecksumMode reads)."""
    digest = await anyio.to_thread.run_sync(lambda: hashlib.sha256(data).digest())  # GIL released
    return {"ChecksumAlgorithm": "SHA256", "ChecksumSHA256": base64.b64encode(digest).decode("ascii")}
