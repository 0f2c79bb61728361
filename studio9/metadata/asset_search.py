"""Assets in the search index: the searchable projection of an asset (``asset_document``).

Every asset is indexed, files too, as a document of kind ``asset``; the library shows those
``in_library`` (the field of that name, ``"true"`` or ``"false"``). A document carries the
asset's reader keys (``studio9.access.ports.PolicyReads.reader_keys``), so a search with the
caller's keys (``SearchQuery.readers``) finds, and counts in its facets, only what the caller
may read.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from studio9.catalog.domain import Asset
from studio9.metadata.domain import SearchDocument

KIND = "asset"
_TEXT_LIMIT = 20_000


def asset_document(
    asset: Asset,
    reader_keys: Collection[str],
    projects: Sequence[str],
    read_at: datetime,
    *,
    folders: Sequence[str] = (),
) -> SearchDocument:
    """The searchable projection of ``asset``: its name, description and tags as text, its kind,
    status, name and library membership as fields, its tags, ``projects`` (the ids of the
    projects it is linked to) and ``folders`` (of those projects) as terms, and the summary a
    library hit shows.

    ``updated_at`` is ``read_at``, when the asset and its reader keys were read (taken before
    the reads), not the asset's own ``updated_at``: a share or link changes who may read it
    without changing the asset, and the index keeps the newer of two documents, so the later
    read must win. The asset's ``updated_at`` is in the body.
    """
    text = " ".join([asset.name, asset.description, *asset.tags])[:_TEXT_LIMIT]
    return SearchDocument(
        id=asset.id,
        kind=KIND,
        owner_id=asset.owner_id,
        text=text,
        fields={
            "asset_kind": asset.kind.value,
            "status": asset.status.value,
            "name": asset.name,
            "in_library": "true" if asset.in_library else "false",
        },
        terms={"tags": list(asset.tags), "projects": list(projects), "folders": list(folders)},
        readers=frozenset(reader_keys),
        updated_at=read_at,
        body=asset_summary(asset),
    )


def asset_summary(asset: Asset) -> dict[str, Any]:
    """What a library hit returns of an asset (its document's ``body``)."""
    return {
        "id": asset.id,
        "kind": asset.kind.value,
        "name": asset.name,
        "owner_id": asset.owner_id,
        "description": asset.description,
        "tags": list(asset.tags),
        "status": asset.status.value,
        "latest_version": asset.latest_version,
        "created_at": asset.created_at.isoformat(),
        "updated_at": asset.updated_at.isoformat(),
        "in_library": asset.in_library,
    }
