"""What only the S3 blob store does: multipart uploads, checksums, presigned URLs, failure modes.

Runs against moto's S3 server (the session fixture ``moto_endpoint``); the common BlobStore
contract is in ``test_blob_store.py``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import socket
import time
from collections.abc import AsyncIterator, Iterable
from urllib.parse import quote

import anyio
import anyio.lowlevel
import httpx
import pytest
from structlog.testing import capture_logs

from adapters.blob_store.s3 import S3BlobStore
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError, InvalidInput
from studio9.files.domain import BlobNotFound
from studio9.urls import AdapterURL
from tests.contract.test_blob_store import BLOBS, moto_s3, s3_bucket, s3_client, s3_leftovers

MIB = 1 << 20
SMALL_PARTS = f"multipart_threshold={5 * MIB}&part_size={5 * MIB}"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
AWKWARD_NAME = 'résumé "1".csv'


@pytest.fixture
def endpoint(request: pytest.FixtureRequest) -> str:
    return moto_s3(request)


@pytest.fixture
async def bucket(endpoint: str) -> AsyncIterator[str]:
    async with s3_bucket(endpoint) as name:
        yield name


@contextlib.asynccontextmanager
async def opened(url: str, *, timeout: float = 5.0, ping: bool = True) -> AsyncIterator[S3BlobStore]:
    store = S3BlobStore.from_url(AdapterURL.parse(url), AdapterOptions(timeout=timeout))
    try:
        if ping:
            await store.ping()
        yield store
    finally:
        await store.aclose()


async def _chunks(data: bytes, *sizes: int) -> AsyncIterator[bytes]:
    """``data`` in pieces of ``sizes`` (cycled), so that chunks straddle part boundaries."""
    start, turn = 0, 0
    while start < len(data):
        size = sizes[turn % len(sizes)] if sizes else 256 * 1024
        yield data[start : start + size]
        start, turn = start + size, turn + 1


async def _failing(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise RuntimeError("the client went away")


def _sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_large_blob_goes_up_in_parts_and_round_trips(endpoint: str, bucket: str) -> None:
    data = os.urandom(12 * MIB + 17)
    async with opened(f"s3://{bucket}/p?endpoint_url={endpoint}&create_bucket=true&{SMALL_PARTS}") as store:
        assert await store.put("files/big.bin", _chunks(data, 7 * MIB, 300 * 1024, 3 * MIB)) == len(data)
        chunks = [chunk async for chunk in await store.open("files/big.bin")]
        assert b"".join(chunks) == data
        assert max(len(chunk) for chunk in chunks) == MIB
        assert await store.size("files/big.bin") == len(data)
        async with s3_client(endpoint) as s3:
            head = await s3.head_object(Bucket=bucket, Key="p/files/big.bin", ChecksumMode="ENABLED")
        assert head["ETag"].strip('"').endswith("-3")  # 5 MiB + 5 MiB + 2 MiB
        assert head.get("ChecksumSHA256")  # the parts went up with their SHA-256
        assert await s3_leftovers(store) == ["files/big.bin"]


async def test_small_blob_is_one_put_carrying_its_sha256(endpoint: str, bucket: str) -> None:
    data = b"a small blob" * 1000
    async with opened(f"s3://{bucket}?endpoint_url={endpoint}&create_bucket=true") as store:
        await store.put("files/small", _chunks(data, 1000))
        async with s3_client(endpoint) as s3:
            head = await s3.head_object(Bucket=bucket, Key="files/small", ChecksumMode="ENABLED")
    assert "-" not in head["ETag"]
    assert head["ChecksumSHA256"] == _sha256(data)


async def test_failure_after_two_parts_aborts_the_upload(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}?endpoint_url={endpoint}&create_bucket=true&{SMALL_PARTS}") as store:
        with pytest.raises(RuntimeError, match="went away"):
            await store.put("files/partial", _failing([os.urandom(5 * MIB), os.urandom(5 * MIB), b"x" * MIB]))
        with pytest.raises(BlobNotFound):
            await store.size("files/partial")
        assert await s3_leftovers(store) == []  # no object, no pending multipart upload


async def test_cancelled_multipart_upload_is_aborted(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}?endpoint_url={endpoint}&create_bucket=true&{SMALL_PARTS}") as store:
        two_parts_sent = anyio.Event()

        async def endless() -> AsyncIterator[bytes]:
            count = 0
            while True:
                yield b"x" * MIB
                count += 1
                if count == 11:  # the 11th chunk is asked for once part 2 is in
                    two_parts_sent.set()
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(store.put, "files/cancelled", endless())
            await two_parts_sent.wait()
            tasks.cancel_scope.cancel()
        assert await s3_leftovers(store) == []


async def test_presigned_url_downloads_the_bytes_as_an_attachment(endpoint: str, bucket: str) -> None:
    data = os.urandom(3000)
    async with opened(f"s3://{bucket}/p?endpoint_url={endpoint}&create_bucket=true") as store:
        await store.put("jobs/j1/outputs/report.csv", _chunks(data))
        url = await store.presigned_url(
            "jobs/j1/outputs/report.csv", filename=AWKWARD_NAME, seconds=60, content_type="text/csv"
        )
        plain = await store.presigned_url("jobs/j1/outputs/report.csv")
        with pytest.raises(InvalidInput):
            await store.presigned_url("jobs/j1/outputs/report.csv", seconds=0)
        with pytest.raises(InvalidInput):
            await store.presigned_url("../escape")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
    assert "X-Amz-Expires=60" in url
    assert "X-Amz-Expires=300" in plain
    async with httpx.AsyncClient() as client:  # no credentials: the URL carries the signature
        answer = await client.get(url)
        assert (await client.get(plain)).content == data
    assert answer.status_code == 200
    assert answer.content == data
    assert answer.headers["content-type"] == "text/csv"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="r_sum_ _1_.csv"')
    assert f"filename*=UTF-8''{quote(AWKWARD_NAME, safe='')}" in disposition


async def test_delete_prefix_deletes_more_than_one_batch(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}/tenant?endpoint_url={endpoint}&create_bucket=true") as store:
        limiter = anyio.Semaphore(16)

        async def put(key: str) -> None:
            async with limiter:
                await store.put(key, _chunks(b"x"))

        async with anyio.create_task_group() as tasks:
            for number in range(1001):
                tasks.start_soon(put, f"jobs/j1/temp/{number:04d}")
            tasks.start_soon(put, "jobs/j10/outputs/kept")
        async with s3_client(endpoint) as s3:
            await s3.put_object(Bucket=bucket, Key="elsewhere/tenant/jobs/j1/x", Body=b"not ours")
        assert await store.delete_prefix("jobs/j1/") == 1001
        assert await s3_leftovers(store) == ["elsewhere/tenant/jobs/j1/x", "jobs/j10/outputs/kept"]


async def test_small_delete_batches_add_up(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}?endpoint_url={endpoint}&create_bucket=true&delete_batch=7") as store:
        for number in range(30):
            await store.put(f"files/{number:02d}", _chunks(b"x"))
        assert await store.delete_prefix("files/") == 30
        assert await store.delete_prefix("files/") == 0


async def test_keys_live_under_the_url_prefix(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}/tenant/a/?endpoint_url={endpoint}&create_bucket=true") as store:
        assert store.prefix == "tenant/a/"
        await store.put("files/x", _chunks(b"x"))
        async with s3_client(endpoint) as s3:
            listed = await s3.list_objects_v2(Bucket=bucket)
            await s3.put_object(Bucket=bucket, Key="files/x", Body=b"outside the prefix")
        assert [item["Key"] for item in listed["Contents"]] == ["tenant/a/files/x"]
        await store.delete("files/x")
        with pytest.raises(BlobNotFound):
            await store.open("files/x")


async def test_ping_on_a_missing_bucket_without_create_is_unavailable(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}?endpoint_url={endpoint}", ping=False) as store:
        with pytest.raises(BackendUnavailable, match=r"does not exist.*create_bucket=true"):
            await store.ping()
        with pytest.raises(BackendUnavailable):  # not BlobNotFound: the bucket is what is missing
            await store.open("files/x")
    with pytest.raises(ConfigError, match=bucket):
        async with bootstrap.open_adapter(
            BLOBS,
            f"s3://{bucket}?endpoint_url={endpoint}",
            setting="STUDIO9_BLOB_URL",
            options=AdapterOptions(),
        ):
            pass


async def test_unreachable_endpoint_is_unavailable_within_the_timeout() -> None:
    url = f"s3://AKIDEXAMPLE:{quote(SECRET, safe='')}@some-bucket?endpoint_url=http://127.0.0.1:{_closed_port()}"
    async with opened(url, timeout=2.0, ping=False) as store:
        started = time.monotonic()
        with capture_logs() as logs, pytest.raises(BackendUnavailable) as pinged:
            await store.ping()
        assert time.monotonic() - started < 2.5
        with (
            capture_logs() as more_logs,
            pytest.raises(BackendUnavailable, match="EndpointConnectionError") as put,
        ):
            await store.put("files/x", _chunks(b"x"))  # after botocore's retries, the cause is named
    shown = (
        " ".join(f"{error} {error.details} {error.__cause__!r}" for error in (pinged.value, put.value))
        + f"{logs} {more_logs} {AdapterURL.parse(url)}"
    )
    assert SECRET not in shown
    assert quote(SECRET, safe="") not in shown


async def test_silent_endpoint_is_unavailable_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"s3://some-bucket?endpoint_url=http://127.0.0.1:{silent.getsockname()[1]}"
        async with opened(url, timeout=1.0, ping=False) as store:
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match="did not answer in 1s"):
                await store.ping()
            assert time.monotonic() - started < 1.5


async def test_credentials_in_the_url_are_used(endpoint: str, bucket: str) -> None:
    url = f"s3://AKIDEXAMPLE:{quote(SECRET, safe='')}@{bucket}?endpoint_url={endpoint}&create_bucket=true"
    async with opened(url) as store:
        await store.put("files/x", _chunks(b"x"))
        assert await store.size("files/x") == 1
        assert SECRET not in repr(store.__dict__)  # kept by the botocore session only


async def test_closed_store_refuses_calls(endpoint: str, bucket: str) -> None:
    store = S3BlobStore.from_url(
        AdapterURL.parse(f"s3://{bucket}?endpoint_url={endpoint}&create_bucket=true"), AdapterOptions()
    )
    await store.ping()
    await store.aclose()
    await store.aclose()
    with pytest.raises(BackendUnavailable, match="closed"):
        await store.size("files/x")


@pytest.mark.parametrize(
    "url",
    [
        "s3://",
        "s3://Not_A_Bucket",
        "s3://bucket:9000",
        "s3://bucket/../up",
        "s3://bucket?part_size=1024",
        "s3://bucket?multipart_threshold=lots",
        "s3://bucket?delete_batch=1001",
        "s3://bucket?presign_seconds=0",
        "s3://bucket?create_bucket=maybe",
        "s3://bucket?regoin=eu-west-1",
        "s3://AKIDONLY@bucket",
    ],
)
def test_bad_urls_raise_config_error(url: str) -> None:
    with pytest.raises(ConfigError):
        S3BlobStore.from_url(AdapterURL.parse(url), AdapterOptions())


async def test_staging_sweep_aborts_old_uploads_under_the_prefix_only(endpoint: str, bucket: str) -> None:
    async with opened(f"s3://{bucket}/tenant-a?endpoint_url={endpoint}&create_bucket=true") as store:
        async with s3_client(endpoint) as s3:  # uploads a killed process left open, here and elsewhere
            await s3.create_multipart_upload(Bucket=bucket, Key="tenant-a/files/dead")
            await s3.create_multipart_upload(Bucket=bucket, Key="tenant-b/files/someone-elses")
            # moto dates every upload 2010-11-10, so "too young to sweep" cannot be shown here;
            # the age test is plain datetime arithmetic, and this process's uploads are spared
            # whatever their age (test_blob_store.py, on moto too).
            assert await store.sweep_staging(3600) == 1
            uploads = (await s3.list_multipart_uploads(Bucket=bucket)).get("Uploads", [])
        assert [upload["Key"] for upload in uploads] == ["tenant-b/files/someone-elses"]
        assert await store.sweep_staging(0) == 0
