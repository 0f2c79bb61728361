"""The MLflow model registry over Studio9's: one store, two faces (``docs/mlflow-protocol.md`` §3.3).

An MLflow registered model is a Studio9 model (a catalog asset of kind ``model``), its versions
the asset's versions, its aliases the registry's aliases, so a version registered by an MLflow
client is one ``/api/v1/models`` serves, and a Studio9-trained version one an MLflow client
loads. The access policy is the catalog's: reading needs read access to the model, changing it
write access, deleting it ownership.

Where Studio9 differs from MLflow's server, and why:

- every version is ``READY`` (registration is synchronous) in stage ``"None"`` (stages are
  deprecated in MLflow; Studio9 has aliases only);
- a name is the caller's own model of that name, or the id of a model shared with them;
- deleting a model or a version that an alias points at is refused (409 ``RESOURCE_CONFLICT``),
  as on ``/api/v1/models``: moving a served alias away first is deliberate;
- model-level tags live in the tracking store's per-asset tag table (which the asset's delete
  cascades to); ``mlflow.prompt.is_prompt`` is never set by Studio9, so MLflow's prompt check
  passes for every model.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind, AssetNameTaken
from studio9.catalog.service import CatalogService
from studio9.ml.domain import (
    AliasNotFound,
    ModelNotFound,
    ModelRef,
    ModelSource,
    ModelVersionNotFound,
    check_version_description,
)
from studio9.ml.service import ModelService, ModelVersionView
from studio9.tracking.domain import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST
from studio9.tracking.mlflow_face.protocol import MlflowError, tag_list
from studio9.tracking.mlflow_face.registry_files import registry_uri
from studio9.tracking.ports import TrackingStore
from studio9.tracking.validation import check_experiment_tag

#: Every version's stage: MLflow's "no stage" (the string ``"None"``).
NO_STAGE: Final = "None"
READY: Final = "READY"
#: MLflow's registered-model name rule: not empty, no ``/`` or ``:`` (URIs split on them).
_FORBIDDEN_IN_NAMES: Final = ("/", ":")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def check_registered_name(name: str | None) -> str:
    """The name if MLflow and the catalog accept it; raise 400 INVALID_PARAMETER_VALUE."""
    if name is None or not name.strip():
        raise MlflowError("Registered model name cannot be empty.")
    if any(c in name for c in _FORBIDDEN_IN_NAMES):
        raise MlflowError(f"Invalid name: '{name}'. Registered model name cannot contain '/' or ':'.")
    return name


def version_number(written: str | int | None) -> int:
    try:
        number = int(written or "")
    except (TypeError, ValueError):
        raise MlflowError(f"Invalid model version number '{written}': it must be an integer") from None
    if number < 1:
        raise MlflowError(f"Invalid model version number '{written}': versions start at 1")
    return number


@contextlib.contextmanager
def mlflow_errors(name: str) -> Iterator[None]:
    """The registry's errors with MLflow's codes and messages."""
    try:
        yield
    except ModelNotFound:
        raise MlflowError(f"Registered Model with name={name} not found", RESOURCE_DOES_NOT_EXIST) from None
    except ModelVersionNotFound as exc:
        raise MlflowError(
            f"Model Version (name={name}, version={exc.version}) not found", RESOURCE_DOES_NOT_EXIST
        ) from None
    except AliasNotFound as exc:
        # MLflow's server answers an unknown alias with 400, not 404.
        raise MlflowError(f"Registered model alias {exc.alias} not found.") from None
    except AssetNameTaken as exc:
        raise MlflowError(
            f"Registered Model (name={exc.name}) already exists.", RESOURCE_ALREADY_EXISTS
        ) from None


def mlflow_origin(view: ModelVersionView) -> Mapping[str, Any] | None:
    """Where an MLflow-registered version's files are (``training.mlflow``), else None."""
    found = view.content.training.get("mlflow")
    return found if view.info.source is ModelSource.MLFLOW and isinstance(found, Mapping) else None


def download_uri(view: ModelVersionView) -> str:
    """Where an MLflow client downloads the version from: the run's or logged model's artifacts
    it was registered from, else the model directory Studio9 lays out for it."""
    origin = mlflow_origin(view)
    if origin is not None and isinstance(storage := origin.get("storage"), str):
        return storage
    return registry_uri(view.asset.id, view.version.version)


def version_json(view: ModelVersionView) -> dict[str, Any]:
    """MLflow's ``ModelVersion``: ``status`` always ``READY`` (a missing one reads as pending)."""
    info, origin = view.info, mlflow_origin(view)
    source = origin.get("source") if origin is not None else None
    out: dict[str, Any] = {
        "name": view.asset.name,
        "version": str(view.version.version),
        "creation_timestamp": ms(info.created_at),
        "last_updated_timestamp": ms(info.updated_at),
        "current_stage": NO_STAGE,
        "description": info.description,
        "source": source if isinstance(source, str) else download_uri(view),
        "run_id": info.run_id or "",
        "status": READY,
        "run_link": "",
        "aliases": list(view.aliases),
        "tags": tag_list(info.tags),
        "user_id": "",
    }
    if origin is not None and isinstance(model_id := origin.get("model_id"), str):
        out["model_id"] = model_id
    return out


def registered_model_json(
    asset: Asset,
    latest: ModelVersionView | None,
    aliases: Mapping[str, int],
    tags: Mapping[str, str],
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": asset.name,
        "creation_timestamp": ms(asset.created_at),
        "last_updated_timestamp": ms(asset.updated_at),
        "description": asset.description,
        "latest_versions": [] if latest is None else [version_json(latest)],
        "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(aliases.items())],
    }
    if tags:
        out["tags"] = tag_list(tags)
    return out


