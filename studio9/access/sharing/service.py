"""Use cases of shares: give a user, a group or an email address read or write access to an asset,
list what one gave and received, take a share back.

Only an asset's owner (or an admin) shares it: a caller who may not read the asset is told it does
not exist (404), one who may read it but does not own it is refused (403). That closes the
original's hole, where anyone could share any asset id. A share to an email address nobody has
yet is kept as it is and reaches the user created later with that address (the policy matches the
caller's ``e:`` key), so it never depends on a sign-up hook that might not run.

Sharing a table gives read (or write) to that table; a copy the recipient makes
(``POST /api/v1/tables/{id}/copy``) is their own asset, with lineage to the original.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import attrs
import structlog

from studio9.access.domain import (
    GranteeKind,
    GroupNotFound,
    Permission,
    Share,
    ShareNotFound,
    normalise_email,
)
from studio9.access.ports import GroupStore, PolicyReads, ShareStore
from studio9.auth.domain import Principal, UserNotFound
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Asset
from studio9.catalog.ports import Assets
from studio9.errors import InvalidInput, NotFound, PermissionDenied
from studio9.ids import new_id

log = structlog.get_logger()


def utcnow() -> datetime:
    return datetime.now(UTC)


class ShareAccessStore(ShareStore, GroupStore, PolicyReads, Protocol):
    """What the share use cases read and write (``studio9.access.ports.AccessStore`` is one)."""


@attrs.define
class ShareService:
    store: ShareAccessStore
    users: UserStore
    assets: Assets
    clock: Callable[[], datetime] = utcnow

    async def share(
        self,
        actor: Principal,
        asset_id: str,
        *,
        permission: Permission,
        user: str | None = None,
        group: str | None = None,
        email: str | None = None,
    ) -> Share:
        """Share the asset with exactly one of ``user`` (an id or a username), ``group`` (an id,
        a name or ``@name``) or ``email``; sharing again with the same grantee changes the
        permission. Returns the share as stored.

        Raises:
            AssetNotFound: no such asset, or one the caller may not read.
            PermissionDenied: the caller may read it but does not own it.
            UserNotFound, GroupNotFound: the grantee (404).
            InvalidInput: not exactly one grantee, a bad email, or the asset's own owner.
        """
        given = [(kind, value) for kind, value in _grantees(user, group, email) if value is not None]
        if len(given) != 1:
            raise InvalidInput("name exactly one of user, group or email", field="user")
        asset = await self._owned(actor, asset_id)
        kind, grantee = given[0][0], await self._resolve(given[0][0], given[0][1] or "")
        if kind is GranteeKind.USER and grantee == asset.owner_id:
            raise InvalidInput("the asset's owner has every access already", field="user")
        share = Share(
            id=new_id(),
            asset_id=asset.id,
            grantee_kind=kind,
            grantee=grantee,
            permission=permission,
            granted_by=actor.user_id,
            created_at=self.clock(),
        )
        stored = await self.store.put_share(share)
        log.info("asset_shared", asset_id=asset.id, share_id=stored.id, kind=kind.value, by=actor.user_id)
        return stored

    async def of_asset(self, actor: Principal, asset_id: str) -> Sequence[Share]:
        """Who the asset is shared with (its owner and admins). Raises AssetNotFound, PermissionDenied."""
        asset = await self._owned(actor, asset_id)
        return await self.store.shares_of_asset(asset.id)

    async def given(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Share]:
        """The shares the caller made, newest first."""
        return await self.store.shares_given(actor.user_id, limit=limit, after=after)

    async def received(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Share]:
        """The shares to the caller, one of their groups or their email, newest first."""
        keys = await self.store.member_keys(actor.user_id, actor.email)
        return await self.store.shares_received(keys, limit=limit, after=after)

    async def revoke(self, actor: Principal, share_id: str) -> None:
        """Take a share back: its asset's owner, whoever granted it, or an admin. Raises
        ShareNotFound (also for a share the caller may not take back: ids cannot be probed)."""
        share = await self.store.get_share(share_id)
        if not (actor.is_admin or share.granted_by == actor.user_id):
            try:
                asset = await self.assets.get(actor, share.asset_id)
            except NotFound:
                raise ShareNotFound(share_id) from None
            if asset.owner_id != actor.user_id:
                raise ShareNotFound(share_id)
        await self.store.delete_share(share_id)
        log.info("share_revoked", share_id=share_id, asset_id=share.asset_id, by=actor.user_id)

    async def _owned(self, actor: Principal, asset_id: str) -> Asset:
        asset = await self.assets.get(actor, asset_id)  # AssetNotFound when the caller may not read it
        if not actor.owns(asset.owner_id):
            raise PermissionDenied(f"only the owner of asset {asset_id!r} may share it")
        return asset

    async def _resolve(self, kind: GranteeKind, value: str) -> str:
        """The stored grantee: a user's or group's id (looked up by id, then by name), or a
        normalised email address."""
        if kind is GranteeKind.EMAIL:
            return normalise_email(value)
        if kind is GranteeKind.USER:
            try:
                return (await self.users.get(value)).id
            except UserNotFound:
                return (await self.users.get_by_username(value)).id
        try:
            return (await self.store.get_group(value)).id
        except GroupNotFound:
            return (await self.store.group_named(value.removeprefix("@"))).id


def _grantees(user: str | None, group: str | None, email: str | None) -> list[tuple[GranteeKind, str | None]]:
    return [(GranteeKind.USER, user), (GranteeKind.GROUP, group), (GranteeKind.EMAIL, email)]
