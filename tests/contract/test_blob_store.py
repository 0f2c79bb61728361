"""BlobStore contract, run against every blob adapter (memory://, file://, s3:// on moto's server)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import anyio.lowlevel
import pytest

from adapters.blob_store.file import FileBlobStore
from adapters.blob_store.memory import MemoryBlobStore
from adapters.blob_store.s3 import S3BlobStore
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.errors import InvalidInput, NotFound
from studio9.files.domain import BlobNotFound
from studio9.files.ports import BlobStore

# The scheme table of the composition root, with the adapters of this issue (see the report).
BLOBS = {
    **bootstrap.BLOB_STORES,
    "memory": "adapters.blob_store.memory:MemoryBlobStore",
    "s3": "adapters.blob_store.s3:S3BlobStore",
}
FIVE_MB = os.urandom(5 * 1024 * 1024 + 123)


@pytest.fixture(params=["memory", "file", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    async with contextlib.AsyncExitStack() as stack:
        if request.param == "s3":
            endpoint = moto_s3(request)
            bucket = await stack.enter_async_context(s3_bucket(endpoint))
            url = f"s3://{bucket}/tenant-a/blobs?endpoint_url={endpoint}&create_bucket=true"
        else:
            url = "memory://" if request.param == "memory" else f"file://{tmp_path}/blobs"
        yield await stack.enter_async_context(
            bootstrap.open_adapter(
                BLOBS, url, setting="STUDIO9_BLOB_URL", options=AdapterOptions(data_dir=tmp_path)
            )
        )


def moto_s3(request: pytest.FixtureRequest) -> str:
    """The endpoint of the session's moto server; fails the test, clearly, when it cannot start."""
    try:
        return str(request.getfixturevalue("moto_endpoint"))
    except Exception as exc:  # any start-up failure, import errors included
        pytest.fail(f"moto's S3 server could not start, so s3:// cannot be tested: {exc!r}", pytrace=False)


def s3_client(endpoint: str) -> Any:
    """A plain aioboto3 S3 client on moto, to look behind the adapter's back."""
    return aioboto3.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")


@contextlib.asynccontextmanager
async def s3_bucket(endpoint: str) -> AsyncIterator[str]:
    """A unique bucket name for one test (the adapter creates it); emptied and dropped on exit."""
    bucket = f"studio9-test-{uuid.uuid4().hex[:12]}"
    try:
        yield bucket
    finally:
        async with s3_client(endpoint) as s3:
            with contextlib.suppress(s3.exceptions.NoSuchBucket):
                for upload in (await s3.list_multipart_uploads(Bucket=bucket)).get("Uploads", []):
                    await s3.abort_multipart_upload(
                        Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                    if keys := [{"Key": item["Key"]} for item in page.get("Contents", [])]:
                        await s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
                await s3.delete_bucket(Bucket=bucket)


async def s3_leftovers(store: S3BlobStore) -> list[str]:
    """Every object under the store's prefix, and ``upload:<key>`` for each unfinished multipart upload."""
    assert store.endpoint_url is not None
    async with s3_client(store.endpoint_url) as s3:
        found = [
            item["Key"].removeprefix(store.prefix)
            async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
            for item in page.get("Contents", [])
        ]
        uploads = (await s3.list_multipart_uploads(Bucket=store.bucket)).get("Uploads", [])
    return sorted(found + [f"upload:{upload['Key']}" for upload in uploads])


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _read(store: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in await store.open(key)])


async def _failing(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part
    raise RuntimeError("the client went away")


async def _leftovers(store: BlobStore) -> list[str]:
    """Every file under a file store's root (staging included), every object and pending
    multipart upload of an S3 store; nothing for memory."""
    if isinstance(store, S3BlobStore):
        return await s3_leftovers(store)
    if not isinstance(store, FileBlobStore):
        return []
    return sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())


async def test_put_then_open_round_trips_many_chunks(store: BlobStore) -> None:
    size = await store.put("files/big", _chunks(FIVE_MB))
    assert size == len(FIVE_MB)
    chunks = [chunk async for chunk in await store.open("files/big")]
    assert len(chunks) > 1
    assert hashlib.sha256(b"".join(chunks)).digest() == hashlib.sha256(FIVE_MB).digest()
    assert await store.size("files/big") == len(FIVE_MB)


async def test_empty_blob_round_trips(store: BlobStore) -> None:
    assert await store.put("files/empty", _chunks(b"")) == 0
    assert await _read(store, "files/empty") == b""
    assert await store.size("files/empty") == 0


