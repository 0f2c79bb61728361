"""Which assets may hold the content of another: the walk behind copy-on-write deletes.

A copy (``POST /api/v1/tables/{id}/copy``) shares its source's content instead of duplicating
it, and records a lineage edge without a job (``LineageEdge.job_id`` None: a change made in a
request, not by a job). A copy of a copy shares the original's content too. So the assets that
may hold content written for asset A are A and the assets reached from it over job-less edges,
directly or through other copies, deleted ones included (their edges survive them). The
context owning the kind decides from their versions what is still in use
(``studio9.tables.content.TableBlobs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from studio9.catalog.domain import AssetVersion, Direction
from studio9.catalog.ports import CatalogStore

#: Copies followed at most: past this the answer is "unknown" and the content is kept.
MAX_COPIES: Final = 10_000
_PAGE: Final = 1000


async def content_holders(store: CatalogStore, asset_id: str) -> Sequence[AssetVersion] | None:
    """Every version of the existing assets that may hold content of ``asset_id``: itself (if it
    still exists) and its copies. None when there are too many copies to tell (keep it all)."""
    seen, frontier = {asset_id}, {asset_id}
    while frontier:
        edges = await store.edges(frontier, Direction.DOWN, limit=MAX_COPIES + 1)
        if len(edges) > MAX_COPIES:
            return None
        frontier = {e.output_id for e in edges if e.job_id is None} - seen
        seen |= frontier
        if len(seen) > MAX_COPIES:
            return None
    versions: list[AssetVersion] = []
    for asset in await store.find(seen):
        versions.extend(await all_versions(store, asset.id))
    return versions


async def all_versions(store: CatalogStore, asset_id: str) -> list[AssetVersion]:
    """The asset's versions, newest first (none for an unknown asset)."""
    found: list[AssetVersion] = []
    while page := await store.versions(asset_id, limit=_PAGE, before=found[-1].version if found else None):
        found.extend(page)
        if len(page) < _PAGE:
            break
    return found
