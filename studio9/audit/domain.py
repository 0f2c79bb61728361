"""The audit log's values: who did what, when, from which address, through which token.

An event is appended once and never changed or removed (the SQL table refuses it with triggers;
the memory store has no method for it). Its ``action`` is one of a small vocabulary:

* an HTTP write (POST, PUT, PATCH, DELETE answered with a 2xx): ``"<METHOD> <route template>"``,
  e.g. ``"PATCH /api/v1/tables/{table_id}"``; its ``detail`` holds the path parameters
  (``path``), the response status (``status``) and the request id (``request_id``, which finds
  the request's log lines);
* a login (``POST /api/v1/auth/tokens``) is such a write too: the actor is the user the password
  authenticated and the token is the one it issued.

``detail`` never holds a request body, a query string, a token secret or a password: no secret
reaches the log (nor, through ``GET /api/v1/audit``, another user).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import attrs

from studio9.errors import InvalidInput

#: Methods whose successful answers are recorded: every write of the API.
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Column widths (``adapters/audit_log/sql_models.py``): longer values are cut, never refused, so
#: recording a write never fails on a long path parameter.
MAX_ID_LENGTH: Final = 64
MAX_ACTION_LENGTH: Final = 128
MAX_DETAIL_VALUE_LENGTH: Final = 256
#: Keys of ``detail`` for an HTTP write.
DETAIL_PATH: Final = "path"
DETAIL_STATUS: Final = "status"
DETAIL_REQUEST_ID: Final = "request_id"
#: Most events one page of ``GET /api/v1/audit`` holds; a query reads one more (is there a next page?).
MAX_LIMIT: Final = 500


def http_action(method: str, template: str) -> str:
    """The action of an HTTP write: ``"PATCH /api/v1/tables/{table_id}"``."""
    return f"{method.upper()} {template}"


def http_detail(path_params: Mapping[str, Any], status: int, request_id: str | None) -> dict[str, Any]:
    """The detail of an HTTP write: its path parameters (as text, each cut to 256 characters),
    the response status and the request id. Nothing else of the request goes in."""
    detail: dict[str, Any] = {
        DETAIL_PATH: {str(k): _clip(str(v), MAX_DETAIL_VALUE_LENGTH) for k, v in path_params.items()},
        DETAIL_STATUS: status,
    }
    if request_id is not None:
        detail[DETAIL_REQUEST_ID] = request_id
    return detail


def object_of(path_params: Mapping[str, Any]) -> str | None:
    """The object a write is about: its ``asset_id`` path parameter when it has one (linking an
    asset into a project is about the asset: its owner reads the trail), else the first path
    parameter named ``id`` or ``*_id``."""
    if "asset_id" in path_params:
        return str(path_params["asset_id"])
    for name, value in path_params.items():
        if name == "id" or name.endswith("_id"):
            return str(value)
    return None


def _clip(value: str, width: int) -> str:
    return value[:width]


def _clip_id(value: str | None) -> str | None:
    return None if value is None else _clip(value, MAX_ID_LENGTH)


def _clip_action(value: str) -> str:
    return _clip(value, MAX_ACTION_LENGTH)


def _detail(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return dict(value)


def _utc(instance: Any, attribute: attrs.Attribute[datetime], value: datetime) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{attribute.name} must be timezone-aware")


@attrs.frozen(kw_only=True)
class NewAuditEvent:
    """An event to append; the log numbers it."""

    at: datetime = attrs.field(validator=_utc)
    actor_id: str | None
    token_id: str | None = attrs.field(default=None, converter=_clip_id)
    address: str | None = attrs.field(default=None, converter=_clip_id)
    action: str = attrs.field(converter=_clip_action)
    object_id: str | None = attrs.field(default=None, converter=_clip_id)
    detail: Mapping[str, Any] = attrs.field(factory=dict, converter=_detail)

    def numbered(self, event_id: int) -> AuditEvent:
        """The stored event, numbered ``event_id``."""
        return AuditEvent(id=event_id, **attrs.asdict(self, recurse=False))


@attrs.frozen(kw_only=True)
class AuditEvent:
    """An appended event. ``id`` grows with every append: the newest event has the largest."""

    id: int
    at: datetime
    actor_id: str | None
    token_id: str | None
    address: str | None
    action: str
    object_id: str | None
    detail: Mapping[str, Any]


def _limit(instance: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise InvalidInput("limit must be at least 1", field="limit")


@attrs.frozen(kw_only=True)
class AuditQuery:
    """Which events to read, newest first: those about ``object_id``, by ``actor_id``, at or
    after ``since``, below event ``after_id``; at most ``limit``."""

    object_id: str | None = None
    actor_id: str | None = None
    since: datetime | None = attrs.field(default=None, validator=attrs.validators.optional(_utc))
    limit: int = attrs.field(default=50, validator=_limit)
    after_id: int | None = None

    def matches(self, event: AuditEvent) -> bool:
        """Whether ``event`` is one this query reads (its limit aside)."""
        return (
            (self.object_id is None or event.object_id == self.object_id)
            and (self.actor_id is None or event.actor_id == self.actor_id)
            and (self.since is None or event.at >= self.since)
            and (self.after_id is None or event.id < self.after_id)
        )
