"""Blobs as objects in one S3 bucket (AWS, or anything speaking S3: MinIO, LocalStack, moto).

URL:      s3://bucket/optional/prefix?region=eu-west-1&endpoint_url=http://127.0.0.1:9000
            &multipart_threshold=8388608&part_size=8388608&presign_seconds=300&create_bucket=false
            (also ``delete_batch=1000`` and ``addressing_style=auto|path|virtual``)
          Credentials come from the standard AWS chain (environment, profile, instance or task
          role). A URL's ``user:password`` is taken as access key id and secret key; it is
          never logged nor put in an error message.
Features: atomic puts (an object appears only on PutObject / CompleteMultipartUpload) ·
          S3 checks the SHA-256 of every object and part on arrival · streamed multipart
          uploads, memory bounded by about one part · failed or cancelled uploads aborted ·
          presigned GET URLs (``presigned_url``) · local_path streams to a temporary file
Extra:    cloud (aioboto3)

A blob ``a/b`` is the object ``<prefix>/a/b``. The client is created on first use, on the
running event loop, and closed by ``aclose()``. When an abort itself fails (the endpoint
went away mid-upload), the parts stay in the bucket until a lifecycle rule
``AbortIncompleteMultipartUpload`` removes them: give production buckets one (1 day).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Self
from urllib.parse import quote

import aioboto3
import aiohttp
import anyio
import anyio.to_thread
import attrs
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL, redact
from studio9.errors import BackendUnavailable, ConfigError, InvalidInput, PayloadTooLarge, Studio9Error
from studio9.files.domain import BlobNotFound, check_key, check_prefix

log = structlog.get_logger()

CHUNK_SIZE = 1 << 20  # 1 MiB: the chunks open() yields
MIN_PART_SIZE = 5 << 20  # S3's least size for every part but the last
MAX_PART_SIZE = 5 << 30  # S3's largest part, and largest single PutObject
MAX_PARTS = 10_000
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
_SETTING = "STUDIO9_BLOB_URL"
_OPTIONS = frozenset(
    [
        "region",
        "endpoint_url",
        "addressing_style",
        "multipart_threshold",
        "part_size",
        "presign_seconds",
        "delete_batch",
        "create_bucket",
    ]
)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_NO_BUCKET = frozenset({"NoSuchBucket", "NotFound", "404"})
_THRESHOLD_CHECKSUM_IN_THREAD = 1 << 20


class S3BlobStore:
    def __init__(
        self,
        session: Any,
        bucket: str,
        *,
        prefix: str = "",
        client_options: Mapping[str, Any],
        timeout: float,
        multipart_threshold: int = 8 << 20,
        part_size: int = 8 << 20,
        presign_seconds: int = 300,
        delete_batch: int = 1000,
        create_bucket: bool = False,
    ) -> None:
        self.bucket, self.prefix = bucket, prefix
        self.endpoint_url: str | None = client_options.get("endpoint_url")
        self._session, self._client_options, self._timeout = session, dict(client_options), timeout
        self._threshold, self._part_size = multipart_threshold, part_size
        self._presign_seconds, self._delete_batch = presign_seconds, delete_batch
        self._create_bucket = create_bucket
        self._stack = contextlib.AsyncExitStack()
        self._lock = anyio.Lock()
        self._client: Any = None
        self._closed = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the store from ``s3://bucket/prefix?…``; raise ConfigError for a bad URL."""
        if not url.host or not _BUCKET.fullmatch(url.host) or url.port is not None:
            raise ConfigError(
                f"{url} needs a valid bucket name: s3://bucket/optional/prefix", setting=_SETTING
            )
        unknown = sorted(set(url.query) - _OPTIONS)
        if unknown:
            raise ConfigError(
                f"unknown s3:// option(s) {unknown}; expected {sorted(_OPTIONS)}", setting=_SETTING
            )
        if (url.username is None) != (url.password is None):
            raise ConfigError(
                "s3://KEY:SECRET@bucket needs both the access key and the secret", setting=_SETTING
            )
        prefix = url.path.strip("/")
        try:
            prefix = check_key(prefix) + "/" if prefix else ""
        except InvalidInput:
            raise ConfigError(f"{url} has an invalid key prefix {prefix!r}", setting=_SETTING) from None
        query = url.query
        endpoint = query.get("endpoint_url")
        style = query.get("addressing_style", "path" if endpoint else "auto")
        if style not in {"auto", "path", "virtual"}:
            raise ConfigError("addressing_style must be auto, path or virtual", setting=_SETTING)
        config = Config(
            connect_timeout=options.timeout,
            read_timeout=options.timeout,
            retries={"mode": "standard", "max_attempts": 3},
            signature_version="s3v4",
            s3={"addressing_style": style},
        )
        session = aioboto3.Session(aws_access_key_id=url.username, aws_secret_access_key=url.password)
        return cls(
            session,
            url.host,
            prefix=prefix,
            client_options={"region_name": query.get("region"), "endpoint_url": endpoint, "config": config},
            timeout=options.timeout,
            multipart_threshold=_int(query, "multipart_threshold", 8 << 20, MIN_PART_SIZE, MAX_PART_SIZE),
            part_size=_int(query, "part_size", 8 << 20, MIN_PART_SIZE, MAX_PART_SIZE),
            presign_seconds=_int(query, "presign_seconds", 300, 1, MAX_PRESIGN_SECONDS),
            delete_batch=_int(query, "delete_batch", 1000, 1, 1000),
            create_bucket=_bool(query, "create_bucket"),
        )

    async def ping(self) -> None:
        """HeadBucket (creating the bucket when ``create_bucket=true``), within the timeout."""
        try:
            with anyio.fail_after(self._timeout):
                client = await self._s3()
                with self._boundary():
                    try:
                        await client.head_bucket(Bucket=self.bucket)
                    except ClientError as exc:
                        if not (self._create_bucket and _code(exc) in _NO_BUCKET):
                            raise
                        await self._make_bucket(client)
        except TimeoutError:
            raise BackendUnavailable(
                f"S3 bucket {self.bucket!r} did not answer within {self._timeout:g}s"
            ) from None

    async def aclose(self) -> None:
        self._closed, self._client = True, None
        await self._stack.aclose()

    # -- the BlobStore port ---------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        upload = _Upload(self, await self._s3(), key, self._name(key))
        buffer, size = bytearray(), 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if upload.id is None and len(buffer) < self._threshold:
                    continue
                while len(buffer) >= self._part_size:
                    with memoryview(buffer) as view:
                        part = bytes(view[: self._part_size])
                    del buffer[: self._part_size]  # memory stays at about one part
                    await upload.send(part)
            with anyio.CancelScope(shield=True):  # every byte is in: finish the commit
                await upload.finish(bytes(buffer))
        except BaseException:
            await upload.abort()
            raise
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        chunks = self._download(key, self._name(key))
        await chunks.__anext__()  # sends GetObject (or raises BlobNotFound) before any chunk
        return chunks

    async def size(self, key: str) -> int:
        name = self._name(key)
        client = await self._s3()
        with self._boundary(key):
            head = await client.head_object(Bucket=self.bucket, Key=name)
        return int(head["ContentLength"])

    async def delete(self, key: str) -> None:
        name = self._name(key)
        client = await self._s3()
        with self._boundary(key):
            await client.delete_object(Bucket=self.bucket, Key=name)

    async def delete_prefix(self, prefix: str) -> int:
        full = self.prefix + check_prefix(prefix)
        client = await self._s3()
        deleted, batch = 0, []
        with self._boundary():
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": self._delete_batch}
            )
            async for page in pages:
                for item in page.get("Contents", ()):
                    batch.append({"Key": item["Key"]})
                    if len(batch) == self._delete_batch:
                        deleted += await self._delete_objects(client, batch)
                        batch = []
            if batch:
                deleted += await self._delete_objects(client, batch)
        return deleted

    @contextlib.asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        chunks = self._download(key, self._name(key))
        try:
            await chunks.__anext__()  # BlobNotFound on entry, before any file is made
            path = await _spill(chunks, PurePosixPath(key).suffix)
        finally:
            await chunks.aclose()
        try:
            yield path
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # synchronous, so that it also runs in a cancelled scope

    # -- extra capability -----------------------------------------------------------------

    async def presigned_url(
        self,
        key: str,
        *,
        filename: str | None = None,
        seconds: int | None = None,
        content_type: str | None = None,
    ) -> str:
        """A URL that GETs the blob without credentials, valid ``seconds`` (default ``presign_seconds``).

        ``filename`` makes S3 answer with ``Content-Disposition: attachment`` for it, and
        ``content_type`` overrides the stored media type. The blob's existence is not
        checked: the URL answers 404 when it is absent. The URL is a bearer credential:
        hand it to the client it is for, never log it.

        Raises:
            InvalidInput: a bad key, or ``seconds`` outside 1-604800.
        """
        name = self._name(key)
        expires = self._presign_seconds if seconds is None else seconds
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise InvalidInput(f"seconds must be 1-{MAX_PRESIGN_SECONDS}", field="seconds")
        params = {"Bucket": self.bucket, "Key": name}
        if filename is not None:
            params["ResponseContentDisposition"] = _attachment(filename)
        if content_type is not None:
            params["ResponseContentType"] = content_type
        client = await self._s3()
        with self._boundary(key):
            url = await client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)
        return str(url)

    # -- helpers --------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _s3(self) -> Any:
        """The client, created on first use on the running loop."""
        if self._client is None:
            async with self._lock:
                if self._closed:
                    raise BackendUnavailable(f"S3 blob store for bucket {self.bucket!r} is closed")
                if self._client is None:
                    with self._boundary():
                        creator = self._session.client("s3", **self._client_options)
                        self._client = await self._stack.enter_async_context(creator)
        return self._client

    async def _download(self, key: str, name: str) -> AsyncGenerator[bytes, None]:
        client = await self._s3()
        with self._boundary(key):
            response = await client.get_object(Bucket=self.bucket, Key=name)
        body = response["Body"]
        try:
            yield b""  # primer, consumed by open()
            while True:
                with self._boundary(key):
                    chunk = await _read_up_to(body, CHUNK_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()  # synchronous, so that it also runs in a cancelled scope

    async def _delete_objects(self, client: Any, batch: list[dict[str, str]]) -> int:
        answer = await client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors", [])
        if errors:
            codes = sorted({str(error.get("Code")) for error in errors})
            raise BackendUnavailable(f"S3 refused to delete {len(errors)} objects: {codes}", codes=codes)
        return len(batch)

    async def _make_bucket(self, client: Any) -> None:
        region = client.meta.region_name
        extra = (
            {}
            if region in {None, "us-east-1"}
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        try:
            await client.create_bucket(Bucket=self.bucket, **extra)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise
        log.info("s3_bucket_created", bucket=self.bucket)

    @contextlib.contextmanager
    def _boundary(self, key: str | None = None) -> Iterator[None]:
        """Translate botocore/aiobotocore errors; ``key`` set means a 404 is BlobNotFound."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, key) from exc
        except (BotoCoreError, aiohttp.ClientError) as exc:
            raise BackendUnavailable(
                f"S3 bucket {self.bucket!r} unreachable: {type(exc).__name__}: {redact(str(exc))}"
            ) from exc

    def _client_error(self, exc: ClientError, key: str | None) -> Studio9Error:
        # Only the code and operation: a server message may echo signed request details.
        code, operation = _code(exc), exc.operation_name
        if key is not None and code in _NOT_FOUND:
            return BlobNotFound(key)
        if code in _NO_BUCKET:
            hint = "" if self._create_bucket else " (create_bucket=true creates it, for dev and tests)"
            return BackendUnavailable(f"S3 bucket {self.bucket!r} does not exist{hint}", code=code)
        if code == "EntityTooLarge":
            return PayloadTooLarge(f"S3 refused the blob as too large ({operation})", code=code)
        return BackendUnavailable(f"S3 {operation} on bucket {self.bucket!r} failed: {code}", code=code)


@attrs.define
class _Upload:
    """One put: a single PutObject, or a multipart upload once the blob reaches the threshold."""

    store: S3BlobStore
    client: Any
    key: str
    name: str
    id: str | None = None
    parts: list[dict[str, Any]] = attrs.Factory(list)

    async def send(self, data: bytes) -> None:
        """Upload ``data`` as the next part, starting the multipart upload first if needed."""
        store = self.store
        if len(self.parts) == MAX_PARTS:
            limit = MAX_PARTS * store._part_size
            raise PayloadTooLarge(f"blob exceeds {limit} bytes ({MAX_PARTS} parts of part_size)", limit=limit)
        if self.id is None:
            with anyio.CancelScope(shield=True), store._boundary(self.key):  # an upload we start, we know
                answer = await self.client.create_multipart_upload(
                    Bucket=store.bucket, Key=self.name, ChecksumAlgorithm="SHA256"
                )
            self.id = str(answer["UploadId"])
        number, checksum = len(self.parts) + 1, await _sha256(data)
        with store._boundary(self.key):
            answer = await self.client.upload_part(
                Bucket=store.bucket,
                Key=self.name,
                UploadId=self.id,
                PartNumber=number,
                Body=data,
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=checksum,
            )
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})

    async def finish(self, rest: bytes) -> None:
        """Store ``rest`` as the whole blob, or as the last part and complete the upload."""
        store = self.store
        if self.id is None:
            checksum = await _sha256(rest)
            with store._boundary(self.key):
                await self.client.put_object(
                    Bucket=store.bucket,
                    Key=self.name,
                    Body=rest,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
            return
        if rest or not self.parts:
            await self.send(rest)
        with store._boundary(self.key):
            await self.client.complete_multipart_upload(
                Bucket=store.bucket, Key=self.name, UploadId=self.id, MultipartUpload={"Parts": self.parts}
            )

    async def abort(self) -> None:
        """Abort the multipart upload if one started: shielded from cancellation, bounded in time."""
        if self.id is None:
            return
        store, error = self.store, "timeout"
        with anyio.move_on_after(store._timeout * 2, shield=True):
            try:
                await self.client.abort_multipart_upload(Bucket=store.bucket, Key=self.name, UploadId=self.id)
                return
            except (BotoCoreError, ClientError, aiohttp.ClientError) as exc:
                error = type(exc).__name__
        log.warning("s3_upload_abort_failed", bucket=store.bucket, key=self.name, error=error)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


async def _read_up_to(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a streaming body (the socket hands out smaller pieces)."""
    buffer = bytearray()
    while len(buffer) < size:
        piece = await body.read(size - len(buffer))
        if not piece:
            break
        buffer += piece
    return bytes(buffer)


async def _sha256(data: bytes) -> str:
    """The base64 SHA-256 S3 checks; hashed in a thread when large (hashlib releases the GIL)."""
    if len(data) < _THRESHOLD_CHECKSUM_IN_THREAD:
        return _b64_sha256(data)
    return await anyio.to_thread.run_sync(_b64_sha256, data)


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


async def _spill(chunks: AsyncIterator[bytes], suffix: str) -> Path:
    # Keep the key's extension: some readers pick a format from the file name.
    fd, name = await anyio.to_thread.run_sync(lambda: tempfile.mkstemp(prefix="studio9-blob-", suffix=suffix))
    try:
        async with await anyio.open_file(fd, "wb") as handle:
            async for chunk in chunks:
                await handle.write(chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return Path(name)


def _attachment(name: str) -> str:
    """A Content-Disposition for ``name``: an ASCII fallback plus the exact UTF-8 name (RFC 6266)."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _int(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"s3:// option {name} must be an integer in {low}-{high}", setting=_SETTING)
    return value


def _bool(query: Mapping[str, str], name: str) -> bool:
    raw = query.get(name, "false").lower()
    if raw not in {"true", "false", "1", "0", "yes", "no"}:
        raise ConfigError(f"s3:// option {name} must be true or false", setting=_SETTING)
    return raw in {"true", "1", "yes"}
