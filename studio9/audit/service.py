"""Use cases of the audit log: record an event, read events back.

Who may read: an admin reads every event; anyone else reads only the events about an asset
they own, so they must name it (``asset``; without it, 422). An asset they may not read is
not found (404, as on every asset route); one they may read but do not own is a
PermissionDenied (403). A non-admin's ``actor`` filter may only name themself. An asset's
trail outlives it: once deleted, only admins read it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from studio9.audit.domain import MAX_LIMIT, AuditEvent, AuditQuery, NewAuditEvent
from studio9.audit.ports import AuditLog
from studio9.auth.domain import Principal, TokenNotFound
from studio9.auth.ports import TokenStore
from studio9.catalog.ports import Assets
from studio9.errors import InvalidInput, PermissionDenied

#: The cursor of the audit list: an event id (below 10^18, within PostgreSQL's BIGINT).
EVENT_CURSOR: Final = "[1-9][0-9]{0,17}"


def utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.define
class AuditService:
    log: AuditLog
    assets: Assets
    #: Whose token a login issued: a login's actor.
    tokens: TokenStore
    clock: Callable[[], datetime] = utcnow

    async def record(
        self,
        *,
        action: str,
        actor_id: str | None,
        token_id: str | None = None,
        address: str | None = None,
        object_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one event, stamped now. Its ``detail`` must hold no secret (the domain's
        ``http_detail`` builds one that cannot).

        Raises:
            BackendUnavailable: the database did not answer.
        """
        await self.log.append(
            [
                NewAuditEvent(
                    at=self.clock(),
                    actor_id=actor_id,
                    token_id=token_id,
                    address=address,
                    action=action,
                    object_id=object_id,
                    detail=detail or {},
                )
            ]
        )

    async def token_user(self, token_id: str) -> str | None:
        """The user of token ``token_id`` (the actor of the login that issued it), None if
        there is no such token.

        Raises:
            BackendUnavailable: the database did not answer.
        """
        try:
            token = await self.tokens.get(token_id)
        except TokenNotFound:
            return None
        return token.user_id

    async def events(
        self,
        actor: Principal,
        *,
        asset: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
        after: str | None = None,
    ) -> Sequence[AuditEvent]:
        """The events ``actor`` may read about ``asset``, by ``actor_id``, at or after ``since``,
        newest first, below the event ``after`` (a cursor: an event id), at most ``limit``.

        Raises:
            InvalidInput: (field ``asset``) a non-admin named no asset; (``limit``, ``since``,
                ``cursor``) a value out of range.
            AssetNotFound: ``actor`` may not read ``asset`` (or it does not exist).
            PermissionDenied: ``actor`` may read ``asset`` but does not own it, or names
                another user as ``actor_id``.
            BackendUnavailable: the database did not answer.
        """
        if not actor.is_admin:
            if asset is None:
                raise InvalidInput("asset is required: only admins read the whole log", field="asset")
            found = await self.assets.get(actor, asset)
            if found.owner_id != actor.user_id:
                raise PermissionDenied(f"only the owner of asset {asset!r} (or an admin) reads its trail")
            if actor_id is not None and actor_id != actor.user_id:
                raise PermissionDenied("actor may only name yourself (admins: anyone)")
        if not 1 <= limit <= MAX_LIMIT + 1:  # one more than a page: the route's keyset page asks it
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}", field="limit")
        if since is not None and since.utcoffset() is None:
            raise InvalidInput("since needs a time zone, e.g. 'Z'", field="since")
        query = AuditQuery(
            object_id=asset, actor_id=actor_id, since=since, limit=limit, after_id=_event_id(after)
        )
        return await self.log.query(
            object_id=query.object_id,
            actor_id=query.actor_id,
            since=query.since,
            limit=query.limit,
            after_id=query.after_id,
        )


def _event_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.isdigit() or len(cursor) > 18:
        raise InvalidInput("cursor is not one this service handed out", field="cursor")
    return int(cursor)
