"""Assets into the metadata index: what ``JobIndexer`` does with the outbox's ``asset`` entries.

The catalog and access stores append an ``asset`` entry in the transaction of every change of
an asset or of its reader keys (shares, project links), so a drain re-reads those assets and
their keys and replaces their documents, or removes the documents of assets that are gone: a
revoked share leaves the grantee's library within one drain, as surely as the revoke committed.
Documents carry the time they were read (taken before the reads) and the newer one wins, so a
slow indexer holding an older read never puts back keys that a later one removed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

import attrs
import structlog

from studio9.access.domain import keys_by_kind
from studio9.access.ports import PolicyReads, ProjectStore
from studio9.catalog.domain import Asset
from studio9.catalog.ports import CatalogStore
from studio9.metadata.asset_search import KIND, asset_document
from studio9.metadata.ports import SearchIndex

log = structlog.get_logger()


class AssetReaders(PolicyReads, ProjectStore, Protocol):
    """What the indexer reads of the access store: an asset's reader keys and folders."""


@attrs.define
class AssetIndexer:
    """Keeps the documents of kind ``asset`` in step with the catalog and the access store."""

    catalog: CatalogStore
    access: AssetReaders
    index: SearchIndex
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def refresh(self, asset_ids: Sequence[str]) -> None:
        """Re-index these assets, and remove the documents of those that no longer exist."""
        ids = list(dict.fromkeys(asset_ids))
        if not ids:
            return
        read_at = self.clock()
        found = {asset.id: asset for asset in await self.catalog.find(ids)}
        await self._upsert([found[i] for i in ids if i in found], read_at)
        gone = [i for i in ids if i not in found]
        if gone:
            await self.index.delete(gone)

    async def rebuild(self, *, batch: int = 500) -> int:
        """Recreate every asset document from the stores; returns how many were written."""
        await self.index.clear(KIND)
        written, after = 0, None
        while True:
            read_at = self.clock()
            assets = await self.catalog.all(limit=batch, after=after)
            if not assets:
                break
            await self._upsert(assets, read_at)
            written += len(assets)
            after = assets[-1].id
        log.info("assets_reindexed", documents=written)
        return written

    async def _upsert(self, assets: Sequence[Asset], read_at: datetime) -> None:
        if not assets:
            return
        docs = []
        for asset in assets:
            keys = await self.access.reader_keys(asset.id, asset.owner_id)
            # The ``p:`` keys are the projects it is linked to: no second read.
            projects = sorted(keys_by_kind(keys)["project"])
            folders = await self.access.folders_of_asset(asset.id) if projects else []
            docs.append(asset_document(asset, keys, projects, read_at, folders=folders))
        await self.index.upsert(docs)
