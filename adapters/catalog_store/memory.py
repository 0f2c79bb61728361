"""Catalog store held in dictionaries: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.catalog``)
Features: thread-safe · library names unique per owner and kind · compare-and-set versions
Extra:    none

Given ``outbox`` (``MemoryJobStore.enqueue``, wired by ``MemoryDatabase``), each write that
changes assets appends an ``asset`` entry per asset under the store's lock, once the change is
made: what the SQL store writes in the change's transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from studio9.catalog.domain import (
    Asset,
    AssetChanges,
    AssetExists,
    AssetKind,
    AssetNameTaken,
    AssetNotFound,
    AssetStatus,
    AssetVersion,
    Direction,
    LineageEdge,
    VersionConflict,
    check_new_asset,
    check_next_version,
)

if TYPE_CHECKING:
    from studio9.catalog.ports import CatalogStore


#: Appends outbox entries: ``outbox(topic, ref_ids)``.
Outbox = Callable[[str, Sequence[str]], None]

_ASSET_TOPIC = "asset"


class MemoryCatalogStore:
    def __init__(self, *, outbox: Outbox | None = None) -> None:
        self._outbox = outbox
        self._lock = threading.Lock()
        self._assets: dict[str, Asset] = {}
        self._versions: dict[str, dict[int, AssetVersion]] = {}
        self._edges: dict[tuple[str, int, str, int, str | None], LineageEdge] = {}
        self._deleted: list[Callable[[str], None]] = []

    def on_delete(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(asset_id)`` after each delete: what the in-memory database does in
        place of the SQL foreign keys that cascade from ``assets.id`` (an asset's shares go)."""
        self._deleted.append(listener)

    async def add(self, asset: Asset, first: AssetVersion | None) -> None:
        check_new_asset(asset, first)
        with self._lock:
            if asset.id in self._assets:
                raise AssetExists(asset.id)
            self._check_name_free(asset)
            self._assets[asset.id] = asset
            self._versions[asset.id] = {} if first is None else {first.version: first}
            self._changed([asset.id])

    async def get(self, asset_id: str) -> Asset:
        with self._lock:
            return self._asset(asset_id)

    async def find(self, asset_ids: Collection[str]) -> Sequence[Asset]:
        with self._lock:
            return [self._assets[i] for i in set(asset_ids) if i in self._assets]

    async def named(self, owner_id: str, kind: AssetKind, name: str) -> Asset:
        with self._lock:
            for asset in self._assets.values():
                if asset.in_library and (asset.owner_id, asset.kind, asset.name) == (owner_id, kind, name):
                    return asset
        raise AssetNotFound(f"{owner_id}/{name}")

    async def get_version(self, asset_id: str, version: int | None = None) -> AssetVersion:
        with self._lock:
            asset = self._asset(asset_id)
            number = asset.latest_version if version is None else version
            found = self._versions[asset_id].get(number)
        if found is None:
            raise AssetNotFound(asset_id, number)
        return found

    async def versions(
        self, asset_id: str, *, limit: int, before: int | None = None
    ) -> Sequence[AssetVersion]:
        with self._lock:
            kept = self._versions.get(asset_id, {})
            numbers = sorted((n for n in kept if before is None or n < before), reverse=True)
            return [kept[n] for n in numbers[:limit]]

    async def add_version(
        self, version: AssetVersion, *, expected_latest: int, status: AssetStatus | None = None
    ) -> Asset:
        check_next_version(version, expected_latest)
        with self._lock:
            asset = self._asset(version.asset_id)
            if asset.latest_version != expected_latest:
                raise VersionConflict(asset.id, expected_latest)
            changed = attrs.evolve(asset, latest_version=version.version, updated_at=version.created_at)
            if status is not None:
                changed = attrs.evolve(changed, status=status, error=None)
            self._versions[asset.id][version.version] = version
            self._assets[asset.id] = changed
            self._changed([asset.id])
            return changed

    async def update(self, asset_id: str, changes: AssetChanges, *, at: datetime) -> Asset:
        with self._lock:
            changed = changes.apply(self._asset(asset_id), at)
            self._check_name_free(changed)
            self._assets[asset_id] = changed
            self._changed([asset_id])
            return changed

    async def list(
        self, owner_id: str, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        with self._lock:
            found = [
                a
                for a in self._assets.values()
                if a.owner_id == owner_id
                and (kind is None or a.kind == kind)
                and (after is None or a.id < after)
            ]
        return sorted(found, key=lambda a: a.id, reverse=True)[:limit]

    async def delete(self, asset_id: str) -> None:
        with self._lock:
            if self._assets.pop(asset_id, None) is None:
                raise AssetNotFound(asset_id)
            self._versions.pop(asset_id, None)
            self._changed([asset_id])
        for listener in self._deleted:  # outside the lock: a listener has its own
            listener(asset_id)

    async def transfer(self, owner_id: str, to: str, *, at: datetime) -> int:
        with self._lock:
            moved = {
                a.id: attrs.evolve(a, owner_id=to, updated_at=at)
                for a in self._assets.values()
                if a.owner_id == owner_id
            }
            for asset in moved.values():
                for other in self._assets.values():
                    if (
                        other.id not in moved
                        and asset.in_library
                        and other.in_library
                        and (other.owner_id, other.kind, other.name) == (to, asset.kind, asset.name)
                    ):
                        raise AssetNameTaken(asset.kind, asset.name)
            self._assets.update(moved)
            self._changed(list(moved))
            return len(moved)

    async def all(self, *, limit: int, after: str | None = None) -> Sequence[Asset]:
        with self._lock:
            found = [a for a in self._assets.values() if after is None or a.id < after]
        return sorted(found, key=lambda a: a.id, reverse=True)[:limit]

    async def add_edges(self, edges: Sequence[LineageEdge]) -> None:
        with self._lock:
            for edge in edges:
                self._edges.setdefault(edge.key, edge)

    async def edges(
        self, asset_ids: Collection[str], direction: Direction, *, limit: int
    ) -> Sequence[LineageEdge]:
        wanted = set(asset_ids)
        up = direction in (Direction.UP, Direction.BOTH)
        down = direction in (Direction.DOWN, Direction.BOTH)
        with self._lock:
            found = [
                e
                for e in self._edges.values()
                if (up and e.output_id in wanted) or (down and e.input_id in wanted)
            ]
        return sorted(found, key=_edge_order)[:limit]

    async def dependents(self, asset_id: str, *, limit: int) -> Sequence[Asset]:
        with self._lock:
            first_seen: dict[str, LineageEdge] = {}
            for edge in sorted(self._edges.values(), key=_edge_order):
                if edge.input_id == asset_id and edge.output_id != asset_id:
                    first_seen.setdefault(edge.output_id, edge)
            found = [self._assets[i] for i in first_seen if i in self._assets]
        return sorted(found, key=lambda a: a.id)[:limit]

    def _changed(self, asset_ids: Sequence[str]) -> None:
        """Under the lock, after the change: the outbox entries of the SQL store's transaction."""
        if self._outbox is not None and asset_ids:
            self._outbox(_ASSET_TOPIC, asset_ids)

    def _asset(self, asset_id: str) -> Asset:
        try:
            return self._assets[asset_id]
        except KeyError:
            raise AssetNotFound(asset_id) from None

    def _check_name_free(self, asset: Asset) -> None:
        """Under the lock: the unique index of the SQL store, (owner, kind, name) of library assets."""
        if not asset.in_library:
            return
        for other in self._assets.values():
            if (
                other.id != asset.id
                and other.in_library
                and (other.owner_id, other.kind, other.name) == (asset.owner_id, asset.kind, asset.name)
            ):
                raise AssetNameTaken(asset.kind, asset.name)


def _edge_order(edge: LineageEdge) -> tuple[object, ...]:
    return (
        edge.at,
        edge.output_id,
        edge.output_version,
        edge.input_id,
        edge.input_version,
        edge.job_id or "",
    )


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[CatalogStore] = MemoryCatalogStore