async def test_put_overwrites(store: BlobStore) -> None:
    await store.put("jobs/j1/outputs/result.csv", _chunks(b"old contents, longer"))
    await store.put("jobs/j1/outputs/result.csv", _chunks(b"new"))
    assert await _read(store, "jobs/j1/outputs/result.csv") == b"new"
    assert await store.size("jobs/j1/outputs/result.csv") == 3


async def test_absent_blob_raises_blob_not_found_before_any_chunk(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        await store.open("files/missing")
    with pytest.raises(NotFound):
        await store.size("files/missing")
    with pytest.raises(BlobNotFound):
        async with store.local_path("files/missing"):
            pass


async def test_delete_is_idempotent(store: BlobStore) -> None:
    await store.put("files/a", _chunks(b"a"))
    await store.delete("files/a")
    await store.delete("files/a")
    await store.delete("never/there")
    with pytest.raises(BlobNotFound):
        await store.size("files/a")


async def test_delete_prefix_removes_only_matching_keys(store: BlobStore) -> None:
    keys = ["jobs/j1/inputs/a", "jobs/j1/outputs/b", "jobs/j1/temp/x/y", "jobs/j10/outputs/c", "files/j1"]
    for key in keys:
        await store.put(key, _chunks(key.encode()))
    assert await store.delete_prefix("jobs/j1/") == 3
    assert await store.delete_prefix("jobs/j1/") == 0
    assert await _read(store, "jobs/j10/outputs/c") == b"jobs/j10/outputs/c"
    assert await _read(store, "files/j1") == b"files/j1"
    assert await store.delete_prefix("jobs/j") == 1
    assert await store.delete_prefix("nothing/here/") == 0
    if isinstance(store, FileBlobStore | S3BlobStore):
        assert await _leftovers(store) == ["files/j1"]
    if isinstance(store, FileBlobStore):  # files gone, and the directories they emptied
        assert sorted(p.name for p in store.root.iterdir() if p.name != ".staging") == ["files"]


async def test_list_prefix_lists_every_key_under_it_with_its_size_in_key_order(store: BlobStore) -> None:
    blobs = {
        "jobs/j1/z": b"zz",
        "jobs/j1/a/b/c": b"abc",
        "jobs/j1/a.txt": b"",
        "jobs/j10/x": b"x",
        "files/j1": b"f",
    }
    for key, data in blobs.items():
        await store.put(key, _chunks(data))
    assert await store.list_prefix("jobs/j1/") == [
        ("jobs/j1/a.txt", 0),
        ("jobs/j1/a/b/c", 3),
        ("jobs/j1/z", 2),
    ]
    assert await store.list_prefix("jobs/j1") == [
        ("jobs/j1/a.txt", 0),
        ("jobs/j1/a/b/c", 3),
        ("jobs/j1/z", 2),
        ("jobs/j10/x", 1),
    ]
    assert await store.list_prefix("jobs/j1/a/") == [("jobs/j1/a/b/c", 3)]
    assert await store.list_prefix("jobs/j1/z/") == []  # a blob is no directory
    assert await store.list_prefix("nothing/here/") == []
    with pytest.raises(InvalidInput):
        await store.list_prefix("../")


async def test_local_path_holds_the_bytes(store: BlobStore) -> None:
    await store.put("jobs/j1/inputs/table.parquet", _chunks(FIVE_MB))
    async with store.local_path("jobs/j1/inputs/table.parquet") as path:
        assert path.suffix == ".parquet"
        assert path.read_bytes() == FIVE_MB
    if isinstance(store, MemoryBlobStore):
        assert not path.exists()  # the spilled copy is gone
    assert await store.size("jobs/j1/inputs/table.parquet") == len(FIVE_MB)


@pytest.mark.parametrize(
    "key", ["", "../x", "a/../../x", "/abs", "a//b", "a/./b", "a/", ".staging/x", "sp ace", "x" * 501, "é"]
)
async def test_bad_keys_raise_invalid_input(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        await store.put(key, _chunks(b"x"))
    with pytest.raises(InvalidInput):
        await store.open(key)
    with pytest.raises(InvalidInput):
        await store.size(key)
    with pytest.raises(InvalidInput):
        await store.delete(key)
    with pytest.raises(InvalidInput):
        async with store.local_path(key):
            pass


@pytest.mark.parametrize("prefix", ["", "/", "../", "/abs/", "a/../"])
async def test_bad_prefixes_raise_invalid_input(store: BlobStore, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        await store.delete_prefix(prefix)


async def test_failing_chunks_leave_nothing_behind(store: BlobStore) -> None:
    with pytest.raises(RuntimeError, match="went away"):
        await store.put("files/partial", _failing([FIVE_MB[: 3 << 20], FIVE_MB[3 << 20 :]]))
    with pytest.raises(BlobNotFound):
        await store.open("files/partial")
    assert await _leftovers(store) == []


async def test_failed_overwrite_keeps_the_old_blob(store: BlobStore) -> None:
    await store.put("files/kept", _chunks(b"old"))
    with pytest.raises(RuntimeError):
        await store.put("files/kept", _failing([b"new, partial"]))
    assert await _read(store, "files/kept") == b"old"


async def test_cancelled_put_leaves_nothing_behind(store: BlobStore) -> None:
    started = anyio.Event()

    async def endless() -> AsyncIterator[bytes]:
        while True:
            yield b"x" * (1 << 20)
            started.set()
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put, "files/cancelled", endless())
        await started.wait()
        await anyio.sleep(0.05)
        tasks.cancel_scope.cancel()
    with pytest.raises(BlobNotFound):
        await store.size("files/cancelled")
    assert await _leftovers(store) == []


async def test_readers_never_see_a_partial_blob(store: BlobStore) -> None:
    await store.put("files/atomic", _chunks(b"a" * 1000))
    gate = anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield b"b" * (2 << 20)
        await gate.wait()
        yield b"b" * 1000

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put, "files/atomic", slow())
        await anyio.sleep(0.05)
        assert await _read(store, "files/atomic") == b"a" * 1000
        gate.set()
    assert await store.size("files/atomic") == (2 << 20) + 1000


async def test_file_store_never_leaves_its_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    store = FileBlobStore(tmp_path / "blobs")
    await store.ping()
    (tmp_path / "blobs" / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidInput):
        await store.open("link/secret")
    with pytest.raises(InvalidInput):
        await store.put("link/planted", _chunks(b"x"))
    with pytest.raises(InvalidInput):
        await store.delete("link/secret")
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


async def test_abandoned_reads_release_the_blob(store: BlobStore) -> None:
    await store.put("files/abandoned", _chunks(FIVE_MB))
    unread = await store.open("files/abandoned")
    partly_read = await store.open("files/abandoned")
    assert len(await anext(partly_read)) > 0
    del unread, partly_read
    await store.delete("files/abandoned")
    assert await _leftovers(store) == []


async def test_staging_sweep_spares_stored_blobs_and_uploads_in_progress(store: BlobStore) -> None:
    # older_than=0: everything staged counts as old, so only the "ours" rule keeps the upload alive.
    await store.put("files/kept", _chunks(b"kept"))
    first_part_in, gate = anyio.Event(), anyio.Event()

    async def slow() -> AsyncIterator[bytes]:
        yield FIVE_MB + FIVE_MB  # past the S3 threshold: a multipart upload is open
        first_part_in.set()
        await gate.wait()
        yield b"end"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put, "files/slow", slow())
        await first_part_in.wait()
        assert await store.sweep_staging(0) == 0
        gate.set()
    assert await _read(store, "files/slow") == FIVE_MB + FIVE_MB + b"end"
    assert await _read(store, "files/kept") == b"kept"
    assert await store.sweep_staging(0) == 0
    assert await _leftovers(store) == (
        [] if isinstance(store, MemoryBlobStore) else ["files/kept", "files/slow"]
    )


