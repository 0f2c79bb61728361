"""The model registry's use cases: resolve references, list and show models, move aliases, delete.

A registered model is a catalog asset of kind ``model``, so who may see or change it is the
catalog's one access policy: reading a model (and predicting with it) needs read, moving an
alias or describing a version needs write, deleting needs ownership. The registry store
(``ModelRegistryStore``) keeps what the catalog does not: aliases and per-version info.

Names: ``{name}`` in a route is the caller's own model of that name, else the one model of that
name shared with them; an asset id works too. A reference (``parse_model_ref``) may also name
the owner, ``ada/churn@champion``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime

import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetVersion
from studio9.catalog.ports import Assets
from studio9.messaging.domain import Event
from studio9.messaging.ports import EventPublisher
from studio9.ml.content import ModelContent
from studio9.ml.domain import (
    LATEST,
    AliasInUse,
    AliasNotFound,
    ModelNotFound,
    ModelRef,
    ModelVersionInfo,
    ModelVersionNotFound,
    check_alias,
    check_version_description,
    check_version_tags,
    parse_model_ref,
)
from studio9.ml.ports import ModelCatalog, ModelRegistryStore

log = structlog.get_logger()


#: The event topic of an alias move or a version or model delete.
MODEL_CHANGED = "model.changed"


@attrs.frozen(kw_only=True)
class ModelVersionView:
    """One version as the registry shows it: the catalog's version, its content, registry info
    and the aliases that point at it."""

    asset: Asset
    version: AssetVersion
    content: ModelContent
    info: ModelVersionInfo
    aliases: tuple[str, ...]


@attrs.frozen(kw_only=True)
class ModelView:
    asset: Asset
    versions: Sequence[ModelVersionInfo]
    aliases: dict[str, int]


@attrs.define
class ModelService:
    catalog: ModelCatalog
    registry: ModelRegistryStore
    users: UserStore
    #: Told of every alias move and version delete in this process (the asset id): the online
    #: predictor drops what it cached of the model. Other processes hear of it through
    #: ``events`` (topic ``model.changed``), and their caches expire anyway.
    on_change: Callable[[str], None] = lambda asset_id: None
    events: EventPublisher | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # -- resolving ---------------------------------------------------------------------------

    async def model(self, actor: Principal, name: str, *, owner: str | None = None) -> Asset:
        """The model ``name`` means to ``actor`` (see the module doc). Raises ModelNotFound."""
        return await find_model(self.catalog, self.users, actor, name, owner=owner)

    async def resolve(self, actor: Principal, reference: str | ModelRef) -> ModelVersionView:
        """The model version a reference names, readable by ``actor``.

        Raises InvalidModelRef, ModelNotFound, AliasNotFound, ModelVersionNotFound."""
        ref = parse_model_ref(reference) if isinstance(reference, str) else reference
        asset = await self.model(actor, ref.name, owner=ref.owner)
        if ref.alias is not None and ref.alias != LATEST:
            with named(asset):
                number = await self.registry.alias(asset.id, ref.alias)
        elif ref.version is not None:
            number = ref.version
        else:
            live = await self.registry.versions(asset.id)
            if not live:
                raise ModelNotFound(ref.name)
            number = live[-1].version
        return await self.version(actor, asset, number)

    async def version(self, actor: Principal, asset: Asset, number: int) -> ModelVersionView:
        with named(asset):
            info = await self.registry.version(asset.id, number)  # raises for a deleted one too
        try:
            _, version = await self.catalog.read(actor, asset.id, number)
        except AssetNotFound:
            raise ModelVersionNotFound(asset.name, number) from None
        if version is None:
            raise ModelVersionNotFound(asset.name, number)
        return ModelVersionView(
            asset=asset,
            version=version,
            content=ModelContent.of(version.content),
            info=info,
            aliases=await self.registry.version_aliases(asset.id, number),
        )

    # -- reading -----------------------------------------------------------------------------

    async def list(self, actor: Principal, *, limit: int, after: str | None = None) -> Sequence[Asset]:
        """The caller's own registered models, newest first (shared ones: the library)."""
        return await self.catalog.list(actor, kind=AssetKind.MODEL, limit=limit, after=after)

    async def show(self, actor: Principal, name: str) -> ModelView:
        asset = await self.model(actor, name)
        return ModelView(
            asset=asset,
            versions=await self.registry.versions(asset.id),
            aliases=dict(await self.registry.aliases(asset.id)),
        )

    # -- changing ----------------------------------------------------------------------------

    async def set_alias(self, actor: Principal, name: str, alias: str, number: int) -> ModelVersionView:
        """Point ``alias`` at version ``number`` (write access). Raises ModelVersionNotFound."""
        check_alias(alias)
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        with named(asset):
            await self.registry.set_alias(asset.id, alias, number, at=self.clock(), by=actor.user_id)
        await self._changed(asset.id, alias)
        return await self.version(actor, asset, number)

    async def delete_alias(self, actor: Principal, name: str, alias: str) -> Asset:
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        with named(asset):
            await self.registry.delete_alias(asset.id, alias)
        await self._changed(asset.id, alias)
        return asset

    async def update_version(
        self,
        actor: Principal,
        name: str,
        number: int,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersionView:
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        with named(asset):
            await self.registry.update_version(
                asset.id,
                number,
                description=None if description is None else check_version_description(description),
                tags=None if tags is None else check_version_tags(tags),
                at=self.clock(),
            )
        return await self.version(actor, asset, number)

    async def delete_version(self, actor: Principal, name: str, number: int) -> Asset:
        """Mark a version deleted (write access); refused (409) while an alias points at it."""
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        with named(asset):
            await self.registry.delete_version(asset.id, number, at=self.clock())
        await self._changed(asset.id, None)
        return asset

    async def delete(self, actor: Principal, name: str) -> Asset:
        """Delete the model and every version (ownership); refused (409) while it has aliases."""
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)  # a reader learns nothing of its aliases
        aliases = await self.registry.aliases(asset.id)
        if aliases:
            raise AliasInUse(asset.name, None, sorted(aliases))
        await self.catalog.delete(actor, asset.id)
        await self._changed(asset.id, None)
        return asset

    async def _changed(self, asset_id: str, alias: str | None) -> None:
        self.on_change(asset_id)
        log.info("model_changed", model_id=asset_id, alias=alias)
        if self.events is None:
            return
        event = Event(
            topic=MODEL_CHANGED,
            subject_id=asset_id,
            version=0,
            at=self.clock(),
            payload={"model_id": asset_id, "alias": alias},
        )
        try:
            await self.events.publish([event])
        except Exception:  # the change is made; other processes' caches expire on their own
            log.warning("model_event_failed", model_id=asset_id, exc_info=True)