@attrs.frozen
class RegistryFace:
    """The registry's use cases as MLflow's routes name them, answering MLflow's JSON shapes."""

    models: ModelService
    catalog: CatalogService
    #: Model-level tags: the tracking store's per-asset tag table.
    tags: TrackingStore

    # -- registered models -----------------------------------------------------------------------

    async def model(self, actor: Principal, name: str) -> Asset:
        with mlflow_errors(name):
            return await self.models.model(actor, name)

    async def create(
        self, actor: Principal, name: str | None, *, tags: Mapping[str, str], description: str
    ) -> dict[str, Any]:
        checked = check_registered_name(name)
        clean = dict(check_experiment_tag(k, v) for k, v in tags.items())
        with mlflow_errors(checked):
            asset = await self.catalog.create(
                owner_id=actor.user_id,
                kind=AssetKind.MODEL,
                name=checked,
                content=None,
                description=description,
                in_library=True,
            )
        if clean:
            await self.tags.set_experiment_tags(asset.id, clean)
        return registered_model_json(asset, None, {}, clean)

    async def get(self, actor: Principal, name: str) -> dict[str, Any]:
        return await self.model_json(actor, await self.model(actor, name))

    async def model_json(
        self, actor: Principal, asset: Asset, tags: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """The registered model with its latest version, aliases and tags (read if not given)."""
        versions = await self.models.registry.versions(asset.id)
        latest = None
        if versions:
            with mlflow_errors(asset.name):
                latest = await self.models.version(actor, asset, versions[-1].version)
        aliases = await self.models.registry.aliases(asset.id)
        if tags is None:
            tags = (await self.tags.experiment_tags([asset.id])).get(asset.id, {})
        return registered_model_json(asset, latest, aliases, tags)

    async def rename(self, actor: Principal, name: str, new_name: str | None) -> dict[str, Any]:
        asset = await self.model(actor, name)
        checked = check_registered_name(new_name)
        with mlflow_errors(checked):
            renamed = await self.catalog.update(actor, asset.id, name=checked)
        return await self.model_json(actor, renamed)

    async def update(self, actor: Principal, name: str, description: str | None) -> dict[str, Any]:
        asset = await self.model(actor, name)
        if description is not None:
            asset = await self.catalog.update(actor, asset.id, description=description)
        else:
            await self.catalog.writable(actor, asset.id)
        return await self.model_json(actor, asset)

    async def delete(self, actor: Principal, name: str) -> None:
        with mlflow_errors(name):
            asset = await self.models.delete(actor, name)
        await self.tags.forget_experiment(asset.id)  # the SQL stores cascade; the memory one does not

    async def set_tag(self, actor: Principal, name: str, key: str, value: str) -> None:
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        await self.tags.set_experiment_tags(asset.id, dict([check_experiment_tag(key, value)]))

    async def delete_tag(self, actor: Principal, name: str, key: str) -> None:
        asset = await self.model(actor, name)
        await self.catalog.writable(actor, asset.id)
        await self.tags.delete_experiment_tag(asset.id, key)

    async def latest_versions(
        self, actor: Principal, name: str, stages: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The latest version: every version is in stage "None", so other stages have none."""
        asset = await self.model(actor, name)
        if stages and NO_STAGE.lower() not in {s.lower() for s in stages}:
            return []
        versions = await self.models.registry.versions(asset.id)
        if not versions:
            return []
        with mlflow_errors(name):
            return [version_json(await self.models.version(actor, asset, versions[-1].version))]

    # -- versions --------------------------------------------------------------------------------

    async def version(self, actor: Principal, name: str, version: str | int | None) -> ModelVersionView:
        number = version_number(version)
        asset = await self.model(actor, name)
        with mlflow_errors(name):
            return await self.models.version(actor, asset, number)

    async def update_version(
        self, actor: Principal, name: str, version: str | None, description: str | None
    ) -> dict[str, Any]:
        number = version_number(version)
        with mlflow_errors(name):
            view = await self.models.update_version(
                actor,
                name,
                number,
                description=None if description is None else check_version_description(description),
            )
        return version_json(view)

    async def delete_version(self, actor: Principal, name: str, version: str | None) -> None:
        number = version_number(version)
        with mlflow_errors(name):
            await self.models.delete_version(actor, name, number)

    async def set_version_tag(
        self, actor: Principal, name: str, version: str | None, key: str, value: str | None
    ) -> None:
        view = await self.version(actor, name, version)
        with mlflow_errors(name):
            await self.models.update_version(
                actor, name, view.version.version, tags={**view.info.tags, key: value or ""}
            )

    async def delete_version_tag(self, actor: Principal, name: str, version: str | None, key: str) -> None:
        view = await self.version(actor, name, version)
        if key not in view.info.tags:
            return  # as MLflow's server: deleting an absent version tag is no error
        kept = {k: v for k, v in view.info.tags.items() if k != key}
        with mlflow_errors(name):
            await self.models.update_version(actor, name, view.version.version, tags=kept)

    # -- aliases ---------------------------------------------------------------------------------

    async def set_alias(self, actor: Principal, name: str, alias: str, version: str | None) -> None:
        number = version_number(version)
        with mlflow_errors(name):
            await self.models.set_alias(actor, name, alias, number)

    async def alias(self, actor: Principal, name: str, alias: str) -> ModelVersionView:
        with mlflow_errors(name):
            return await self.models.resolve(actor, ModelRef(name=name, alias=alias))

    async def delete_alias(self, actor: Principal, name: str, alias: str) -> None:
        # MLflow's server takes deleting an absent alias as done.
        with mlflow_errors(name), contextlib.suppress(AliasNotFound):
            await self.models.delete_alias(actor, name, alias)
