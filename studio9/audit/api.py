"""HTTP route of the audit log: ``GET /api/v1/audit``, the events of an asset (its owner) or of
everything (admins). The events are recorded by the HTTP shell (``studio9.api.audit_hook``),
never through a route: no route changes or removes one."""

from datetime import UTC, datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from studio9.audit.domain import MAX_LIMIT, AuditEvent
from studio9.audit.service import EVENT_CURSOR, AuditService
from studio9.auth.domain import Principal
from studio9.errors import InvalidInput
from studio9.web.paging import CURSOR_DESCRIPTION, keyset_page
from studio9.web.responses import problems

# Years 0001-9999, upper-case ``T``/``Z``, a zone: the part of RFC 3339 ``datetime.fromisoformat``
# reads (``format: date-time`` keeps months, days and offsets real); or a date (UTC midnight).
_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_SINCE_SCHEMA: Final = {
    "anyOf": [
        {"type": "string", "format": "date", "pattern": f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"},
        {
            "type": "string",
            "format": "date-time",
            "pattern": (
                f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}T[0-9]{{2}}:[0-9]{{2}}:[0-5][0-9]"
                r"(?:\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})$"
            ),
        },
    ]
}
_Since = Annotated[
    str | None,
    QueryParameter(
        description="Events at or after this time: ISO 8601 with a time zone (2026-11-28T12:00:00Z), "
        "or a date (UTC midnight).",
        schema_extra=_SINCE_SCHEMA,
    ),
]


class AuditEventOut(msgspec.Struct):
    """One write: who (``actor_id``, through ``token_id``, from ``address``), what (``action``:
    ``"<METHOD> <route template>"``, about ``object_id``), when (``at``). ``detail`` has the
    path parameters, the response status and the request id; never a body or a secret."""

    id: int
    at: datetime
    actor_id: str | None
    token_id: str | None
    address: str | None
    action: str
    object_id: str | None
    detail: dict[str, Any]

    @classmethod
    def from_domain(cls, event: AuditEvent) -> "AuditEventOut":
        return cls(
            id=event.id,
            at=event.at,
            actor_id=event.actor_id,
            token_id=event.token_id,
            address=event.address,
            action=event.action,
            object_id=event.object_id,
            detail=dict(event.detail),
        )


class AuditPageOut(msgspec.Struct):
    items: list[AuditEventOut]
    next_cursor: str | None


class AuditController(Controller):
    path = "/audit"
    tags = ["audit"]

    @get("/", operation_id="ListAuditEvents", responses=problems(403, 404))
    async def list_events(
        self,
        principal: NamedDependency[Principal],
        audit_service: NamedDependency[AuditService],
        asset: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        actor: Annotated[str | None, QueryParameter(min_length=1, max_length=64)] = None,
        since: _Since = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[
            str | None, QueryParameter(pattern=f"^(?:{EVENT_CURSOR})$", description=CURSOR_DESCRIPTION)
        ] = None,
    ) -> AuditPageOut:
        """Every write (who, what, when, from which address, through which token), newest first.
        Admins read all of it; anyone else must name an asset they own (``asset``; 422 without
        it, 404 for one they may not read, 403 for one they read but do not own) and may filter
        by ``actor`` only as themself. Pass ``next_cursor`` back as ``cursor``."""
        moment = _time(since)
        page, next_cursor = await keyset_page(
            lambda size, after: audit_service.events(
                principal, asset=asset, actor_id=actor, since=moment, limit=size, after=after
            ),
            limit=limit,
            cursor=cursor,
            key=lambda event: str(event.id),
            pattern=EVENT_CURSOR,
        )
        return AuditPageOut([AuditEventOut.from_domain(e) for e in page], next_cursor=next_cursor)


def provide_audit_service(request: Request[Any, Any, Any]) -> AuditService:
    """The ``audit_service`` dependency: the container's AuditService."""
    service: AuditService = request.app.state.container.audit
    return service


def _time(text: str | None) -> datetime | None:
    """``since`` as an aware datetime; a bare date is that day's UTC midnight."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"since {text!r} is not an ISO 8601 time", field="since") from None
    if len(text) == 10:  # YYYY-MM-DD
        return moment.replace(tzinfo=UTC)
    if moment.utcoffset() is None:
        raise InvalidInput(f"since {text!r} needs a time zone, e.g. 'Z'", field="since")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: before, or after, every event
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)