async def find_model(
    catalog: Assets, users: UserStore, actor: Principal, name: str, *, owner: str | None = None
) -> Asset:
    """The model asset ``name`` (of user ``owner``, by username, when given) means to ``actor``.

    Without an owner: the caller's own model of that name, else an asset id of a model they
    may read. Raises ModelNotFound."""
    try:
        if owner is not None:
            user = await users.get_by_username(owner)
            return await catalog.named(actor, user.id, AssetKind.MODEL, name)
        try:
            return await catalog.named(actor, actor.user_id, AssetKind.MODEL, name)
        except AssetNotFound:
            asset = await catalog.get(actor, name)
            if asset.kind is not AssetKind.MODEL:
                raise
            return asset
    except (AssetNotFound, LookupError):
        raise ModelNotFound(name if owner is None else f"{owner}/{name}") from None
    except Exception as exc:
        if type(exc).__name__ == "UserNotFound":
            raise ModelNotFound(f"{owner}/{name}") from None
        raise


@contextlib.contextmanager
def named(asset: Asset) -> Iterator[None]:
    """Registry errors (which name the asset id) raised again naming the model as users know it."""
    try:
        yield
    except ModelVersionNotFound as exc:
        raise ModelVersionNotFound(asset.name, exc.version) from None
    except AliasNotFound as exc:
        raise AliasNotFound(asset.name, exc.alias) from None
    except AliasInUse as exc:
        raise AliasInUse(asset.name, exc.version, exc.aliases) from None
    except ModelNotFound:
        raise ModelNotFound(asset.name) from None
