"""The asset library: every asset the caller may read, searched, filtered and counted.

Served from the search index (``asset_search``: the outbox keeps the documents in step with the
catalog and the access store). Only what the caller may read ever appears, in the hits and in
the facet counts alike: the query carries the caller's reader keys
(``studio9.access.ports.PolicyReads.member_keys``) and the index keeps the documents whose
readers meet them. Admins search every asset.

Every kind of asset is there, uploaded files too (``in_library`` says which ones hold a library
name). Scopes: ``personal`` (the caller's own), ``shared`` (readable, someone else's) and
``all`` (both, the default). Filters: asset kind, project, folder, tag, words of the name, description
and tags. Orders: ``relevance`` (with words; newest otherwise), ``newest`` and ``name``. The
index may lag the catalog by a drain (about a second); a hit whose asset has been deleted since
is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from studio9.access.ports import PolicyReads
from studio9.auth.domain import Principal
from studio9.catalog.ports import CatalogStore
from studio9.metadata.asset_search import KIND
from studio9.metadata.domain import InvalidSearch, SearchQuery
from studio9.metadata.ports import SearchIndex

Scope = Literal["personal", "shared", "all"]
SCOPES: Final = ("personal", "shared", "all")
#: ``updated`` is not offered: a document's time is when it was indexed, not when the asset changed.
LIBRARY_ORDERS: Final = ("relevance", "newest", "name")
#: The facets a library page counts, by the name the answer gives them.
FACETS: Final = {"kind": "fields.asset_kind", "tag": "terms.tags", "owner": "owner_id"}


@attrs.frozen(kw_only=True)
class LibraryQuery:
    """One page of the library: what to match, how to order, where the last page ended."""

    scope: Scope = "all"
    kind: str | None = None
    project: str | None = None
    folder: str | None = None
    tag: str | None = None
    text: str | None = None
    order: str = "relevance"
    limit: int = 50
    cursor: str | None = None


@attrs.frozen(kw_only=True)
class LibraryPage:
    """The hits (each an asset summary), their facet counts, and the next page's cursor."""

    items: Sequence[Mapping[str, Any]]
    facets: Mapping[str, Mapping[str, int]]
    next_cursor: str | None


@attrs.define
class Library:
    index: SearchIndex
    access: PolicyReads
    catalog: CatalogStore

    async def search(self, actor: Principal, query: LibraryQuery) -> LibraryPage:
        """Raises InvalidSearch (a 422 naming the field) for a bad scope, order, limit or cursor."""
        if query.scope not in SCOPES:
            raise InvalidSearch(f"scope must be one of {', '.join(SCOPES)}", field="scope")
        if query.order not in LIBRARY_ORDERS:
            raise InvalidSearch(f"order must be one of {', '.join(LIBRARY_ORDERS)}", field="order")
        readers = None if actor.is_admin else await self.access.member_keys(actor.user_id, actor.email)
        filters = {"asset_kind": query.kind} if query.kind else {}
        terms = {
            key: value
            for key, value in (("projects", query.project), ("folders", query.folder), ("tags", query.tag))
            if value
        }
        page = await self.index.search(
            SearchQuery(
                kind=KIND,
                text=query.text,
                filters=filters,
                any_terms=terms,
                owner_id=actor.user_id if query.scope == "personal" else None,
                not_owner_id=actor.user_id if query.scope == "shared" else None,
                readers=readers,
                order=query.order,
                facets=tuple(FACETS.values()),
                limit=query.limit,
                cursor=query.cursor,
            )
        )
        # The index lags by a drain: an asset deleted since is not shown.
        existing = {a.id for a in await self.catalog.find([hit.id for hit in page.items])}
        items = [dict(hit.body) for hit in page.items if hit.id in existing]
        facets = {name: dict(page.facets.get(field, {})) for name, field in FACETS.items()}
        return LibraryPage(items=items, facets=facets, next_cursor=page.next_cursor)
