"""HTTP routes of the files context: streamed uploads and downloads, listing, deletion.

Uploads are never buffered whole: a raw body goes from ``request.stream()`` to the blob
store chunk by chunk, and a ``multipart/form-data`` body is parsed incrementally with
the push parser Litestar itself uses, the single ``file`` part streamed the same way.
The app-wide body limit does not apply to the upload route; ``FileService`` enforces
its own (``max_upload_bytes``) on the bytes as they arrive.
"""

import contextlib
import email.message
import email.utils
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter, SkipValidation
from litestar.response import Redirect, Stream
from multipart import (  # type: ignore[import-untyped]  # Litestar's own multipart dependency
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
)

from studio9.auth.domain import Principal
from studio9.errors import InvalidInput, MalformedRequest
from studio9.files.domain import StoredFile
from studio9.files.ports import Presigner
from studio9.files.service import FileService
from studio9.web.paging import keyset_page
from studio9.web.responses import REDIRECT, also, problems

ONE_PART = "a multipart upload needs exactly one part, named 'file'"


class FileOut(msgspec.Struct):
    id: str
    name: str
    size: int
    sha256: str
    content_type: str
    created_at: datetime

    @classmethod
    def from_domain(cls, stored: StoredFile) -> "FileOut":
        return cls(
            id=stored.id,
            name=stored.name,
            size=stored.size,
            sha256=stored.sha256,
            content_type=stored.content_type,
            created_at=stored.created_at,
        )


class FileListOut(msgspec.Struct):
    items: list[FileOut]
    next_cursor: str | None


class FileController(Controller):
    path = "/files"
    tags = ["files"]

    @post("/", operation_id="UploadFile", status_code=201, request_max_body_size=None)
    async def upload(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        file_service: NamedDependency[FileService],
        name: Annotated[str | None, QueryParameter(max_length=1024)] = None,
    ) -> FileOut:
        """Upload a file, streamed.

        Send the bytes as the raw body (name from ``?name=`` or the Content-Disposition
        filename, type from Content-Type), or as ``multipart/form-data`` with one part
        named ``file`` (name from ``?name=`` or the part's filename). Over the upload
        limit the answer is 413 and nothing is kept.
        """
        media_type, options = request.content_type
        if media_type == "multipart/form-data":
            part, chunks = await _file_part(request, options.get("boundary"))
            async with contextlib.aclosing(chunks):
                stored = await file_service.upload(
                    principal, name or part.filename, part.content_type, chunks
                )
        else:
            stored = await file_service.upload(
                principal,
                name or _disposition_filename(request.headers.get("content-disposition")),
                request.headers.get("content-type"),
                request.stream(),
                declared_size=request.content_length,
            )
        return FileOut.from_domain(stored)

    @get("/", operation_id="ListFiles")
    async def list_files(
        self,
        principal: NamedDependency[Principal],
        file_service: NamedDependency[FileService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> FileListOut:
        """The caller's files (admins: everyone's), newest first; pass ``next_cursor`` back as ``cursor``."""
        page, next_cursor = await keyset_page(
            lambda size, after: file_service.list(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda file: file.id,
        )
        return FileListOut([FileOut.from_domain(f) for f in page], next_cursor=next_cursor)

    @get("/{file_id:str}", operation_id="GetFile")
    async def get_file(
        self,
        file_id: FromPath[str],
        principal: NamedDependency[Principal],
        file_service: NamedDependency[FileService],
    ) -> FileOut:
        """One file's description."""
        return FileOut.from_domain(await file_service.get(principal, file_id))

    @get("/{file_id:str}/content", operation_id="DownloadFile", responses=also(307, None, REDIRECT))
    async def download(
        self,
        file_id: FromPath[str],
        principal: NamedDependency[Principal],
        file_service: NamedDependency[FileService],
        presigner: NamedDependency[SkipValidation[Presigner | None]],
    ) -> Stream | Redirect:
        """The file's bytes as an attachment: streamed, or a 307 redirect to a short-lived URL of
        the blob store where it can presign (S3, with ``STUDIO9_BLOB_REDIRECTS`` on)."""
        if presigner is not None:
            stored = await file_service.get(principal, file_id)
            url = await presigner.presigned_url(
                stored.blob_key, filename=stored.name, content_type=stored.content_type
            )
            return Redirect(url, status_code=307, headers={"cache-control": "no-store"})
        stored, chunks = await file_service.open(principal, file_id)
        return Stream(
            chunks,
            headers={
                # Lower-case names: Litestar only fills in a header it does not find as such.
                "content-type": stored.content_type,
                "content-length": str(stored.size),
                "content-disposition": _attachment(stored.name),
                "etag": f'"{stored.sha256}"',
                "x-content-type-options": "nosniff",
            },
        )

    @delete("/{file_id:str}", operation_id="DeleteFile", status_code=204, responses=problems(403, 409))
    async def delete_file(
        self,
        file_id: FromPath[str],
        principal: NamedDependency[Principal],
        file_service: NamedDependency[FileService],
    ) -> None:
        """Delete a file and its bytes (409 while assets derived from it exist: delete those first,
        or the file's asset with `?force=true`)."""
        await file_service.delete(principal, file_id)


def provide_file_service(request: Request[Any, Any, Any]) -> FileService:
    """The ``file_service`` dependency: the container's FileService."""
    service: FileService = request.app.state.container.files
    return service


def _disposition_filename(header: str | None) -> str | None:
    """The filename of a Content-Disposition header; ``filename*`` (RFC 6266) wins over ``filename``."""
    if not header:
        return None
    message = email.message.Message()
    message["content-disposition"] = header
    # Typed as (str, str) pairs, but email decodes an RFC 2231 ``filename*`` into a
    # (charset, language, text) tuple.
    params: list[tuple[str, Any]] = message.get_params(header="content-disposition") or []
    values = [value for key, value in params[1:] if key == "filename"]
    if not values:
        return None
    chosen = next((value for value in values if isinstance(value, tuple)), values[0])
    return email.utils.collapse_rfc2231_value(chosen)


def _attachment(name: str) -> str:
    """A Content-Disposition for ``name``: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _file_part(
    request: Request[Any, Any, Any], boundary: str | None
) -> tuple[Any, AsyncGenerator[bytes, None]]:
    """The header of the ``file`` part and an iterator over its body, read as it arrives."""
    if not boundary:
        raise MalformedRequest("multipart/form-data without a boundary")
    events = _form_events(request.stream(), boundary)
    first = await anext(events, None)
    if not isinstance(first, MultipartSegment) or first.name != "file":
        await events.aclose()
        raise InvalidInput(ONE_PART, field="file")
    return first, _part_body(events)


async def _part_body(events: AsyncGenerator[Any, None]) -> AsyncGenerator[bytes, None]:
    async with contextlib.aclosing(events):
        async for event in events:
            if event is None:  # end of the part
                break
            yield bytes(event)
        async for _ in events:  # anything after it is a second part
            raise InvalidInput(ONE_PART, field="file")


async def _form_events(stream: AsyncIterator[bytes], boundary: str) -> AsyncGenerator[Any, None]:
    """Parser events: a MultipartSegment, its body chunks, None at its end; repeated per part."""
    try:
        with PushMultipartParser(boundary, max_segment_count=2) as parser:
            while not parser.closed:
                chunk = await anext(stream, b"")
                for event in parser.parse(chunk):
                    yield event
    except MultipartError as exc:
        raise MalformedRequest(f"invalid multipart/form-data body: {exc}") from exc
