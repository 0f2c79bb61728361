"""The one access policy: who may read, change, share and delete each asset.

Deny by default. Owners and admins own (read, write, share, delete). Anyone else reaches an asset
only through a grant: a share to them, to one of their groups or to their email address, or a
membership (theirs, or one of their groups') of a project the asset is linked to; the best grant
wins (``write`` covers ``read``). A grant never gives more than ``write``: sharing and deleting
stay the owner's.

Both sides are reader keys (``studio9.access.domain``): the caller's (``u:`` self, ``g:`` groups,
``e:`` email, ``p:`` projects), read once per call in one round trip, and the asset's grants to
any of them, one round trip per asset that its caller does not own. The catalog applies it to
every asset it hands out (``studio9.catalog.ports.AccessRule``), so tables, SQL names and lineage
follow it too; the library filters on the same keys in its index.

Group and project memberships are read at every call, never cached: a removed member loses
access with their next request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import attrs

from studio9.access.domain import Grant, Permission
from studio9.access.ports import PolicyReads
from studio9.auth.domain import Principal
from studio9.catalog.domain import Access, Asset, owner_access

_LEVEL = {Permission.READ: Access.READ, Permission.WRITE: Access.WRITE}


@attrs.frozen
class AccessPolicy:
    """``studio9.catalog.ports.AccessRule`` over the access store's policy reads."""

    store: PolicyReads

    async def keys(self, actor: Principal) -> frozenset[str]:
        """The caller's reader keys (what the library's index filter matches)."""
        return await self.store.member_keys(actor.user_id, actor.email)

    async def access(self, actor: Principal, assets: Sequence[Asset]) -> Sequence[Access]:
        levels = [owner_access(actor, asset) for asset in assets]
        if all(level is Access.OWN for level in levels):
            return levels
        keys = await self.keys(actor)
        for at, asset in enumerate(assets):
            if levels[at] is Access.NONE:
                levels[at] = best(await self.store.grants(asset.id, keys))
        return levels


def best(grants: Sequence[Grant]) -> Access:
    """The most any of ``grants`` gives (NONE without any)."""
    return max((_LEVEL[grant.permission] for grant in grants), default=Access.NONE)


if TYPE_CHECKING:  # mypy holds the policy to the port the catalog applies
    from studio9.catalog.ports import AccessRule

    _PORT: type[AccessRule] = AccessPolicy
