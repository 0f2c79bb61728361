"""Config settings (the original ARGO): a JSON value per (service, name), with tags and history.

Every write makes a new version; the version is the setting's ETag, so a client that read
version 3 can say "only if it is still 3" (``If-Match``) and get 412 otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from studio9.errors import InvalidInput, NotFound

MAX_VALUE_BYTES = 64 * 1024
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
TAG_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_TAGS = 32


@attrs.frozen(kw_only=True)
class ConfigSetting:
    service: str
    name: str
    value: Any
    tags: tuple[str, ...] = ()
    version: int = 1
    created_at: datetime
    updated_at: datetime
    updated_by: str

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


@attrs.frozen(kw_only=True)
class ConfigSettingVersion:
    """One entry of a setting's history; ``deleted`` marks the version that removed it."""

    version: int
    value: Any
    tags: tuple[str, ...]
    by: str
    at: datetime
    deleted: bool = False


class SettingNotFound(NotFound):
    def __init__(self, service: str, name: str) -> None:
        super().__init__(f"config setting {service}/{name} not found")


def check_names(service: str, name: str) -> None:
    for field, value in (("service", service), ("name", name)):
        if not NAME_PATTERN.fullmatch(value):
            raise InvalidInput(f"{field} must be 1-100 characters of a-z, 0-9, '.', '_' or '-'", field=field)


def check_tags(tags: Sequence[str]) -> tuple[str, ...]:
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", field="tags")
    for tag in tags:
        if not TAG_PATTERN.fullmatch(tag):
            raise InvalidInput(
                f"tag {tag!r} must be 1-64 characters of letters, digits, '.', '_', ':' or '-'", field="tags"
            )
    return tuple(dict.fromkeys(tags))
