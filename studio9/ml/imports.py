"""Model files in and out: import a skops file as a model version, export one as skops or ONNX.

An imported file is loaded with skops' trusted-types check before anything is stored: a file
that holds a type neither Studio9 trusts (``persistence.TRUSTED_TYPES``) nor the administrator
allowed (``STUDIO9_MODEL_TRUSTED_TYPES``) is refused with 422 listing every such type. Its input
schema comes from the pipeline: the columns it was fitted on (``feature_names_in_``), typed
``string`` where its column transformer one-hot or ordinal encodes them, ``float`` otherwise
(a model fitted on a bare array names its columns ``x0``, ``x1``...). The task: regression for a
regressor, binary or multiclass by the classifier's ``classes_``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import anyio.to_thread
import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetStatus, VersionConflict
from studio9.errors import InvalidInput, PayloadTooLarge
from studio9.files.ports import BlobStore
from studio9.ids import new_id
from studio9.ml.content import ModelContent, artifact_key, one_chunk
from studio9.ml.domain import ModelSource, ModelVersionInfo
from studio9.ml.service import ModelService, ModelVersionView
from studio9.ml.serving import require_servable

MAX_MODEL_BYTES: Final = 512 * 1024 * 1024


@attrs.define
class ModelImporter:
    models: ModelService
    blobs: BlobStore
    allowed_types: frozenset[str] = frozenset()

    async def import_skops(self, actor: Principal, name: str, data: bytes) -> ModelVersionView:
        """A new version of ``actor``'s model ``name`` from skops bytes. Raises InvalidModelFile,
        UntrustedModel (422), PayloadTooLarge."""
        content = await self.describe(data)
        catalog = self.models.catalog
        try:
            model = await catalog.named(actor, actor.user_id, AssetKind.MODEL, name)
        except AssetNotFound:
            model = await catalog.create(
                owner_id=actor.user_id, kind=AssetKind.MODEL, name=name, content=None, in_library=True
            )
        return await self.store_skops(actor, model, data, content)

    async def describe(self, data: bytes) -> ModelContent:
        """What a skops file holds (loaded with the trusted-types check), its ``artifact`` not
        yet set. Raises InvalidModelFile, UntrustedModel, PayloadTooLarge."""
        if len(data) > MAX_MODEL_BYTES:
            raise PayloadTooLarge(f"a model file may hold at most {MAX_MODEL_BYTES} bytes")
        if not data:
            raise InvalidInput("the body is empty: send the skops file as the request body", field="body")
        return await anyio.to_thread.run_sync(_describe, data, self.allowed_types)

    async def store_skops(
        self,
        actor: Principal,
        model: Asset,
        data: bytes,
        content: ModelContent,
        *,
        source: ModelSource = ModelSource.IMPORT,
        run_id: str | None = None,
        training: Mapping[str, Any] | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionView:
        """The skops file ``data`` (described by ``describe``) stored under the model's own prefix,
        as its next version."""
        upload = new_id()
        key = artifact_key(model.id, upload)
        await self.blobs.put(key, one_chunk(data))
        stored = attrs.evolve(content, artifact=key, training={"import": upload, **(training or {})})
        return await self.add_version(
            actor, model, stored, source=source, run_id=run_id, description=description, tags=tags
        )

    async def add_version(
        self,
        actor: Principal,
        model: Asset,
        content: ModelContent,
        *,
        source: ModelSource,
        run_id: str | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionView:
        """``content`` as the model's next version, with its registry row."""
        catalog = self.models.catalog
        while True:
            latest = (await catalog.get(actor, model.id)).latest_version
            try:
                _, version = await catalog.add_version(
                    model.id, content.to_json(), expected_latest=latest, status=AssetStatus.ACTIVE
                )
                break
            except VersionConflict:
                continue  # another version came first: ours is the next
        now = datetime.now(UTC)
        await self.models.registry.put_version(
            ModelVersionInfo(
                asset_id=model.id,
                version=version.version,
                description=description,
                tags=dict(tags or {}),
                run_id=run_id,
                source=source,
                created_at=now,
                updated_at=now,
            )
        )
        return await self.models.version(actor, await catalog.get(actor, model.id), version.version)

    async def export(self, actor: Principal, name: str, number: int, format: str) -> tuple[bytes, str]:
        """The version's file and a file name for it. Raises OnnxUnavailable (409) for ONNX
        where skl2onnx is missing or cannot convert the pipeline."""
        asset = await self.models.model(actor, name)
        view = await self.models.version(actor, asset, number)
        require_servable(view)
        data = b"".join([chunk async for chunk in await self.blobs.open(view.content.artifact)])
        stem = f"{asset.name}-v{number}".replace('"', "")
        if format == "onnx":
            onnx = await anyio.to_thread.run_sync(_onnx, data, view.content, self.allowed_types)
            return onnx, f"{stem}.onnx"
        return data, f"{stem}.skops"


def _describe(data: bytes, allowed: frozenset[str]) -> ModelContent:
    from sklearn.base import is_classifier

    from studio9.ml.persistence import load_model

    model = load_model(data, allowed=allowed)
    features = [str(f) for f in getattr(model, "feature_names_in_", [])]
    if not features:
        count = int(getattr(model, "n_features_in_", 0))
        features = [f"x{i}" for i in range(count)]
    if not features:
        raise InvalidInput("the model does not say which columns it was fitted on", field="body")
    text = _encoded_columns(model)
    schema = tuple(
        {"name": f, "type": "string" if f in text else "float", "nullable": True} for f in features
    )
    if is_classifier(model):
        classes = tuple(_plain(c) for c in model.classes_)
        task = "binary" if len(classes) == 2 else "multiclass"
    else:
        classes, task = None, "regression"
    import sklearn

    return ModelContent(
        artifact="",
        task=task,
        target=None,
        features=tuple(features),
        input_schema=schema,
        classes=classes,
        algorithm=type(model[-1] if hasattr(model, "steps") else model).__name__,
        sklearn_version=sklearn.__version__,
    )


def _encoded_columns(model: Any) -> set[str]:
    """The columns a pipeline's column transformer encodes as categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    steps = getattr(model, "steps", [])
    found: set[str] = set()
    for _, step in steps:
        if not isinstance(step, ColumnTransformer):
            continue
        for _, transformer, columns in step.transformers_:
            parts = getattr(transformer, "steps", [(None, transformer)])
            if any(isinstance(p, OneHotEncoder | OrdinalEncoder) for _, p in parts) and isinstance(
                columns, list
            ):
                found.update(str(c) for c in columns)
    return found


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _onnx(data: bytes, content: ModelContent, allowed: frozenset[str]) -> bytes:
    from studio9.ml.persistence import export_onnx, load_model
    from studio9.ml.schema import schema_from_json

    return export_onnx(load_model(data, allowed=allowed), schema_from_json(content.input_schema))
