"""Online prediction: rows in, predictions out, in row order, in milliseconds.

Per request: the model is found as the caller may read it (the catalog's access policy, every
time), the alias resolved (cached per process for ``cache_seconds``, forgotten at once when it
moves here, or when another process says so on the event bus), the fitted pipeline taken from
an LRU cache of loaded models (loaded from its skops file on first use), the rows checked
against the model's input schema (``rows_to_frame``: a missing or mistyped column is a 422
naming it), and scored by ``predict_frame``, the same function batch scoring uses, in a worker
thread. The scored rows go to the prediction sink later, in batches (``PredictionLog``), so
that drift can be measured without slowing the answer.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import anyio.to_thread
import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.files.ports import BlobStore
from studio9.messaging.domain import Event
from studio9.ml.content import ModelContent
from studio9.ml.domain import LATEST
from studio9.ml.prediction_log import PredictionLog
from studio9.ml.service import MODEL_CHANGED, ModelService

log = structlog.get_logger()

#: Loaded models kept per process (each is its fitted pipeline in memory).
MAX_LOADED: Final = 16


@attrs.frozen(kw_only=True)
class LoadedModel:
    asset_id: str
    name: str
    version: int
    content: ModelContent
    pipeline: Any
    schema: tuple[Any, ...]


@attrs.frozen(kw_only=True)
class OnlineAnswer:
    name: str
    version: int
    predictions: list[dict[str, Any]]


@attrs.define
class OnlinePredictor:
    models: ModelService
    blobs: BlobStore
    log: PredictionLog
    #: Types beyond Studio9's own a model file may hold (``STUDIO9_MODEL_TRUSTED_TYPES``).
    allowed_types: frozenset[str] = frozenset()
    cache_seconds: float = 5.0
    clock: Callable[[], float] = time.monotonic
    _loaded: collections.OrderedDict[tuple[str, int], LoadedModel] = attrs.field(
        factory=collections.OrderedDict, init=False
    )
    _aliases: dict[tuple[str, str], tuple[int, float]] = attrs.field(factory=dict, init=False)
    _loading: dict[tuple[str, int], asyncio.Lock] = attrs.field(factory=dict, init=False)

    async def predict(
        self,
        actor: Principal,
        name: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        alias: str | None = None,
        version: int | None = None,
        logged: bool = True,
    ) -> OnlineAnswer:
        """Predictions for ``rows`` by the model version ``alias`` (or ``version``) points at;
        ``logged``: the rows go to the prediction sink through the log (a caller that stores
        them itself says False).

        Raises ModelNotFound, AliasNotFound, ModelVersionNotFound (404), InvalidInput (422)."""
        asset = await self.models.model(actor, name)  # the access check, every time
        number = version if version is not None else await self._alias(actor, asset.id, name, alias or LATEST)
        loaded = await self._load(actor, asset, number)
        answer = await anyio.to_thread.run_sync(_score, loaded, rows)
        if logged:
            self.log.add(asset.owner_id, loaded.asset_id, loaded.version, loaded.content, answer)
        return OnlineAnswer(name=asset.name, version=loaded.version, predictions=answer)

    def forget(self, asset_id: str) -> None:
        """Drop what is cached of a model (its aliases moved, a version was deleted)."""
        for alias in [k for k in self._aliases if k[0] == asset_id]:
            del self._aliases[alias]
        for loaded in [k for k in self._loaded if k[0] == asset_id]:
            del self._loaded[loaded]

    def on_event(self, event: Event) -> None:
        """Subscriber for ``model.changed`` from any process."""
        if event.topic == MODEL_CHANGED and isinstance(model := event.payload.get("model_id"), str):
            self.forget(model)

    def on_gap(self) -> None:
        self._aliases.clear()
        self._loaded.clear()

    async def _alias(self, actor: Principal, asset_id: str, name: str, alias: str) -> int:
        cached = self._aliases.get((asset_id, alias))
        if cached is not None and self.clock() - cached[1] < self.cache_seconds:
            return cached[0]
        ref = f"{asset_id}@{alias}"
        view = await self.models.resolve(actor, ref)
        self._aliases[(asset_id, alias)] = (view.version.version, self.clock())
        return view.version.version

    async def _load(self, actor: Principal, asset: Any, number: int) -> LoadedModel:
        key = (asset.id, number)
        if (loaded := self._loaded.get(key)) is not None:
            self._loaded.move_to_end(key)
            return loaded
        lock = self._loading.setdefault(key, asyncio.Lock())
        async with lock:  # one load per model version, however many requests wait for it
            if (loaded := self._loaded.get(key)) is not None:
                return loaded
            view = await self.models.version(actor, asset, number)
            data = await _read(self.blobs, view.content.artifact)
            loaded = await anyio.to_thread.run_sync(_loaded_model, view, data, self.allowed_types)
            self._loaded[key] = loaded
            while len(self._loaded) > MAX_LOADED:
                self._loaded.popitem(last=False)
            log.info("model_loaded", model_id=asset.id, version=number)
        self._loading.pop(key, None)
        return loaded


async def _read(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in await blobs.open(key)])


def _loaded_model(view: Any, data: bytes, allowed: frozenset[str]) -> LoadedModel:
    from studio9.ml.persistence import load_model
    from studio9.ml.schema import schema_from_json

    return LoadedModel(
        asset_id=view.asset.id,
        name=view.asset.name,
        version=view.version.version,
        content=view.content,
        pipeline=load_model(data, allowed=allowed),
        schema=schema_from_json(view.content.input_schema),
    )


def _score(model: LoadedModel, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    from studio9.ml.engine.training import predict_frame
    from studio9.ml.schema import rows_to_frame

    frame = rows_to_frame(model.schema, rows)
    task = model.content.task
    out = predict_frame(model.pipeline, task, model.content.classes, frame)  # type: ignore[arg-type]
    predictions = out["prediction"]
    if task == "regression":
        return [{"value": value} for value in predictions]
    classes = model.content.classes or ()
    columns = [out[f"probability_{c}"] for c in classes]
    return [
        {
            "label": label,
            "probabilities": {str(c): column[i] for c, column in zip(classes, columns, strict=True)},
        }
        for i, label in enumerate(predictions)
    ]
