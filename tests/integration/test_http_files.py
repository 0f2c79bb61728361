"""Uploaded files over HTTP: streamed uploads and downloads, limits, ownership, paging.

The app is built here around the files controller alone (with the app's problem
handlers and request-context middleware); the caller is picked per request by an
``X-Test-User`` header from fixed principals, standing in for bearer tokens.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, Router
from litestar.di import Provide
from litestar.testing import AsyncTestClient

from adapters.blob_store.file import FileBlobStore
from adapters.blob_store.memory import MemoryBlobStore
from adapters.file_records.memory import MemoryFileRecords
from studio9.api.middleware import request_context
from studio9.api.problems import exception_handlers
from studio9.auth.domain import Principal, Role
from studio9.files.api import FileController
from studio9.files.domain import FileNotFound
from studio9.files.service import FileService

LIMIT = 8 * 1024 * 1024
SIX_MB = os.urandom(6 * 1024 * 1024 + 7)
TOO_BIG = SIX_MB * 2
PRINCIPALS = {
    name: Principal(
        user_id=f"user-{name}",
        username=name,
        role=Role.ADMIN if name == "admin" else Role.USER,
        token_id=f"token-{name}",
        token_expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    for name in ("ada", "bob", "admin")
}
ADA, BOB, ADMIN = ({"X-Test-User": name} for name in ("ada", "bob", "admin"))


class CountingBlobStore(MemoryBlobStore):
    """Records how many chunks each put received, to show uploads arrive as a stream."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks_per_put: list[int] = []

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        seen = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal seen
            async for chunk in chunks:
                seen += 1
                yield chunk

        try:
            return await super().put(key, counted())
        finally:
            self.chunks_per_put.append(seen)


@pytest.fixture
def blobs() -> CountingBlobStore:
    return CountingBlobStore()


@pytest.fixture
def records() -> MemoryFileRecords:
    return MemoryFileRecords()


@pytest.fixture
def service(blobs: CountingBlobStore, records: MemoryFileRecords) -> FileService:
    return FileService(blobs, records, max_upload_bytes=LIMIT)


@pytest.fixture
def app(service: FileService) -> Litestar:
    return _app(service)


def _app(service: FileService) -> Litestar:
    """The files routes as create_app mounts them, with fixed principals instead of tokens."""

    def provide_principal(request: Request[Any, Any, Any]) -> Principal:
        return PRINCIPALS[request.headers.get("x-test-user", "ada")]

    def provide_file_service() -> FileService:
        return service

    return Litestar(
        [Router("/api/v1", route_handlers=[FileController])],
        middleware=[request_context],
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "file_service": Provide(provide_file_service, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(),
        request_max_body_size=1024 * 1024,  # the app-wide JSON limit; uploads are exempt
        logging_config=None,
        debug=False,
    )


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app) as test_client:
        yield test_client


