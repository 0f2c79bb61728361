"""Uploaded files and blob keys: the stored-file record, its errors, and input checks."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import PurePosixPath

import attrs

from studio9.errors import InvalidInput, NotFound, PayloadTooLarge

MAX_KEY_LENGTH = 500
MAX_NAME_LENGTH = 255
MAX_CONTENT_TYPE_LENGTH = 255
DEFAULT_CONTENT_TYPE = "application/octet-stream"
FILES_PREFIX = "files/"

# A key starts with a letter or digit: names starting with "." are left to the adapters'
# own bookkeeping (the file store's staging directory), so no key can ever reach them.
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")
# type/subtype with optional parameters, printable ASCII only (it goes back out in a header).
_CONTENT_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(\s*;[\x20-\x7e]*)?")


@attrs.frozen(kw_only=True)
class StoredFile:
    """A file someone uploaded; its bytes are the blob ``blob_key``."""

    id: str
    owner_id: str
    name: str
    size: int
    sha256: str
    content_type: str
    blob_key: str
    created_at: datetime


class FileNotFound(NotFound):
    def __init__(self, file_id: str) -> None:
        super().__init__(f"file {file_id!r} not found")
        self.file_id = file_id


class FileTooLarge(PayloadTooLarge):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload exceeds the limit of {limit} bytes", limit=limit)
        self.limit = limit


class BlobNotFound(NotFound):
    def __init__(self, key: str) -> None:
        super().__init__(f"blob {key!r} not found")
        self.key = key


def file_blob_key(file_id: str) -> str:
    """Where the bytes of an uploaded file live in the blob store."""
    return FILES_PREFIX + file_id


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe blob key; raise InvalidInput otherwise.

    Safe: 1-500 characters of ``A-Z a-z 0-9 . _ / -``, starting with a letter or digit,
    no empty, ``.`` or ``..`` segment and no trailing ``/``, so that no adapter can be
    led outside its root.
    """
    if not (len(key) <= MAX_KEY_LENGTH and _KEY.fullmatch(key) and _segments_ok(key.split("/"))):
        raise InvalidInput(
            "blob key must be 1-500 characters of A-Z, a-z, 0-9, '.', '_', '/' or '-', start with a"
            " letter or digit, and contain no empty, '.' or '..' segment",
            field="key",
            key=key[:MAX_KEY_LENGTH],
        )
    return key


def check_prefix(prefix: str) -> str:
    """Like ``check_key`` but a trailing ``/`` is allowed (``jobs/<id>/``); empty is refused."""
    if not (
        len(prefix) <= MAX_KEY_LENGTH
        and _KEY.fullmatch(prefix)
        and _segments_ok(prefix.removesuffix("/").split("/"))
    ):
        raise InvalidInput(
            "blob prefix must be a non-empty key, optionally ending with '/'",
            field="prefix",
            prefix=prefix[:MAX_KEY_LENGTH],
        )
    return prefix


def _segments_ok(segments: list[str]) -> bool:
    return all(segment not in {"", ".", ".."} for segment in segments)


def clean_name(name: str | None) -> str:
    """A safe display name for an upload: its base name, no control characters, ≤ 255 characters.

    Raises:
        InvalidInput: (field ``name``) nothing usable is left.
    """
    base = PurePosixPath((name or "").replace("\\", "/")).name
    base = "".join(c for c in base if unicodedata.category(c) not in {"Cc", "Cf", "Zl", "Zp"}).strip()
    if base in {"", ".", ".."}:
        raise InvalidInput(
            "a file name is needed (?name=, or a filename in Content-Disposition)", field="name"
        )
    if len(base) > MAX_NAME_LENGTH:
        suffix = PurePosixPath(base).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        base = base[: MAX_NAME_LENGTH - len(suffix)] + suffix
    return base


def clean_content_type(content_type: str | None) -> str:
    """The media type to store; ``application/octet-stream`` when none is given.

    Raises:
        InvalidInput: (field ``content_type``) it is not ``type/subtype[; params]`` in ≤ 255
            printable ASCII characters.
    """
    value = (content_type or "").strip()
    if not value:
        return DEFAULT_CONTENT_TYPE
    if len(value) > MAX_CONTENT_TYPE_LENGTH or not _CONTENT_TYPE.fullmatch(value):
        raise InvalidInput("content type must look like type/subtype", field="content_type")
    return value
