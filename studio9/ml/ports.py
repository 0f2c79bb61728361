"""What the model registry needs from storage: per-version registry info and aliases.

A registered model is a catalog asset (kind ``model``) and the store keys everything by its
asset id; names, owners and the versions' content are the catalog's.

Adapters: ``adapters/model_registry/memory.py`` and ``adapters/model_registry/sql.py`` (SQLite,
PostgreSQL), a store of the system of record (``studio9.database.Database.model_registry``).
Contract: ``tests/contract/test_model_registry.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind
from studio9.catalog.ports import Assets
from studio9.ml.domain import AliasMove, ModelVersionInfo

__all__ = ["ModelCatalog", "ModelRegistryStore"]


class ModelCatalog(Assets, Protocol):
    """**Protocol:** the catalog as the registry uses it: ``Assets`` plus listing and deleting
    (``studio9.catalog.service.CatalogService``)."""

    async def list(
        self, actor: Principal, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        """The actor's own assets (of ``kind``), newest first, older than ``after``."""

    async def delete(self, actor: Principal, asset_id: str, *, force: bool = False) -> None:
        """Delete the asset and its content (ownership). Raises AssetNotFound, PermissionDenied,
        AssetHasDependents."""


class ModelRegistryStore(Protocol):
    """Registry rows of model versions and the aliases that point at them.

    Errors name the model by its asset id (the store knows no names); the service may raise
    them again with the model's name.
    """

    async def put_version(self, info: ModelVersionInfo) -> None:
        """Record a new version's registry row. Idempotent: the same (asset_id, version) again
        keeps the first row. Raises ModelNotFound when the catalog has no such asset."""

    async def version(self, asset_id: str, version: int) -> ModelVersionInfo:
        """Raises ModelVersionNotFound, also when the version was deleted."""

    async def versions(self, asset_id: str, *, include_deleted: bool = False) -> Sequence[ModelVersionInfo]:
        """The model's versions by version number; none for an unknown asset."""

    async def update_version(
        self,
        asset_id: str,
        version: int,
        *,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        at: datetime,
    ) -> ModelVersionInfo:
        """Replace what is given (``tags`` replaces every tag), stamp ``updated_at``; the stored
        info. Raises ModelVersionNotFound (also for a deleted version)."""

    async def delete_version(self, asset_id: str, version: int, *, at: datetime) -> None:
        """Mark the version deleted. Raises AliasInUse while an alias points at it (decided in
        the transaction that deletes, so a concurrent ``set_alias`` cannot slip in), and
        ModelVersionNotFound when it is absent or already deleted."""

    async def set_alias(self, asset_id: str, alias: str, version: int, *, at: datetime, by: str) -> AliasMove:
        """Point ``alias`` at ``version`` (create or move, atomically); the move, with the version
        it pointed at before. Raises InvalidInput for an unusable alias and ModelVersionNotFound
        when the version has no registry row or was deleted (checked in the same transaction)."""

    async def delete_alias(self, asset_id: str, alias: str) -> None:
        """Raises AliasNotFound."""

    async def alias(self, asset_id: str, alias: str) -> int:
        """The version ``alias`` points at; raises AliasNotFound."""

    async def aliases(self, asset_id: str) -> Mapping[str, int]:
        """Alias -> version, by alias."""

    async def aliases_of(self, asset_ids: Collection[str]) -> Mapping[str, Mapping[str, int]]:
        """Each asset id given -> its aliases (empty when it has none), in one query (list pages)."""

    async def version_aliases(self, asset_id: str, version: int) -> tuple[str, ...]:
        """The aliases pointing at the version, sorted."""

    async def delete_model(self, asset_id: str) -> None:
        """Remove every registry row of the model; raises AliasInUse (naming them) while it has
        any alias."""

    async def forget_model(self, asset_id: str) -> None:
        """Remove every registry row of the model, aliases too (the catalog deletes the asset by
        force, or with its owner)."""
