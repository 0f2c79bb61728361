"""HTTP routes of shares: ``POST/GET /api/v1/assets/{asset_id}/shares`` (the asset's owner and
admins), ``GET /api/v1/shares?given=true`` (the shares the caller made; by default those they
received, themselves or through a group or their email) and ``DELETE /api/v1/shares/{share_id}``.

An asset the caller may not read is a 404; one they read but do not own, a 403 on sharing.
"""

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from studio9.access.domain import GranteeKind, Permission, Share
from studio9.access.sharing.service import ShareService
from studio9.auth.domain import Principal
from studio9.web.paging import ID_CURSOR, keyset_page
from studio9.web.responses import problems

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")]
Ref = Annotated[str, msgspec.Meta(min_length=1, max_length=320)]


class ShareIn(msgspec.Struct, forbid_unknown_fields=True):
    """Who gets access: exactly one of ``user`` (id or username), ``group`` (id, name or
    ``@name``) or ``email`` (reaches the user who has, or later gets, that address)."""

    permission: Permission = Permission.READ
    user: Ref | None = None
    group: Ref | None = None
    email: Ref | None = None


class ShareOut(msgspec.Struct):
    id: str
    asset_id: str
    grantee_kind: GranteeKind
    #: A user id, a group id or an email address.
    grantee: str
    permission: Permission
    granted_by: str
    created_at: datetime

    @classmethod
    def from_domain(cls, share: Share) -> "ShareOut":
        return cls(
            id=share.id,
            asset_id=share.asset_id,
            grantee_kind=share.grantee_kind,
            grantee=share.grantee,
            permission=share.permission,
            granted_by=share.granted_by,
            created_at=share.created_at,
        )


class ShareListOut(msgspec.Struct):
    items: list[ShareOut]


class SharePageOut(msgspec.Struct):
    items: list[ShareOut]
    next_cursor: str | None


class AssetShareController(Controller):
    path = "/assets/{asset_id:str}/shares"
    tags = ["shares"]

    @post("/", operation_id="ShareAsset", status_code=201, responses=problems(403))
    async def share(
        self,
        asset_id: FromPath[str],
        data: JSONBody[ShareIn],
        principal: NamedDependency[Principal],
        share_service: NamedDependency[ShareService],
    ) -> ShareOut:
        """Give a user, a group or an email address read or write access to the asset (its
        owner, admins); sharing again with the same grantee changes the permission."""
        share = await share_service.share(
            principal,
            asset_id,
            permission=data.permission,
            user=data.user,
            group=data.group,
            email=data.email,
        )
        return ShareOut.from_domain(share)

    @get("/", operation_id="ListAssetShares", responses=problems(403))
    async def list_asset_shares(
        self,
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        share_service: NamedDependency[ShareService],
    ) -> ShareListOut:
        """Who the asset is shared with, oldest first (its owner, admins)."""
        shares = await share_service.of_asset(principal, asset_id)
        return ShareListOut(items=[ShareOut.from_domain(s) for s in shares])


class ShareController(Controller):
    path = "/shares"
    tags = ["shares"]

    @get("/", operation_id="ListShares")
    async def list_shares(
        self,
        principal: NamedDependency[Principal],
        share_service: NamedDependency[ShareService],
        given: Annotated[bool, QueryParameter(description="the shares the caller made")] = False,
        received: Annotated[bool, QueryParameter(description="the shares to the caller (default)")] = False,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> SharePageOut:
        """The shares the caller received (to them, a group of theirs or their email), or with
        ``given=true`` those they made; newest first."""
        lister = share_service.given if given and not received else share_service.received
        page, next_cursor = await keyset_page(
            lambda size, after: lister(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda share: share.id,
        )
        return SharePageOut(items=[ShareOut.from_domain(s) for s in page], next_cursor=next_cursor)

    @delete_route("/{share_id:str}", operation_id="DeleteShare", status_code=204)
    async def delete_share(
        self,
        share_id: FromPath[str],
        principal: NamedDependency[Principal],
        share_service: NamedDependency[ShareService],
    ) -> None:
        """Take a share back (the asset's owner, whoever granted it, admins)."""
        await share_service.revoke(principal, share_id)


def provide_share_service(request: Request[Any, Any, Any]) -> ShareService:
    """The ``share_service`` dependency: the container's ShareService."""
    service: ShareService = request.app.state.container.shares
    return service