@pytest.fixture
async def streaming_client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """httpx's own ASGI transport sends a generator body as separate chunks, without Content-Length."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


def _is_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


async def _upload(client: Any, data: bytes, name: str = "data.bin", headers: Any = None) -> dict[str, Any]:
    response = await client.post(f"/api/v1/files?name={name}", content=data, headers=headers or ADA)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def _nothing_kept(blobs: CountingBlobStore, records: MemoryFileRecords) -> None:
    assert await records.list(None, limit=10) == []
    assert await blobs.delete_prefix("files/") == 0


async def test_raw_upload_of_several_mb_is_201_with_its_digest(client: AsyncTestClient[Litestar]) -> None:
    body = await _upload(client, SIX_MB)
    assert body.keys() == {"id", "name", "size", "sha256", "content_type", "created_at"}
    assert body["size"] == len(SIX_MB)
    assert body["sha256"] == hashlib.sha256(SIX_MB).hexdigest()
    assert (body["name"], body["content_type"]) == ("data.bin", "application/octet-stream")
    assert (await client.get(f"/api/v1/files/{body['id']}", headers=ADA)).json() == body


async def test_download_matches_byte_for_byte(client: AsyncTestClient[Litestar]) -> None:
    uploaded = await _upload(client, SIX_MB, name="model.bin")
    response = await client.get(f"/api/v1/files/{uploaded['id']}/content", headers=ADA)
    assert response.status_code == 200
    assert response.content == SIX_MB
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-length"] == str(len(SIX_MB))
    assert response.headers["content-disposition"].startswith('attachment; filename="model.bin"')
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_raw_upload_takes_name_and_type_from_headers(client: AsyncTestClient[Litestar]) -> None:
    headers = {
        **ADA,
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": (
            "attachment; filename=\"x.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%2F%20v2.csv"
        ),
    }
    response = await client.post("/api/v1/files", content=b"a,b\n1,2\n", headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["content_type"]) == ("v2.csv", "text/csv; charset=utf-8")
    download = await client.get(f"/api/v1/files/{body['id']}/content", headers=ADA)
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"].endswith("filename*=UTF-8''v2.csv")


async def test_path_in_name_is_reduced_to_its_base_name(client: AsyncTestClient[Litestar]) -> None:
    body = await _upload(client, b"x", name="..%2F..%2Fetc%2Fpasswd")
    assert body["name"] == "passwd"


async def test_raw_upload_is_streamed_chunk_by_chunk(
    streaming_client: httpx.AsyncClient, blobs: CountingBlobStore
) -> None:
    response = await streaming_client.post(
        "/api/v1/files?name=streamed.bin", content=_pieces(SIX_MB, 512 * 1024), headers=ADA
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(SIX_MB).hexdigest()
    assert blobs.chunks_per_put[-1] >= len(SIX_MB) // (512 * 1024)


async def test_multipart_upload_streams_its_file_part(
    streaming_client: httpx.AsyncClient, blobs: CountingBlobStore
) -> None:
    response = await streaming_client.post(
        "/api/v1/files", files={"file": ("report.csv", SIX_MB, "text/csv")}, headers=ADA
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["content_type"], body["size"]) == ("report.csv", "text/csv", len(SIX_MB))
    assert body["sha256"] == hashlib.sha256(SIX_MB).hexdigest()
    download = await streaming_client.get(f"/api/v1/files/{body['id']}/content", headers=ADA)
    assert download.content == SIX_MB


@pytest.mark.parametrize(
    "files",
    [
        {"upload": ("a.txt", b"a", "text/plain")},
        [("file", ("a.txt", b"a", "text/plain")), ("file", ("b.txt", b"b", "text/plain"))],
    ],
    ids=["wrong-part-name", "two-parts"],
)
async def test_multipart_needs_exactly_one_file_part(
    streaming_client: httpx.AsyncClient, blobs: CountingBlobStore, records: MemoryFileRecords, files: Any
) -> None:
    response = await streaming_client.post("/api/v1/files", files=files, headers=ADA)
    assert "file" in {e["field"] for e in _is_problem(response, 422)["errors"]}
    await _nothing_kept(blobs, records)


async def test_malformed_multipart_is_400(streaming_client: httpx.AsyncClient) -> None:
    response = await streaming_client.post(
        "/api/v1/files?name=x",
        content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\ntruncated',
        headers={**ADA, "Content-Type": "multipart/form-data; boundary=b"},
    )
    _is_problem(response, 400)


async def test_over_limit_upload_is_413_and_nothing_is_kept(
    client: AsyncTestClient[Litestar],
    streaming_client: httpx.AsyncClient,
    blobs: CountingBlobStore,
    records: MemoryFileRecords,
) -> None:
    declared = await client.post("/api/v1/files?name=big", content=TOO_BIG, headers=ADA)
    assert str(LIMIT) in _is_problem(declared, 413)["detail"]
    streamed = await streaming_client.post(
        "/api/v1/files?name=big", content=_pieces(TOO_BIG, 256 * 1024), headers=ADA
    )
    assert str(LIMIT) in _is_problem(streamed, 413)["detail"]
    assert blobs.chunks_per_put == [LIMIT // (256 * 1024)]  # stopped at the limit, not at the end
    multipart = await streaming_client.post(
        "/api/v1/files", files={"file": ("big.bin", TOO_BIG, "application/octet-stream")}, headers=ADA
    )
    _is_problem(multipart, 413)
    await _nothing_kept(blobs, records)


async def test_another_users_file_is_not_found(client: AsyncTestClient[Litestar]) -> None:
    uploaded = await _upload(client, b"private", headers=ADA)
    for method, path in [
        ("GET", f"/api/v1/files/{uploaded['id']}"),
        ("GET", f"/api/v1/files/{uploaded['id']}/content"),
        ("DELETE", f"/api/v1/files/{uploaded['id']}"),
    ]:
        _is_problem(await client.request(method, path, headers=BOB), 404)
    assert (await client.get("/api/v1/files", headers=BOB)).json() == {"items": [], "next_cursor": None}
    assert (await client.get(f"/api/v1/files/{uploaded['id']}", headers=ADMIN)).status_code == 200
    assert (await client.get(f"/api/v1/files/{uploaded['id']}/content", headers=ADA)).content == b"private"


async def test_list_pages_newest_first(client: AsyncTestClient[Litestar]) -> None:
    ids = [(await _upload(client, f"file {i}".encode(), name=f"f{i}.txt"))["id"] for i in range(5)]
    await _upload(client, b"bob's", headers=BOB)
    seen: list[str] = []
    cursor = ""
    while True:
        page = (await client.get(f"/api/v1/files?limit=2{cursor}", headers=ADA)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == sorted(ids, reverse=True)
    everyone = (await client.get("/api/v1/files?limit=500", headers=ADMIN)).json()
    assert len(everyone["items"]) == 6


@pytest.mark.parametrize("limit", ["0", "501", "many"])
async def test_bad_limit_is_rejected_naming_it(client: AsyncTestClient[Litestar], limit: str) -> None:
    response = await client.get(f"/api/v1/files?limit={limit}", headers=ADA)
    assert response.status_code in {400, 422}
    assert "limit" in response.text


async def test_delete_is_204_then_404(
    client: AsyncTestClient[Litestar], blobs: CountingBlobStore, records: MemoryFileRecords
) -> None:
    uploaded = await _upload(client, b"short-lived")
    assert (await client.delete(f"/api/v1/files/{uploaded['id']}", headers=ADA)).status_code == 204
    _is_problem(await client.get(f"/api/v1/files/{uploaded['id']}", headers=ADA), 404)
    _is_problem(await client.get(f"/api/v1/files/{uploaded['id']}/content", headers=ADA), 404)
    _is_problem(await client.delete(f"/api/v1/files/{uploaded['id']}", headers=ADA), 404)
    await _nothing_kept(blobs, records)


async def test_missing_name_is_422_naming_the_field(
    client: AsyncTestClient[Litestar], blobs: CountingBlobStore, records: MemoryFileRecords
) -> None:
    response = await client.post("/api/v1/files", content=b"anonymous", headers=ADA)
    body = _is_problem(response, 422)
    assert body["errors"][0]["field"] == "name"
    await _nothing_kept(blobs, records)


def test_routes_have_their_operation_ids_and_tag(app: Litestar) -> None:
    operations = {
        (method, path): operation
        for path, item in (app.openapi_schema.paths or {}).items()
        for method, operation in [
            ("POST", item.post),
            ("GET", item.get),
            ("DELETE", item.delete),
        ]
        if operation is not None
    }
    assert {(m, p): o.operation_id for (m, p), o in operations.items()} == {
        ("POST", "/api/v1/files"): "UploadFile",
        ("GET", "/api/v1/files"): "ListFiles",
        ("GET", "/api/v1/files/{file_id}"): "GetFile",
        ("GET", "/api/v1/files/{file_id}/content"): "DownloadFile",
        ("DELETE", "/api/v1/files/{file_id}"): "DeleteFile",
    }
    assert all(o.tags == ["files"] for o in operations.values())


async def test_file_blob_store_streams_both_ways(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "blobs")
    await blobs.ping()
    service = FileService(blobs, MemoryFileRecords(), max_upload_bytes=LIMIT)
    async with AsyncTestClient(app=_app(service)) as client:
        uploaded = await _upload(client, SIX_MB)
        assert (tmp_path / "blobs" / "files" / uploaded["id"]).stat().st_size == len(SIX_MB)
        download = await client.get(f"/api/v1/files/{uploaded['id']}/content", headers=ADA)
        assert download.content == SIX_MB
        assert (await client.delete(f"/api/v1/files/{uploaded['id']}", headers=ADA)).status_code == 204
    assert [p.name for p in (tmp_path / "blobs").iterdir()] == [".staging"]


async def test_jobs_read_an_upload_through_a_local_path_checked_by_owner(
    client: AsyncTestClient[Litestar], service: FileService
) -> None:
    uploaded = await _upload(client, b"a,b\n1,2\n", name="input.csv")
    async with service.local_path("user-ada", uploaded["id"]) as path:
        assert path.read_bytes() == b"a,b\n1,2\n"
        assert path.suffix == ""  # the blob key files/<id> has no extension
    async with service.local_path(None, uploaded["id"]) as path:
        assert path.read_bytes() == b"a,b\n1,2\n"
    with pytest.raises(FileNotFound):
        async with service.local_path("user-bob", uploaded["id"]):
            pass
