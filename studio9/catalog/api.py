"""HTTP routes of the catalog: ``/api/v1/assets``, the caller's assets of every kind.

Reads default to an asset's latest version (``?version=N`` reads an older one); a change of
content is a new version, made by the context owning the kind (an upload, a table import), so
these routes change only what is common to every kind. An asset the caller may not read is a
404 on every route, as if it did not exist.
"""

from datetime import datetime
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, get, patch
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from studio9.auth.domain import Principal
from studio9.catalog.domain import (
    MAX_DESCRIPTION_LENGTH,
    MAX_LINEAGE_DEPTH,
    MAX_NAME_LENGTH,
    MAX_TAGS,
    NAME_PATTERN,
    TAG_PATTERN,
    Asset,
    AssetKind,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    LineageGraph,
    LineageNode,
)
from studio9.catalog.service import DEFAULT_LINEAGE_DEPTH, CatalogService
from studio9.web.paging import keyset_page
from studio9.web.responses import problems

#: Version numbers fit the databases' 32-bit integers.
MAX_VERSION: Final = 2**31 - 1
VERSION_CURSOR: Final = "[1-9][0-9]{0,8}"

Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_LENGTH, pattern=f"^(?:{NAME_PATTERN.pattern})$")]
Description = Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_LENGTH)]
Tag = Annotated[str, msgspec.Meta(pattern=f"^(?:{TAG_PATTERN.pattern})$")]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=MAX_TAGS)]


class AssetOut(msgspec.Struct):
    id: str
    kind: AssetKind
    owner_id: str
    name: str
    description: str
    tags: list[str]
    status: AssetStatus
    error: str | None
    in_library: bool
    latest_version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, asset: Asset) -> "AssetOut":
        return cls(**_asset_fields(asset))


class VersionOut(msgspec.Struct):
    version: int
    created_at: datetime
    job_id: str | None
    content: dict[str, Any]

    @classmethod
    def from_domain(cls, version: AssetVersion) -> "VersionOut":
        return cls(
            version=version.version,
            created_at=version.created_at,
            job_id=version.job_id,
            content=dict(version.content),
        )


class AssetDetailOut(AssetOut):
    """An asset with one version (the latest, or ``?version=N``); None while the first is written."""

    version: VersionOut | None


class AssetPageOut(msgspec.Struct):
    items: list[AssetOut]
    next_cursor: str | None


class VersionPageOut(msgspec.Struct):
    items: list[VersionOut]
    next_cursor: str | None


class AssetPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only the fields given change. Joining the library (``in_library``) needs a name that no
    other library asset of the same kind of yours has."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    tags: Tags | msgspec.UnsetType = msgspec.UNSET
    in_library: bool | msgspec.UnsetType = msgspec.UNSET


class NodeOut(msgspec.Struct):
    """An asset of a lineage graph; a deleted one has only its id (``deleted`` true), one the
    caller may not read only its id and kind (``redacted`` true)."""

    id: str
    kind: AssetKind | None
    name: str | None
    version: int | None
    status: AssetStatus | None
    deleted: bool
    redacted: bool

    @classmethod
    def from_domain(cls, node: LineageNode) -> "NodeOut":
        return cls(
            id=node.id,
            kind=node.kind,
            name=node.name,
            version=node.version,
            status=node.status,
            deleted=node.deleted,
            redacted=node.redacted,
        )


class EdgeOut(msgspec.Struct):
    """``input_id`` at ``input_version`` went into ``output_id`` at ``output_version``."""

    input_id: str
    input_version: int
    output_id: str
    output_version: int
    job_id: str | None
    at: datetime

    @classmethod
    def from_domain(cls, edge: LineageEdge) -> "EdgeOut":
        return cls(
            input_id=edge.input_id,
            input_version=edge.input_version,
            output_id=edge.output_id,
            output_version=edge.output_version,
            job_id=edge.job_id,
            at=edge.at,
        )


