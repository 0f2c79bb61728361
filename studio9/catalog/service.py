"""Use cases of the catalog: read, list, change and delete assets; record and traverse lineage.

Two kinds of caller. People, through the routes, act as a ``Principal`` and meet the one access
policy (``AccessRule``: ``Access`` levels of ``studio9.catalog.domain``): an asset they may not
read is not found, one they may read but not change is a PermissionDenied (403) on writes, and
only its owner (or an admin) deletes it. The contexts that own a kind (files, tables…) create
assets, add versions and record lineage on their users' behalf, having checked access to their
own content already.

Deleting an asset others were derived from is refused (AssetHasDependents, listing them) unless
forced; a forced delete leaves the dependents' lineage edges pointing to the deleted asset,
which lineage graphs then show as ``deleted``. The context owning the kind is told of every
delete (its ``KindHandler``) to remove the content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.catalog.copies import all_versions, content_holders
from studio9.catalog.domain import (
    Access,
    Asset,
    AssetChanges,
    AssetHasDependents,
    AssetKind,
    AssetNotFound,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    LineageGraph,
    LineageNode,
    check_depth,
    check_description,
    check_name,
    check_tags,
    owner_access,
)
from studio9.catalog.ports import AccessRule, CatalogStore, KindHandler
from studio9.errors import InvalidInput, PermissionDenied
from studio9.ids import new_id

log = structlog.get_logger()

DEFAULT_LINEAGE_DEPTH: Final = 3
#: A lineage graph holds at most this many edges (``truncated`` says when more were left out).
MAX_LINEAGE_EDGES: Final = 1000
#: A delete refused for its dependents lists at most this many.
MAX_DEPENDENTS: Final = 1000


def utcnow() -> datetime:
    return datetime.now(UTC)


class OwnersOnly:
    """The ``AccessRule`` without sharing: an asset is its owner's (and admins') alone."""

    async def access(self, actor: Principal, assets: Sequence[Asset]) -> Sequence[Access]:
        return [owner_access(actor, asset) for asset in assets]


@attrs.define
class CatalogService:
    store: CatalogStore
    handlers: dict[AssetKind, KindHandler] = attrs.field(factory=dict)
    rule: AccessRule = attrs.field(factory=OwnersOnly)
    clock: Callable[[], datetime] = utcnow
    max_lineage_edges: int = MAX_LINEAGE_EDGES

    def register(self, kind: AssetKind, handler: KindHandler) -> None:
        """Let the context owning ``kind`` remove its content when an asset of it is deleted."""
        self.handlers[kind] = handler

    # -- for the contexts that own kinds -------------------------------------------------------

    async def create(
        self,
        *,
        owner_id: str,
        kind: AssetKind,
        name: str,
        content: Mapping[str, Any] | None,
        asset_id: str | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        in_library: bool = False,
        status: AssetStatus | None = None,
        job_id: str | None = None,
        at: datetime | None = None,
    ) -> Asset:
        """A new asset with ``content`` as its version 1, or with no version yet (``content`` None,
        status ``saving`` unless given: the version comes later through ``add_version``).

        Raises:
            InvalidInput: the name, description or tags are unusable.
            AssetNameTaken: ``in_library`` and the owner has a library asset of that kind and name.
        """
        when = at or self.clock()
        asset = Asset(
            id=asset_id or new_id(),
            kind=kind,
            owner_id=owner_id,
            name=check_name(name),
            description=check_description(description),
            tags=check_tags(tags),
            status=status or (AssetStatus.SAVING if content is None else AssetStatus.ACTIVE),
            in_library=in_library,
            latest_version=0 if content is None else 1,
            created_at=when,
            updated_at=when,
        )
        first = None
        if content is not None:
            first = AssetVersion(
                asset_id=asset.id, version=1, created_at=when, job_id=job_id, content=content
            )
        await self.store.add(asset, first)
        log.info("asset_created", asset_id=asset.id, kind=kind.value, owner_id=owner_id)
        return asset

    async def add_version(
        self,
        asset_id: str,
        content: Mapping[str, Any],
        *,
        expected_latest: int,
        job_id: str | None = None,
        status: AssetStatus | None = None,
    ) -> tuple[Asset, AssetVersion]:
        """Add the version after ``expected_latest``. Raises AssetNotFound, VersionConflict."""
        version = AssetVersion(
            asset_id=asset_id,
            version=expected_latest + 1,
            created_at=self.clock(),
            job_id=job_id,
            content=content,
        )
        asset = await self.store.add_version(version, expected_latest=expected_latest, status=status)
        return asset, version

    async def set_status(self, asset_id: str, status: AssetStatus, error: str | None = None) -> Asset:
        """Mark the asset ``saving``, ``active`` or ``error`` (with why). Raises AssetNotFound."""
        return await self.store.update(asset_id, AssetChanges(status=status, error=error), at=self.clock())

    async def record_lineage(
        self,
        *,
        job_id: str | None,
        inputs: Sequence[tuple[str, int]],
        outputs: Sequence[tuple[str, int]],
    ) -> None:
        """Record that every ``(asset id, version)`` of ``inputs`` went into every one of ``outputs``."""
        at = self.clock()
        edges = [
            LineageEdge(
                input_id=in_id,
                input_version=in_version,
                output_id=out_id,
                output_version=out_version,
                job_id=job_id,
                at=at,
            )
            for in_id, in_version in inputs
            for out_id, out_version in outputs
        ]
        await self.store.add_edges(edges)

    async def content_holders(self, asset_id: str) -> Sequence[AssetVersion] | None:
        """Every version of the existing assets that may share content written for ``asset_id``
        (``studio9.catalog.copies``); None when there are too many copies to tell."""
        return await content_holders(self.store, asset_id)

    async def discard(self, asset_id: str) -> None:
        """Delete the asset of content its own context is deleting (no KindHandler call). An absent
        asset is not an error.

        Raises:
            AssetHasDependents: others were derived from it; nothing is deleted.
        """
        dependents = await self.store.dependents(asset_id, limit=MAX_DEPENDENTS)
        if dependents:
            raise AssetHasDependents(asset_id, [_described(d, True) for d in dependents])
        try:
            await self.store.delete(asset_id)
        except AssetNotFound:
            return
        log.info("asset_deleted", asset_id=asset_id, by="owner_context")

    # -- use cases -----------------------------------------------------------------------------

    async def get(self, actor: Principal, asset_id: str) -> Asset:
        """Raises AssetNotFound (also for an asset the actor may not read)."""
        asset = await self.store.get(asset_id)
        if await self._access(actor, asset) < Access.READ:
            raise AssetNotFound(asset_id)
        return asset

    async def writable(self, actor: Principal, asset_id: str) -> Asset:
        """The asset, if the actor may change it. Raises AssetNotFound, PermissionDenied."""
        return await self._at_least(actor, asset_id, Access.WRITE)

    async def named(self, actor: Principal, owner_id: str, kind: AssetKind, name: str) -> Asset:
        """The library asset of that owner, kind and name. Raises AssetNotFound (also for one
        the actor may not read: the same answer, so names cannot be probed)."""
        asset = await self.store.named(owner_id, kind, name)
        if await self._access(actor, asset) < Access.READ:
            raise AssetNotFound(f"{owner_id}/{name}")
        return asset

    async def read(
        self, actor: Principal, asset_id: str, version: int | None = None
    ) -> tuple[Asset, AssetVersion | None]:
        """The asset and one version (None: the latest; the answer's version is None while the
        first is being written). Raises AssetNotFound."""
        asset = await self.get(actor, asset_id)
        if version is None and asset.latest_version == 0:
            return asset, None
        if version is not None and version < 1:
            raise InvalidInput("version must be at least 1", field="version")
        return asset, await self.store.get_version(asset.id, version)

    async def versions(
        self, actor: Principal, asset_id: str, *, limit: int, before: int | None = None
    ) -> Sequence[AssetVersion]:
        """The asset's versions, newest first, below ``before``. Raises AssetNotFound."""
        _check_limit(limit)
        asset = await self.get(actor, asset_id)
        return await self.store.versions(asset.id, limit=limit, before=before)

    async def list(
        self, actor: Principal, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        """The actor's own assets (of ``kind``), newest first, older than ``after``."""
        _check_limit(limit)
        return await self.store.list(actor.user_id, kind=kind, limit=limit, after=after)

    async def update(
        self,
        actor: Principal,
        asset_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        in_library: bool | None = None,
    ) -> Asset:
        """Change what people may change of an asset; None leaves a field as it is.

        Raises:
            AssetNotFound, PermissionDenied, InvalidInput.
            AssetNameTaken: the name (or joining the library) collides with a library asset.
        """
        asset = await self._at_least(actor, asset_id, Access.WRITE)
        changes = AssetChanges(
            name=None if name is None else check_name(name),
            description=None if description is None else check_description(description),
            tags=None if tags is None else check_tags(tags),
            in_library=in_library,
        )
        changed = await self.store.update(asset.id, changes, at=self.clock())
        log.info("asset_updated", asset_id=asset.id, by=actor.user_id)
        return changed

    async def delete(self, actor: Principal, asset_id: str, *, force: bool = False) -> None:
        """Delete the asset, its versions and (through its kind's handler) its content.

        Raises:
            AssetNotFound, PermissionDenied (only its owner or an admin deletes it).
            AssetHasDependents: others were derived from it and ``force`` is False.
        """
        asset = await self._at_least(actor, asset_id, Access.OWN)
        if not force:
            dependents = await self.store.dependents(asset.id, limit=MAX_DEPENDENTS)
            if dependents:
                readable = await self.rule.access(actor, dependents)
                raise AssetHasDependents(
                    asset.id,
                    [_described(d, a >= Access.READ) for d, a in zip(dependents, readable, strict=True)],
                )
        handler = self.handlers.get(asset.kind)
        versions = await all_versions(self.store, asset.id) if handler is not None else []
        await self.store.delete(asset.id)
        if handler is not None:
            await handler.deleted(asset, versions)
        log.info("asset_deleted", asset_id=asset.id, kind=asset.kind.value, by=actor.user_id, force=force)

    async def lineage(
        self,
        actor: Principal,
        asset_id: str,
        *,
        direction: Direction = Direction.BOTH,
        depth: int = DEFAULT_LINEAGE_DEPTH,
    ) -> LineageGraph:
        """The assets ``depth`` edges or fewer upstream (inputs) and/or downstream (outputs) of
        this one, and the edges between them.

        Assets the actor may not read are redacted stubs (id and kind, ``redacted``) and the
        traversal goes on through them, so the graph's shape is honest without naming what the
        actor may not see; deleted assets are kept as nodes marked ``deleted`` (their edges
        survive them). Raises AssetNotFound, InvalidInput (depth).
        """
        check_depth(depth)
        start = await self.get(actor, asset_id)
        assets: dict[str, Asset | None] = {start.id: start}
        readable = {start.id}
        edges: dict[tuple[str, int, str, int, str | None], LineageEdge] = {}
        truncated = False
        ways = [Direction.UP, Direction.DOWN] if direction is Direction.BOTH else [direction]
        for way in ways:
            frontier, visited = {start.id}, {start.id}
            for _ in range(depth):
                budget = self.max_lineage_edges - len(edges)
                if not frontier or budget <= 0:
                    truncated = truncated or bool(frontier)
                    break
                found = await self.store.edges(frontier, way, limit=budget + 1)
                if len(found) > budget:
                    truncated, found = True, list(found[:budget])
                others = {e.input_id if way is Direction.UP else e.output_id for e in found}
                await self._load(assets, others, readable, actor)
                frontier = set()
                for edge in found:
                    other = edge.input_id if way is Direction.UP else edge.output_id
                    edges[edge.key] = edge
                    if other not in visited:
                        visited.add(other)
                        frontier.add(other)
        ids = {start.id} | {e.input_id for e in edges.values()} | {e.output_id for e in edges.values()}
        nodes = [_node(assets[i], i, readable) for i in sorted(ids)]
        return LineageGraph(nodes=tuple(nodes), edges=tuple(edges.values()), truncated=truncated)

    async def _load(
        self, assets: dict[str, Asset | None], ids: set[str], readable: set[str], actor: Principal
    ) -> None:
        """Put the assets of ``ids`` not yet in ``assets`` there (None: deleted), and the ids of
        those ``actor`` may read in ``readable``."""
        missing = ids - assets.keys()
        found = await self.store.find(missing)
        for asset, access in zip(found, await self.rule.access(actor, found), strict=True):
            if access >= Access.READ:
                readable.add(asset.id)
        by_id = {a.id: a for a in found}
        for asset_id in missing:
            assets[asset_id] = by_id.get(asset_id)

    async def _access(self, actor: Principal, asset: Asset) -> Access:
        if (known := owner_access(actor, asset)) is Access.OWN:
            return known  # no lookup for owners and admins
        (access,) = await self.rule.access(actor, [asset])
        return access

    async def _at_least(self, actor: Principal, asset_id: str, needed: Access) -> Asset:
        """The asset if ``actor`` has ``needed`` access. Raises AssetNotFound (may not read it),
        PermissionDenied (may read it, not this)."""
        asset = await self.store.get(asset_id)
        access = await self._access(actor, asset)
        if access < Access.READ:
            raise AssetNotFound(asset_id)
        if access < needed:
            what = "change" if needed is Access.WRITE else "delete or share"
            raise PermissionDenied(f"you may read asset {asset_id!r} but not {what} it")
        return asset


def _node(asset: Asset | None, asset_id: str, readable: set[str]) -> LineageNode:
    if asset is None:
        return LineageNode.gone(asset_id)
    return LineageNode.of(asset) if asset.id in readable else LineageNode.stub(asset)


def _described(asset: Asset, readable: bool) -> dict[str, Any]:
    """A dependent as a refused delete lists it: its id, and its kind and name if the caller may
    read it (a context's own delete says it to no one but the log and its caller)."""
    if not readable:
        return {"id": asset.id}
    return {"id": asset.id, "kind": asset.kind.value, "name": asset.name}


def _check_limit(limit: int) -> None:
    if limit < 1:
        raise InvalidInput("limit must be at least 1", field="limit")


if TYPE_CHECKING:  # mypy holds the service to the port the owning contexts use
    from studio9.catalog.ports import Assets

    _PORT: type[Assets] = CatalogService
