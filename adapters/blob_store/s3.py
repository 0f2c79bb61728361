"""Blobs as objects in one S3 bucket (AWS, or anything speaking S3: MinIO, LocalStack, moto).

URL:      s3://bucket/optional/prefix?region=eu-west-1&endpoint_url=http://127.0.0.1:9000&create_bucket=false
          &multipart_threshold=8388608&part_size=8388608&presign_seconds=300&delete_batch=1000
          Credentials: the standard AWS chain (environment, profile, instance/task role); a URL's
          ``user:password`` is taken as access key id and secret key, never logged nor shown.
Features: atomic puts (objects appear on PutObject / CompleteMultipartUpload) · S3 checks the
          SHA-256 of every object and part · streamed multipart uploads, memory ~one part ·
          failed, cancelled and (``sweep_staging``) abandoned uploads aborted · presigned GET URLs
Extra:    cloud (aioboto3)

A blob ``a/b`` is the object ``<prefix>/a/b``. The client is made on first use, on the running
loop, and closed by ``aclose()``. Multipart uploads are ``s3_multipart``'s; an abort that fails
(the endpoint went away), or a killed process, leaves parts behind until ``sweep_staging`` (or
a bucket's ``AbortIncompleteMultipartUpload`` rule) aborts the upload.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Self
from urllib.parse import quote

import aioboto3
import anyio
import anyio.to_thread
import attrs
import structlog
from botocore.config import Config
from botocore.exceptions import ClientError

from adapters.blob_store.s3_multipart import UNREACHABLE as _UNREACHABLE
from adapters.blob_store.s3_multipart import Upload, abort_stale
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError, InvalidInput, PayloadTooLarge, Studio9Error
from studio9.files.domain import BlobNotFound, check_key, check_prefix
from studio9.urls import AdapterURL, redact

log = structlog.get_logger()

CHUNK_SIZE = 1 << 20  # 1 MiB: the chunks open() yields
MIN_PART_SIZE = 5 << 20  # S3's least size for every part but the last
MAX_PART_SIZE = 5 << 30  # S3's largest part, and largest single PutObject
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's limit
_SETTING = "STUDIO9_BLOB_URL"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_NOT_FOUND = frozenset({"NoSuchKey", "NotFound", "404"})
_NO_BUCKET = frozenset({"NoSuchBucket", "NotFound", "404"})
_NUMBERS = frozenset({"multipart_threshold", "part_size", "presign_seconds", "delete_batch"})
_OPTIONS = _NUMBERS | {"region", "endpoint_url", "create_bucket"}
_CONFIG: dict[str, Any] = {
    "retries": {"mode": "standard", "max_attempts": 3},
    "signature_version": "s3v4",
    "max_pool_connections": 64,  # an open() holds one for as long as its reader reads (default: 10)
}


def _within(low: int, high: int) -> list[Any]:
    return [attrs.validators.instance_of(int), attrs.validators.ge(low), attrs.validators.le(high)]


@attrs.frozen(kw_only=True)
class S3Options:
    """Where the blobs go in the bucket, and the numeric options of an ``s3://`` URL (S3's limits)."""

    prefix: str = ""  # "" or "some/prefix/"
    timeout: float = 5.0
    create_bucket: bool = False
    multipart_threshold: int = attrs.field(default=8 << 20, validator=_within(MIN_PART_SIZE, MAX_PART_SIZE))
    part_size: int = attrs.field(default=8 << 20, validator=_within(MIN_PART_SIZE, MAX_PART_SIZE))
    presign_seconds: int = attrs.field(default=300, validator=_within(1, MAX_PRESIGN_SECONDS))
    delete_batch: int = attrs.field(default=1000, validator=_within(1, 1000))