async def test_file_staging_sweep_removes_old_parts_and_keeps_fresh_ones(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    await store.ping()
    staging = tmp_path / "blobs" / ".staging"
    staging.mkdir()
    two_days_ago = time.time() - 2 * 86400
    for name in ("dead.part", "notes.txt"):  # a crash's leftover, and a file that is not ours to judge
        (staging / name).write_bytes(b"x")
        os.utime(staging / name, (two_days_ago, two_days_ago))
    (staging / "live.part").write_bytes(b"y")  # written to a moment ago: another process's upload
    assert await store.sweep_staging(86400) == 1
    assert sorted(p.name for p in staging.iterdir()) == ["live.part", "notes.txt"]
    assert await store.sweep_staging(86400) == 0


async def test_file_staging_sweep_never_removes_an_upload_of_this_process(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    written, gate = anyio.Event(), anyio.Event()

    async def paused() -> AsyncIterator[bytes]:
        yield b"a" * (2 << 20)  # over one write's worth: the part is on disk
        written.set()
        await gate.wait()
        yield b"b"

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(store.put, "files/paused", paused())
        await written.wait()
        (part,) = (tmp_path / "blobs" / ".staging").iterdir()
        os.utime(part, (0, 0))  # as old as can be: only its being ours keeps it
        assert await store.sweep_staging(86400) == 0
        gate.set()
    assert await store.size("files/paused") == (2 << 20) + 1
