"""HTTP route of the asset library: ``GET /api/v1/assets`` (``studio9.metadata.library``).

Every asset the caller may read, by words (``q``), kind, scope (``personal``, ``shared``,
``all``), project, folder and tag, with counts per kind, tag and owner over the whole match
(never counting what the caller may not read). Newest first, or by relevance with words, or by
name; pass ``next_cursor`` back as ``cursor``. The index follows the catalog within about a
second.
"""

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from studio9.auth.domain import Principal
from studio9.catalog.domain import AssetKind, AssetStatus
from studio9.metadata.library import LIBRARY_ORDERS, Library, LibraryQuery, Scope
from studio9.web.paging import SEARCH_CURSOR

Ref = Annotated[str | None, QueryParameter(min_length=1, max_length=64)]


class LibraryAssetOut(msgspec.Struct):
    id: str
    kind: AssetKind
    owner_id: str
    name: str
    description: str
    tags: list[str]
    status: AssetStatus
    in_library: bool
    latest_version: int
    created_at: datetime
    updated_at: datetime


class LibraryFacetsOut(msgspec.Struct):
    """How many matching assets have each value: per asset kind, tag and owner id."""

    kind: dict[str, int]
    tag: dict[str, int]
    owner: dict[str, int]


class LibraryOut(msgspec.Struct):
    items: list[LibraryAssetOut]
    facets: LibraryFacetsOut
    next_cursor: str | None


class LibraryController(Controller):
    path = "/assets"
    tags = ["assets"]

    @get("/", operation_id="SearchLibrary")
    async def search_library(
        self,
        principal: NamedDependency[Principal],
        library: NamedDependency[Library],
        q: Annotated[str | None, QueryParameter(max_length=1000, description="words to match")] = None,
        kind: Annotated[AssetKind | None, QueryParameter()] = None,
        # ``scope`` is a name Litestar reserves for the ASGI scope: the parameter is aliased.
        library_scope: Annotated[
            Scope, QueryParameter(name="scope", description="personal, shared or all")
        ] = "all",
        project: Ref = None,
        folder: Ref = None,
        tag: Ref = None,
        order: Annotated[str, QueryParameter(pattern=f"^(?:{'|'.join(LIBRARY_ORDERS)})$")] = "relevance",
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, QueryParameter(pattern=f"^(?:{SEARCH_CURSOR})$")] = None,
    ) -> LibraryOut:
        """The assets the caller may read that match, with facet counts; newest first (by
        relevance with ``q``; ``order=name`` by name)."""
        page = await library.search(
            principal,
            LibraryQuery(
                scope=library_scope,
                kind=kind.value if kind else None,
                project=project,
                folder=folder,
                tag=tag,
                text=q,
                order=order,
                limit=limit,
                cursor=cursor,
            ),
        )
        return LibraryOut(
            items=[msgspec.convert(item, LibraryAssetOut) for item in page.items],
            facets=msgspec.convert(page.facets, LibraryFacetsOut),
            next_cursor=page.next_cursor,
        )


def provide_library(request: Request[Any, Any, Any]) -> Library:
    """The ``library`` dependency: the container's Library."""
    library: Library = request.app.state.container.library
    return library
