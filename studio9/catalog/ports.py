"""What the catalog needs: a store of assets, versions and lineage, and each kind's own handling.

Adapters: ``adapters/catalog_store/memory.py`` and ``adapters/catalog_store/sql.py`` (SQLite,
PostgreSQL), stores of the system of record (``studio9.database.Database.catalog``).
Contract: ``tests/contract/test_catalog_store.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from studio9.auth.domain import Principal
from studio9.catalog.domain import (
    Access,
    Asset,
    AssetChanges,
    AssetKind,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
)

# The values a ``LineageEvents`` caller builds its events with, public to other contexts here
# (they import a context's ``domain`` and ``ports`` only).
from studio9.catalog.openlineage import EventType, LineageDataset, run_event, table_fields

__all__ = [
    "Assets",
    "CatalogStore",
    "EventType",
    "KindHandler",
    "LineageDataset",
    "LineageEvents",
    "run_event",
    "table_fields",
]


class CatalogStore(Protocol):
    """**Protocol:** assets with their versions, and the lineage edges between versions.

    Names are unique per owner and kind among library assets (``in_library``): the store
    enforces it (a unique index), so of two concurrent writes only one can win.

    Every write that changes an asset (``add``, ``add_version``, ``update``, ``delete``, each
    asset ``transfer`` moves) appends an ``asset`` entry naming it to the outbox the search
    indexer drains (``studio9.metadata.ports.ChangeFeed``), in the same transaction: a write that
    fails leaves none.
    """

    async def add(self, asset: Asset, first: AssetVersion | None) -> None:
        """Store a new asset with its first version (None: ``latest_version`` is 0, the first
        version comes later through ``add_version``).

        Raises:
            AssetExists: the id is taken.
            AssetNameTaken: a library asset of the owner and kind has the name.
        """

    async def get(self, asset_id: str) -> Asset:
        """Raises AssetNotFound."""

    async def find(self, asset_ids: Collection[str]) -> Sequence[Asset]:
        """The assets of those ids that exist, in no particular order."""

    async def named(self, owner_id: str, kind: AssetKind, name: str) -> Asset:
        """The library asset (``in_library``) of that owner, kind and name (names are matched
        exactly). Raises AssetNotFound (its ``asset_id`` is ``owner_id/name``)."""

    async def get_version(self, asset_id: str, version: int | None = None) -> AssetVersion:
        """One version (None: the latest). Raises AssetNotFound (for the asset or the version)."""

    async def versions(
        self, asset_id: str, *, limit: int, before: int | None = None
    ) -> Sequence[AssetVersion]:
        """The asset's versions, newest first, only those below ``before`` when given.

        An unknown asset has none.
        """

    async def add_version(
        self, version: AssetVersion, *, expected_latest: int, status: AssetStatus | None = None
    ) -> Asset:
        """Add ``version`` (numbered ``expected_latest + 1``) if the asset is still at
        ``expected_latest``: a compare-and-set, so of two writers only one adds a version. Sets
        ``updated_at`` to the version's ``created_at`` and, when given, the status (clearing the
        error). Returns the asset as it now is.

        Raises:
            AssetNotFound: no such asset.
            VersionConflict: the asset is at another version; nothing was written.
            InvalidInput: ``version.version`` is not ``expected_latest + 1``.
        """

    async def update(self, asset_id: str, changes: AssetChanges, *, at: datetime) -> Asset:
        """Change the mutable fields (``AssetChanges``); ``updated_at`` becomes ``at``.

        Raises:
            AssetNotFound: no such asset.
            AssetNameTaken: the new name, or joining the library, collides with a library asset.
        """

    async def list(
        self, owner_id: str, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        """The owner's assets (of ``kind`` when given), newest first (id descending), only those
        older than ``after`` when given."""

    async def all(self, *, limit: int, after: str | None = None) -> Sequence[Asset]:
        """Every owner's assets, newest first (id descending), only those older than ``after``
        when given: a full reindex pages through them."""

    async def delete(self, asset_id: str) -> None:
        """Remove the asset and its versions; its lineage edges stay. Raises AssetNotFound."""

    async def transfer(self, owner_id: str, to: str, *, at: datetime) -> int:
        """Give every asset of ``owner_id`` to ``to``, all or none; returns how many moved.
        Raises AssetNameTaken when ``to`` already has a library asset of a moved one's kind and
        name (the user deletion that asked for the transfer then fails, and can be retried once
        one of the two is renamed)."""

    async def add_edges(self, edges: Sequence[LineageEdge]) -> None:
        """Record lineage edges; one already recorded (same input, output and job) is left as is."""

    async def edges(
        self, asset_ids: Collection[str], direction: Direction, *, limit: int
    ) -> Sequence[LineageEdge]:
        """Edges into (``up``: whose output is one of ``asset_ids``) or out of (``down``: whose
        input is) those assets, or both, at most ``limit``, oldest first."""

    async def dependents(self, asset_id: str, *, limit: int) -> Sequence[Asset]:
        """Existing assets derived from any version of this one (itself left out), at most
        ``limit``, oldest first."""


class AccessRule(Protocol):
    """**Protocol:** the one access policy, as the catalog applies it to every asset it hands out.

    ``studio9.access.policy.AccessPolicy`` implements it (ownership, shares to the user, their
    groups or their email, project memberships); the composition root passes it in. Without
    one, ``CatalogService`` uses ``OwnersOnly``: every asset is its owner's alone.
    """

    async def access(self, actor: Principal, assets: Sequence[Asset]) -> Sequence[Access]:
        """What ``actor`` may do with each of ``assets``, in their order (one lookup for all)."""


class KindHandler(Protocol):
    """**Protocol:** what the context owning a kind does when the catalog deletes an asset of it.

    Registered with ``CatalogService`` by the composition root; the catalog never imports the
    context. Called after the asset's record is gone, so it may not refuse; it must tolerate
    content that is already gone (a retried delete).
    """

    async def deleted(self, asset: Asset, versions: Sequence[AssetVersion]) -> None:
        """Remove what the asset's ``versions`` (all of them, read before the delete) point to
        (blobs, records), except what other assets still hold (``Assets.content_holders``)."""


class Assets(Protocol):
    """**Protocol:** the catalog as the contexts that own a kind use it (tables, later models…);
    ``studio9.catalog.service.CatalogService`` implements it and the composition root passes it in.

    Reads take the caller and apply the one access rule (an asset the caller may not read is
    ``AssetNotFound``); the writes are for the owning context's own use cases and jobs, which
    have checked access already.
    """

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
        """A new asset; ``content`` None: no version yet, status ``saving`` (see ``add_version``).
        Raises InvalidInput, AssetNameTaken."""

    async def add_version(
        self,
        asset_id: str,
        content: Mapping[str, Any],
        *,
        expected_latest: int,
        job_id: str | None = None,
        status: AssetStatus | None = None,
    ) -> tuple[Asset, AssetVersion]:
        """The version after ``expected_latest``. Raises AssetNotFound, VersionConflict."""

    async def set_status(self, asset_id: str, status: AssetStatus, error: str | None = None) -> Asset:
        """Raises AssetNotFound."""

    async def record_lineage(
        self,
        *,
        job_id: str | None,
        inputs: Sequence[tuple[str, int]],
        outputs: Sequence[tuple[str, int]],
    ) -> None:
        """Every ``(asset id, version)`` of ``inputs`` went into every one of ``outputs``."""

    async def get(self, actor: Principal, asset_id: str) -> Asset:
        """Raises AssetNotFound (also for an asset ``actor`` may not read)."""

    async def writable(self, actor: Principal, asset_id: str) -> Asset:
        """The asset, if ``actor`` may change its content. Raises AssetNotFound (may not read
        it), PermissionDenied (may read it, not change it)."""

    async def read(
        self, actor: Principal, asset_id: str, version: int | None = None
    ) -> tuple[Asset, AssetVersion | None]:
        """The asset and one version (None: the latest; None while the first is being written)."""

    async def named(self, actor: Principal, owner_id: str, kind: AssetKind, name: str) -> Asset:
        """The library asset of that owner, kind and name. Raises AssetNotFound (also when
        ``actor`` may not read it)."""

    async def content_holders(self, asset_id: str) -> Sequence[AssetVersion] | None:
        """Every version of the existing assets that may share content written for ``asset_id``:
        itself and its copies (``studio9.catalog.copies``); None when there are too many to tell."""


class LineageEvents(Protocol):
    """**Protocol:** where a job's OpenLineage run events go (``studio9.catalog.openlineage``).

    Implemented by ``adapters/lineage_sink/http.py`` (the event bus, topic ``openlineage.run``,
    and ``STUDIO9_OPENLINEAGE_URL`` when set), wired by the composition root.
    """

    async def emit(self, event: Mapping[str, Any]) -> None:
        """Send one ``RunEvent``. Never raises: lineage is a side channel, so a destination
        that refuses is logged and the job goes on."""
