"""Experiments: catalog assets of kind ``experiment`` that hold runs, and who may read or log to them.

An experiment is its owner's library asset, so sharing, projects, the library and deleting are
the catalog's; the tracking store keeps its tags and runs. Every caller has a ``Default``
experiment, made on first use: MLflow scripts that never call ``set_experiment`` log to the
experiment id ``"0"``, which means the caller's own ``Default`` here.

Names: an experiment name is the caller's own experiment of that name, or ``owner/name`` (a
user's experiment the caller may read), or an experiment's id.

Access answers are remembered per caller for ``cache_seconds`` (as verified tokens are), because
an MLflow client checks the same experiment on every one of its calls: a revoked share stops
working within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final

import attrs
import structlog

from studio9.auth.domain import Principal, UserNotFound
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Access, Asset, AssetKind, AssetNameTaken, AssetNotFound
from studio9.errors import InvalidInput, PermissionDenied
from studio9.tracking.domain import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    MAX_EXPERIMENT_NAME_LENGTH,
    Experiment,
    ExperimentAlreadyExists,
    ExperimentNameNotFound,
    ExperimentNotFound,
    InvalidExperimentName,
)
from studio9.tracking.ports import ExperimentCatalog, TrackingStore
from studio9.tracking.validation import check_experiment_tag

log = structlog.get_logger()

_CACHE_LIMIT: Final = 4096


@attrs.define
class ExperimentService:
    catalog: ExperimentCatalog
    store: TrackingStore
    users: UserStore
    cache_seconds: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _access: dict[tuple[str, str], tuple[float, Access]] = attrs.field(factory=dict, init=False)
    _defaults: dict[str, str] = attrs.field(factory=dict, init=False)

    # -- experiments ----------------------------------------------------------------------------

    async def create(
        self, actor: Principal, name: str, *, tags: Mapping[str, str] | None = None, description: str = ""
    ) -> Experiment:
        """A new experiment of the caller's. Raises ExperimentAlreadyExists, InvalidInput."""
        checked = _check_name(name)
        clean = dict(check_experiment_tag(k, v) for k, v in (tags or {}).items())
        try:
            asset = await self.catalog.create(
                owner_id=actor.user_id,
                kind=AssetKind.EXPERIMENT,
                name=checked,
                content={},
                description=description,
                in_library=True,
            )
        except AssetNameTaken:
            raise ExperimentAlreadyExists(checked) from None
        if clean:
            await self.store.set_experiment_tags(asset.id, clean)
        log.info("experiment_created", experiment_id=asset.id, by=actor.user_id)
        return Experiment(asset=asset, tags=clean)

    async def get(self, actor: Principal, experiment_id: str) -> Experiment:
        """Raises ExperimentNotFound (also for one the caller may not read)."""
        asset = await self.asset(actor, experiment_id)
        tags = await self.store.experiment_tags([asset.id])
        return Experiment(asset=asset, tags=tags.get(asset.id, {}))

    async def by_name(self, actor: Principal, name: str) -> Experiment:
        """The experiment ``name`` means to the caller (module doc). Raises ExperimentNotFound."""
        owner, _, own_name = name.rpartition("/")
        try:
            if owner:
                user = await self.users.get_by_username(owner)
                asset = await self.catalog.named(actor, user.id, AssetKind.EXPERIMENT, own_name)
            elif name == DEFAULT_EXPERIMENT_NAME:
                asset = await self.default(actor)
            else:
                asset = await self.catalog.named(actor, actor.user_id, AssetKind.EXPERIMENT, name)
        except (AssetNotFound, UserNotFound):
            raise ExperimentNameNotFound(name) from None
        tags = await self.store.experiment_tags([asset.id])
        return Experiment(asset=asset, tags=tags.get(asset.id, {}))

    async def default(self, actor: Principal) -> Asset:
        """The caller's ``Default`` experiment, made on first use."""
        if known := self._defaults.get(actor.user_id):
            try:
                return await self.catalog.get(actor, known)
            except AssetNotFound:
                self._defaults.pop(actor.user_id, None)
        try:
            asset = await self.catalog.named(
                actor, actor.user_id, AssetKind.EXPERIMENT, DEFAULT_EXPERIMENT_NAME
            )
        except AssetNotFound:
            try:
                asset = (await self.create(actor, DEFAULT_EXPERIMENT_NAME)).asset
            except ExperimentAlreadyExists:  # another request made it first
                asset = await self.catalog.named(
                    actor, actor.user_id, AssetKind.EXPERIMENT, DEFAULT_EXPERIMENT_NAME
                )
        self._defaults[actor.user_id] = asset.id
        return asset

    async def mine(self, actor: Principal, *, limit: int, after: str | None = None) -> list[Experiment]:
        """The caller's own experiments, newest first, older than ``after`` (an id). Experiments
        shared with the caller are in the library (``kind=experiment&scope=shared``)."""
        assets = await self.catalog.list(actor, kind=AssetKind.EXPERIMENT, limit=limit, after=after)
        tags = await self.store.experiment_tags([a.id for a in assets])
        return [Experiment(asset=a, tags=tags.get(a.id, {})) for a in assets]

    async def rename(self, actor: Principal, experiment_id: str, new_name: str) -> Experiment:
        """Raises ExperimentNotFound, PermissionDenied, ExperimentAlreadyExists."""
        asset = await self.require(actor, experiment_id, Access.WRITE)
        try:
            await self.catalog.update(actor, asset.id, name=_check_name(new_name))
        except AssetNameTaken:
            raise ExperimentAlreadyExists(new_name) from None
        return await self.get(actor, asset.id)

    async def delete(self, actor: Principal, experiment_id: str) -> None:
        """Delete the experiment with its runs, their data and artifacts (ownership)."""
        asset = await self.require(actor, experiment_id, Access.OWN)
        await self.catalog.delete(actor, asset.id, force=True)
        self._forget(asset.id)
        if self._defaults.get(actor.user_id) == asset.id:
            self._defaults.pop(actor.user_id, None)

    async def set_tag(self, actor: Principal, experiment_id: str, key: str, value: str) -> None:
        asset = await self.require(actor, experiment_id, Access.WRITE)
        await self.store.set_experiment_tags(asset.id, dict([check_experiment_tag(key, value)]))

    async def delete_tag(self, actor: Principal, experiment_id: str, key: str) -> None:
        asset = await self.require(actor, experiment_id, Access.WRITE)
        await self.store.delete_experiment_tag(asset.id, key)

    # -- access ---------------------------------------------------------------------------------

    async def asset(self, actor: Principal, experiment_id: str) -> Asset:
        """The experiment asset the caller may read (``"0"``: their Default). Raises
        ExperimentNotFound."""
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            return await self.default(actor)
        try:
            asset = await self.catalog.get(actor, experiment_id)
        except (AssetNotFound, InvalidInput):
            raise ExperimentNotFound(experiment_id) from None
        if asset.kind is not AssetKind.EXPERIMENT:
            raise ExperimentNotFound(experiment_id)
        return asset

    async def require(self, actor: Principal, experiment_id: str, needed: Access) -> Asset:
        """The experiment, if the caller has ``needed`` access to it. Raises ExperimentNotFound
        (cannot read it), PermissionDenied (can read, but not ``needed``)."""
        asset = await self.asset(actor, experiment_id)
        if needed > Access.READ:
            level = (await self.catalog.rule.access(actor, [asset]))[0]
            if level < needed:
                raise PermissionDenied(f"you may not change experiment {asset.id}", experiment_id=asset.id)
        return asset

    async def check(self, actor: Principal, experiment_id: str, needed: Access) -> str:
        """The experiment's id if the caller has ``needed`` access, from a per-caller cache of
        ``cache_seconds``. Raises as ``require``."""
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            experiment_id = self._defaults.get(actor.user_id, experiment_id)
        key = (actor.user_id, experiment_id)
        now = self.clock()
        hit = self._access.get(key)
        if hit is not None and hit[0] > now and hit[1] >= needed:
            return experiment_id
        asset = await self.asset(actor, experiment_id)
        level = (await self.catalog.rule.access(actor, [asset]))[0]
        if len(self._access) >= _CACHE_LIMIT:
            self._access.clear()
        self._access[(actor.user_id, asset.id)] = (now + self.cache_seconds, level)
        if level < needed:
            raise PermissionDenied(f"you may not change experiment {asset.id}", experiment_id=asset.id)
        return asset.id

    async def readable(self, actor: Principal, experiment_ids: Sequence[str]) -> list[str]:
        """Those of the ids the caller may read (``"0"`` as their Default), in order, once each."""
        seen: list[str] = []
        for experiment_id in experiment_ids:
            try:
                real = await self.check(actor, experiment_id, Access.READ)
            except ExperimentNotFound:
                continue
            if real not in seen:
                seen.append(real)
        return seen

    def _forget(self, experiment_id: str) -> None:
        for key in [k for k in self._access if k[1] == experiment_id]:
            self._access.pop(key, None)


def _check_name(name: str) -> str:
    value = name.strip() if isinstance(name, str) else ""
    if not value:
        raise InvalidExperimentName("experiment name must not be empty", field="name")
    if len(value) > MAX_EXPERIMENT_NAME_LENGTH or "/" in value or any(ord(c) < 32 for c in value):
        raise InvalidExperimentName(
            f"experiment name must be 1-{MAX_EXPERIMENT_NAME_LENGTH} characters, without '/' or "
            "control characters",
            field="name",
        )
    return value