class S3BlobStore:
    def __init__(self, session: Any, bucket: str, client_args: Mapping[str, Any], options: S3Options) -> None:
        self.bucket, self.prefix, self.options = bucket, options.prefix, options
        self.endpoint_url: str | None = client_args.get("endpoint_url")
        self._session, self._client_args = session, dict(client_args)
        self._stack = contextlib.AsyncExitStack()
        self._lock = anyio.Lock()
        self._client: Any = None
        self._closed = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the store from ``s3://bucket/prefix?…``; raise ConfigError for a bad URL."""
        if not url.host or not _BUCKET.fullmatch(url.host) or url.port is not None:
            raise ConfigError(f"{url} needs a valid bucket: s3://bucket/optional/prefix", setting=_SETTING)
        if unknown := sorted(set(url.query) - _OPTIONS):
            raise ConfigError(f"unknown s3:// options {unknown}; known: {sorted(_OPTIONS)}", setting=_SETTING)
        if (url.username is None) != (url.password is None):
            raise ConfigError("s3://KEY:SECRET@bucket needs both key and secret", setting=_SETTING)
        create = url.query.get("create_bucket", "false").lower()
        prefix = url.path.strip("/")
        try:
            prefix = check_key(prefix) + "/" if prefix else ""
            if create not in {"true", "false"}:
                raise ValueError("create_bucket must be true or false")
            numbers: dict[str, Any] = {k: int(v) for k, v in url.query.items() if k in _NUMBERS}
            opts = S3Options(
                prefix=prefix, timeout=options.timeout, create_bucket=create == "true", **numbers
            )
        except (InvalidInput, ValueError, TypeError) as exc:
            reason = f"invalid key prefix {prefix!r}" if isinstance(exc, InvalidInput) else str(exc)
            raise ConfigError(f"{url}: {reason}", setting=_SETTING) from None
        endpoint = url.query.get("endpoint_url")
        style = "path" if endpoint else "auto"  # servers on an address (moto, MinIO): no bucket hosts
        timeouts = {"connect_timeout": options.timeout, "read_timeout": options.timeout}
        config = Config(**_CONFIG, **timeouts, s3={"addressing_style": style})
        session = aioboto3.Session(aws_access_key_id=url.username, aws_secret_access_key=url.password)
        client_args = {"region_name": url.query.get("region"), "endpoint_url": endpoint, "config": config}
        return cls(session, url.host, client_args, opts)

    async def ping(self) -> None:
        """HeadBucket (CreateBucket too when ``create_bucket=true``), within the timeout."""
        with anyio.move_on_after(self.options.timeout) as deadline, self._boundary():
            client = await self._s3()
            try:
                await client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if not (self.options.create_bucket and _code(exc) in _NO_BUCKET):
                    raise
                await self._make_bucket(client)
        if deadline.cancelled_caught:
            raise BackendUnavailable(f"S3 bucket {self.bucket!r} did not answer in {self.options.timeout:g}s")

    async def aclose(self) -> None:
        self._closed, self._client = True, None
        await self._stack.aclose()

    # -- the BlobStore port ---------------------------------------------------------------

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        target = {"Bucket": self.bucket, "Key": self._name(key)}  # the key is checked first
        upload = Upload(self, await self._s3(), key, target)
        threshold, part_size = self.options.multipart_threshold, self.options.part_size
        buffer, size = bytearray(), 0
        try:
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if upload.id is None and len(buffer) < threshold:
                    continue
                while len(buffer) >= part_size:
                    with memoryview(buffer) as view:
                        part = bytes(view[:part_size])
                    del buffer[:part_size]  # memory stays at about one part
                    await upload.send(part)
            with anyio.CancelScope(shield=True):  # every byte is in: finish the commit
                await upload.finish(bytes(buffer))
        except BaseException:
            await upload.abort()
            raise
        finally:
            upload.forget()
        return size

    async def open(self, key: str) -> AsyncIterator[bytes]:
        chunks = self._download(key)
        await chunks.__anext__()  # sends GetObject (or raises BlobNotFound) before any chunk
        return chunks

    async def size(self, key: str) -> int:
        name, client = self._name(key), await self._s3()
        with self._boundary(key):
            return int((await client.head_object(Bucket=self.bucket, Key=name))["ContentLength"])

    async def delete(self, key: str) -> None:
        name, client = self._name(key), await self._s3()
        with self._boundary(key):
            await client.delete_object(Bucket=self.bucket, Key=name)

    async def delete_prefix(self, prefix: str) -> int:
        full, batch_size = self.prefix + check_prefix(prefix), self.options.delete_batch
        client, deleted, batch = await self._s3(), 0, []
        with self._boundary():
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full, PaginationConfig={"PageSize": batch_size}
            )
            async for page in pages:
                for item in page.get("Contents", ()):
                    batch.append({"Key": item["Key"]})
                    if len(batch) == batch_size:
                        deleted, batch = deleted + await self._delete_objects(client, batch), []
            if batch:
                deleted += await self._delete_objects(client, batch)
        return deleted

    async def list_prefix(self, prefix: str) -> list[tuple[str, int]]:
        full, client = self.prefix + check_prefix(prefix), await self._s3()
        found: list[tuple[str, int]] = []
        with self._boundary():
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            async for page in pages:
                found.extend(
                    (item["Key"][len(self.prefix) :], int(item["Size"])) for item in page.get("Contents", ())
                )
        return sorted(found)

    @contextlib.asynccontextmanager
    async def local_path(self, key: str) -> AsyncIterator[Path]:
        chunks = self._download(key)
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

    async def presigned_url(
        self,
        key: str,
        *,
        filename: str | None = None,
        seconds: int | None = None,
        content_type: str | None = None,
    ) -> str:
        """A URL that GETs the blob without credentials, for ``seconds`` (default ``presign_seconds``).

        ``filename`` makes S3 answer ``Content-Disposition: attachment`` with that name, and
        ``content_type`` sets the answer's media type. Existence is not checked: the URL
        answers 404 for an absent blob. The URL is a bearer credential: never log it.

        Raises:
            InvalidInput: a bad key, or ``seconds`` outside 1-604800.
        """
        params = {"Bucket": self.bucket, "Key": self._name(key)}
        expires = self.options.presign_seconds if seconds is None else seconds
        if not 1 <= expires <= MAX_PRESIGN_SECONDS:
            raise InvalidInput(f"seconds must be 1-{MAX_PRESIGN_SECONDS}", field="seconds")
        if filename is not None:
            params["ResponseContentDisposition"] = _attachment(filename)
        if content_type is not None:
            params["ResponseContentType"] = content_type
        client = await self._s3()
        with self._boundary(key):
            return str(await client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    async def sweep_staging(self, older_than: float) -> int:
        with self._boundary():
            return await abort_stale(await self._s3(), self.bucket, self.prefix, older_than)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def _s3(self) -> Any:
        """The client, created on first use, on the running loop."""
        if self._client is None:
            async with self._lock:
                if self._closed:
                    raise BackendUnavailable(f"the S3 blob store of bucket {self.bucket!r} is closed")
                if self._client is None:
                    with self._boundary():
                        creator = self._session.client("s3", **self._client_args)
                        self._client = await self._stack.enter_async_context(creator)
        return self._client

    async def _download(self, key: str) -> AsyncGenerator[bytes, None]:
        name, client = self._name(key), await self._s3()
        with self._boundary(key):
            body = (await client.get_object(Bucket=self.bucket, Key=name))["Body"]
        try:
            yield b""  # primer, consumed by open()
            with self._boundary(key):
                while chunk := await _read_up_to(body, CHUNK_SIZE):
                    yield chunk
        finally:
            body.close()  # synchronous, so that it also runs in a cancelled scope

    async def _delete_objects(self, client: Any, batch: list[dict[str, str]]) -> int:
        answer = await client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        if errors := answer.get("Errors", []):
            codes = sorted({str(error.get("Code")) for error in errors})
            raise BackendUnavailable(f"S3 refused to delete {len(errors)} objects: {codes}", codes=codes)
        return len(batch)

    async def _make_bucket(self, client: Any) -> None:
        region, extra = client.meta.region_name, {}
        if region not in {None, "us-east-1"}:  # us-east-1 refuses its own name as a constraint
            extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await client.create_bucket(Bucket=self.bucket, **extra)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise
        log.info("s3_bucket_created", bucket=self.bucket)

    @contextlib.contextmanager
    def _boundary(self, key: str | None = None) -> Iterator[None]:
        """Translate botocore/aiobotocore errors; with ``key``, a 404 is BlobNotFound."""
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, key) from exc
        except _UNREACHABLE as exc:
            message = f"S3 bucket {self.bucket!r} unreachable: {type(exc).__name__}: {redact(str(exc))}"
            raise BackendUnavailable(message) from exc

    def _client_error(self, exc: ClientError, key: str | None) -> Studio9Error:
        # Only the code and operation: a server message may echo signed request details.
        code, operation = _code(exc), exc.operation_name
        if key is not None and code in _NOT_FOUND:
            return BlobNotFound(key)
        if code in _NO_BUCKET:
            hint = "" if self.options.create_bucket else " (create_bucket=true creates it, for dev and tests)"
            return BackendUnavailable(f"S3 bucket {self.bucket!r} does not exist{hint}", code=code)
        if code == "EntityTooLarge":
            return PayloadTooLarge(f"S3 refused the blob as too large ({operation})", code=code)
        return BackendUnavailable(f"S3 {operation} on bucket {self.bucket!r} failed: {code}", code=code)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


async def _read_up_to(body: Any, size: int) -> bytes:
    """Up to ``size`` bytes of a streaming body (the socket hands out smaller pieces)."""
    buffer = bytearray()
    while len(buffer) < size and (piece := await body.read(size - len(buffer))):
        buffer += piece
    return bytes(buffer)


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
