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

Composite assets (experiments) share what they reference: whoever may read an experiment may read
the assets next to it in lineage, the tables its runs used and the models registered from them
(``LineageReferences``; docs/decisions.md, "Collaboration"). That read grant goes one step only:
it is not passed on through a referenced asset.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Final

import attrs

from studio9.access.domain import Grant, Permission
from studio9.access.ports import PolicyReads
from studio9.auth.domain import Principal
from studio9.catalog.domain import Access, Asset, AssetKind, Direction, owner_access
from studio9.catalog.ports import CatalogStore

_LEVEL = {Permission.READ: Access.READ, Permission.WRITE: Access.WRITE}
#: The kinds whose readers may read what they reference.
COMPOSITE_KINDS: Final = frozenset({AssetKind.EXPERIMENT})
#: Most lineage edges of one asset looked at for composites that reference it.
MAX_REFERENCE_EDGES: Final = 200


@attrs.frozen
class AccessPolicy:
    """``studio9.catalog.ports.AccessRule`` over the access store's policy reads."""

    store: PolicyReads
    #: The composite assets that reference an asset (None: composites share nothing more).
    references: Callable[[str], Awaitable[Sequence[Asset]]] | None = None

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
            if levels[at] is Access.NONE and self.references is not None:
                levels[at] = await self._through_composites(actor, asset, keys)
        return levels

    async def _through_composites(self, actor: Principal, asset: Asset, keys: frozenset[str]) -> Access:
        assert self.references is not None
        for composite in await self.references(asset.id):
            if owner_access(actor, composite) >= Access.READ:
                return Access.READ
            if best(await self.store.grants(composite.id, keys)) >= Access.READ:
                return Access.READ
        return Access.NONE


@attrs.frozen
class LineageReferences:
    """The composite assets next to an asset in lineage: the experiments that used it (their runs
    read it) or that it came from (a model registered from their runs)."""

    catalog: CatalogStore

    async def __call__(self, asset_id: str) -> Sequence[Asset]:
        edges = await self.catalog.edges([asset_id], Direction.BOTH, limit=MAX_REFERENCE_EDGES)
        neighbours = {e.input_id if e.output_id == asset_id else e.output_id for e in edges} - {asset_id}
        if not neighbours:
            return []
        return [a for a in await self.catalog.find(neighbours) if a.kind in COMPOSITE_KINDS]


def best(grants: Sequence[Grant]) -> Access:
    """The most any of ``grants`` gives (NONE without any)."""
    return max((_LEVEL[grant.permission] for grant in grants), default=Access.NONE)


if TYPE_CHECKING:  # mypy holds the policy to the port the catalog applies
    from studio9.catalog.ports import AccessRule

    _PORT: type[AccessRule] = AccessPolicy