class LineageOut(msgspec.Struct):
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    truncated: bool

    @classmethod
    def from_domain(cls, graph: LineageGraph) -> "LineageOut":
        return cls(
            nodes=[NodeOut.from_domain(n) for n in graph.nodes],
            edges=[EdgeOut.from_domain(e) for e in graph.edges],
            truncated=graph.truncated,
        )


class AssetController(Controller):
    path = "/assets"
    tags = ["assets"]

    @get("/{asset_id:str}", operation_id="GetAsset")
    async def get_asset(
        self,
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        catalog_service: NamedDependency[CatalogService],
        version: Annotated[int | None, QueryParameter(ge=1, le=MAX_VERSION)] = None,
    ) -> AssetDetailOut:
        """One asset with its latest version's content, or version ``version``'s."""
        asset, found = await catalog_service.read(principal, asset_id, version)
        return AssetDetailOut(
            **_asset_fields(asset), version=None if found is None else VersionOut.from_domain(found)
        )

    @get("/{asset_id:str}/versions", operation_id="ListAssetVersions")
    async def list_versions(
        self,
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        catalog_service: NamedDependency[CatalogService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(pattern=f"^(?:{VERSION_CURSOR})$")] = None,
    ) -> VersionPageOut:
        """The asset's versions, newest first; pass ``next_cursor`` back as ``cursor``."""
        page, next_cursor = await keyset_page(
            lambda size, before: catalog_service.versions(
                principal, asset_id, limit=size, before=None if before is None else int(before)
            ),
            limit=limit,
            cursor=cursor,
            key=lambda version: str(version.version),
            pattern=VERSION_CURSOR,
        )
        return VersionPageOut([VersionOut.from_domain(v) for v in page], next_cursor=next_cursor)

    @patch("/{asset_id:str}", operation_id="UpdateAsset", responses=problems(403, 409))
    async def update_asset(
        self,
        asset_id: FromPath[str],
        data: JSONBody[AssetPatch],
        principal: NamedDependency[Principal],
        catalog_service: NamedDependency[CatalogService],
    ) -> AssetOut:
        """Rename, describe, tag, or put in (take out of) the library; 409 if the name is taken."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return AssetOut.from_domain(await catalog_service.update(principal, asset_id, **changes))

    @delete_route(
        "/{asset_id:str}", operation_id="DeleteAsset", status_code=204, responses=problems(403, 409)
    )
    async def delete_asset(
        self,
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        catalog_service: NamedDependency[CatalogService],
        force: FromQuery[bool] = False,
    ) -> None:
        """Delete the asset with its versions and content. 409, naming them, if other assets were
        derived from it, unless ``force``: their lineage then points to a deleted asset."""
        await catalog_service.delete(principal, asset_id, force=force)

    @get("/{asset_id:str}/lineage", operation_id="GetAssetLineage")
    async def lineage(
        self,
        asset_id: FromPath[str],
        principal: NamedDependency[Principal],
        catalog_service: NamedDependency[CatalogService],
        direction: FromQuery[Direction] = Direction.BOTH,
        depth: Annotated[int, QueryParameter(ge=1, le=MAX_LINEAGE_DEPTH)] = DEFAULT_LINEAGE_DEPTH,
    ) -> LineageOut:
        """The assets upstream (what it was made from) and/or downstream (what was made from it),
        up to ``depth`` edges away, and the edges between them."""
        graph = await catalog_service.lineage(principal, asset_id, direction=direction, depth=depth)
        return LineageOut.from_domain(graph)


def provide_catalog_service(request: Request[Any, Any, Any]) -> CatalogService:
    """The ``catalog_service`` dependency: the container's CatalogService."""
    service: CatalogService = request.app.state.container.catalog
    return service


def _asset_fields(asset: Asset) -> dict[str, Any]:
    return {
        "id": asset.id,
        "kind": asset.kind,
        "owner_id": asset.owner_id,
        "name": asset.name,
        "description": asset.description,
        "tags": list(asset.tags),
        "status": asset.status,
        "error": asset.error,
        "in_library": asset.in_library,
        "latest_version": asset.latest_version,
        "created_at": asset.created_at,
        "updated_at": asset.updated_at,
    }
