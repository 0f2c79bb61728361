"""ModelRegistryStore held in dictionaries: nothing survives the process.

URL:      memory:// (a store of the in-memory system of record, ``MemoryDatabase.model_registry``)
Features: thread-safe · every call one step under one lock, so alias moves and deletes are atomic ·
          the SQL tables' foreign keys to ``assets`` kept by hand
Extra:    none

Given the catalog (``assets``), a version of an unknown asset is refused; ``asset_deleted``
(which ``MemoryDatabase`` has the catalog call on every delete) forgets the asset's rows, as the
SQL foreign keys' ON DELETE CASCADE does.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import attrs

from studio9.catalog.ports import CatalogStore
from studio9.ml.domain import (
    AliasInUse,
    AliasMove,
    AliasNotFound,
    ModelNotFound,
    ModelVersionInfo,
    ModelVersionNotFound,
    check_alias,
)

if TYPE_CHECKING:
    from studio9.ml.ports import ModelRegistryStore


class MemoryModelRegistryStore:
    """Registry rows in dictionaries, keyed by asset id."""

    def __init__(self, assets: CatalogStore | None = None) -> None:
        self._assets = assets
        self._lock = threading.Lock()
        self._versions: dict[str, dict[int, ModelVersionInfo]] = {}
        self._aliases: dict[str, dict[str, int]] = {}

    def asset_deleted(self, asset_id: str) -> None:
        """Forget the asset's registry rows (the SQL foreign keys' ON DELETE CASCADE)."""
        with self._lock:
            self._forget(asset_id)

    # -- versions ---------------------------------------------------------------------------------

    async def put_version(self, info: ModelVersionInfo) -> None:
        # Outside the lock: the catalog takes its own.
        if self._assets is not None and not await self._assets.find([info.asset_id]):
            raise ModelNotFound(info.asset_id)
        with self._lock:
            self._versions.setdefault(info.asset_id, {}).setdefault(info.version, info)

    async def version(self, asset_id: str, version: int) -> ModelVersionInfo:
        with self._lock:
            return self._live(asset_id, version)

    async def versions(self, asset_id: str, *, include_deleted: bool = False) -> Sequence[ModelVersionInfo]:
        with self._lock:
            kept = self._versions.get(asset_id, {})
            return [kept[n] for n in sorted(kept) if include_deleted or not kept[n].deleted]

    async def update_version(
        self,
        asset_id: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        at: datetime,
    ) -> ModelVersionInfo:
        with self._lock:
            info = self._live(asset_id, version)
            changed = attrs.evolve(
                info,
                description=info.description if description is None else description,
                tags=info.tags if tags is None else dict(tags),
                updated_at=at,
            )
            self._versions[asset_id][version] = changed
            return changed

    async def delete_version(self, asset_id: str, version: int, *, at: datetime) -> None:
        with self._lock:
            info = self._live(asset_id, version)
            if aliases := self._aliases_at(asset_id, version):
                raise AliasInUse(asset_id, version, aliases)
            self._versions[asset_id][version] = attrs.evolve(info, deleted=True, updated_at=at)

    # -- aliases ----------------------------------------------------------------------------------

    async def set_alias(self, asset_id: str, alias: str, version: int, *, at: datetime, by: str) -> AliasMove:
        check_alias(alias)
        with self._lock:
            self._live(asset_id, version)
            aliases = self._aliases.setdefault(asset_id, {})
            previous = aliases.get(alias)
            aliases[alias] = version
        return AliasMove(asset_id=asset_id, alias=alias, version=version, previous=previous)

    async def delete_alias(self, asset_id: str, alias: str) -> None:
        with self._lock:
            if self._aliases.get(asset_id, {}).pop(alias, None) is None:
                raise AliasNotFound(asset_id, alias)

    async def alias(self, asset_id: str, alias: str) -> int:
        with self._lock:
            found = self._aliases.get(asset_id, {}).get(alias)
        if found is None:
            raise AliasNotFound(asset_id, alias)
        return found

    async def aliases(self, asset_id: str) -> Mapping[str, int]:
        with self._lock:
            return dict(sorted(self._aliases.get(asset_id, {}).items()))

    async def aliases_of(self, asset_ids: Collection[str]) -> Mapping[str, Mapping[str, int]]:
        with self._lock:
            return {i: dict(sorted(self._aliases.get(i, {}).items())) for i in asset_ids}

    async def version_aliases(self, asset_id: str, version: int) -> tuple[str, ...]:
        with self._lock:
            return self._aliases_at(asset_id, version)

    # -- models -----------------------------------------------------------------------------------

    async def delete_model(self, asset_id: str) -> None:
        with self._lock:
            if aliases := sorted(self._aliases.get(asset_id, {})):
                raise AliasInUse(asset_id, None, aliases)
            self._forget(asset_id)

    async def forget_model(self, asset_id: str) -> None:
        with self._lock:
            self._forget(asset_id)

    # -- under the lock ---------------------------------------------------------------------------

    def _live(self, asset_id: str, version: int) -> ModelVersionInfo:
        info = self._versions.get(asset_id, {}).get(version)
        if info is None or info.deleted:
            raise ModelVersionNotFound(asset_id, version)
        return info

    def _aliases_at(self, asset_id: str, version: int) -> tuple[str, ...]:
        return tuple(sorted(a for a, v in self._aliases.get(asset_id, {}).items() if v == version))

    def _forget(self, asset_id: str) -> None:
        self._versions.pop(asset_id, None)
        self._aliases.pop(asset_id, None)


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[ModelRegistryStore] = MemoryModelRegistryStore
