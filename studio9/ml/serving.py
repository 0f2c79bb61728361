"""Online prediction: rows in, predictions out, in row order, in milliseconds.

Per request:
- the model is found as the caller may read it (the catalog's access policy), remembered per
  caller for ``cache_seconds`` as a verified token is;
- the alias is resolved (cached per process for ``cache_seconds``, forgotten at once when it
  moves here, or when another process says so on the event bus);
- the fitted pipeline comes from an LRU cache of loaded models (loaded from its skops file on
  first use, its compiled scorer made then: ``engine.fast``);
- the rows are checked against the model's input schema (``rows_to_frame``: a missing or
  mistyped column is a 422 naming it);
- they are scored by ``predict_frame``, the function batch scoring uses too: with the compiled
  scorer where it applies (the same answer without scikit-learn's per-call checks; on the event
  loop for a few rows), else with the pipeline in a worker thread.

The scored rows go to the prediction sink later, in batches (``PredictionLog``), so that drift
can be measured without slowing the answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import anyio.to_thread
import attrs
import structlog

from studio9.auth.domain import Principal
from studio9.errors import Conflict
from studio9.files.ports import BlobStore
from studio9.messaging.domain import Event
from studio9.ml.content import ModelContent
from studio9.ml.domain import LATEST
from studio9.ml.prediction_log import PredictionLog
from studio9.ml.service import MODEL_CHANGED, ModelService, ModelVersionView

log = structlog.get_logger()

#: Loaded models kept per process (each is its fitted pipeline in memory).
MAX_LOADED: Final = 16
#: Requests of at most this many rows use the compiled scorer…
FAST_ROWS: Final = 1_000
#: …and up to this many are scored on the event loop (about a millisecond).
INLINE_ROWS: Final = 10
#: Access checks remembered per process (the cache is emptied when full).
MAX_CACHED_ACCESS: Final = 10_000


class ModelNotServable(Conflict):
    """The version's file is not a skops model (an MLflow model logged with pickle, or of another
    flavor): Studio9 registered it without loading it, and never unpickles it."""


#: The formats MLflow's sklearn flavor pickles with.
PICKLE_FORMATS: Final = frozenset({"pickle", "cloudpickle"})


def require_servable(view: ModelVersionView) -> None:
    """Raise ModelNotServable (409) unless the version is a skops file Studio9 can load."""
    found = view.content.format
    if found == "skops":
        return
    what = f"version {view.version.version} of model {view.asset.name!r}"
    if found in PICKLE_FORMATS:
        message = (
            f"{what} was logged with {found}; Studio9 serves skops models only; log it with "
            "mlflow>=3.17 or serialization_format='skops'"
        )
    else:
        message = (
            f"{what} is an MLflow model in format {found!r}; Studio9 serves scikit-learn models "
            "saved with skops only"
        )
    raise ModelNotServable(message, model=view.asset.name, version=view.version.version, format=found)


@attrs.frozen(kw_only=True)
class LoadedModel:
    asset_id: str
    name: str
    version: int
    content: ModelContent
    pipeline: Any
    schema: tuple[Any, ...]
    #: The compiled scorer for small requests (``engine.fast``), None where it does not apply.
    fast: Any = None


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
    #: (caller, name) -> the model asset the access check found, for ``cache_seconds``.
    _assets: dict[tuple[str, str], tuple[Any, float]] = attrs.field(factory=dict, init=False)
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
        asset = await self._model(actor, name)
        number = version if version is not None else await self._alias(actor, asset.id, name, alias or LATEST)
        loaded = await self._load(actor, asset, number)
        if loaded.fast is not None and len(rows) <= INLINE_ROWS:
            answer = _score(loaded, rows)  # well under a millisecond of work: no thread hop
        else:
            answer = await anyio.to_thread.run_sync(_score, loaded, rows)
        if logged:
            self.log.add(asset.owner_id, loaded.asset_id, loaded.version, loaded.content, answer)
        return OnlineAnswer(name=asset.name, version=loaded.version, predictions=answer)

    async def _model(self, actor: Principal, name: str) -> Any:
        """The model ``name`` means to ``actor``: the access check, remembered for
        ``cache_seconds`` (as a verified token is), so a revoked share stops a caller's
        predictions within that time; a deleted model at once."""
        key = (actor.user_id, name)
        cached = self._assets.get(key)
        if cached is not None and self.clock() - cached[1] < self.cache_seconds:
            return cached[0]
        asset = await self.models.model(actor, name)
        if len(self._assets) >= MAX_CACHED_ACCESS:
            self._assets.clear()
        self._assets[key] = (asset, self.clock())
        return asset

    def forget(self, asset_id: str) -> None:
        """Drop what is cached of a model (its aliases moved, a version was deleted)."""
        for seen in [k for k, (asset, _) in self._assets.items() if asset.id == asset_id]:
            del self._assets[seen]
        for alias in [k for k in self._aliases if k[0] == asset_id]:
            del self._aliases[alias]
        for loaded in [k for k in self._loaded if k[0] == asset_id]:
            del self._loaded[loaded]

    def on_event(self, event: Event) -> None:
        """Subscriber for ``model.changed`` from any process."""
        if event.topic == MODEL_CHANGED and isinstance(model := event.payload.get("model_id"), str):
            self.forget(model)

    def on_gap(self) -> None:
        self._assets.clear()
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
            require_servable(view)
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
    from studio9.ml.engine.fast import compile_scorer, probe_rows
    from studio9.ml.persistence import load_model
    from studio9.ml.schema import rows_to_frame, schema_from_json

    pipeline = load_model(data, allowed=allowed)
    schema = schema_from_json(view.content.input_schema)
    fast = None
    with contextlib.suppress(Exception):  # no compiled scorer: the pipeline serves every request
        probes = probe_rows(pipeline, {c.name: (c.type, c.nullable) for c in schema})
        fast = compile_scorer(pipeline, rows_to_frame(schema, probes))
    return LoadedModel(
        asset_id=view.asset.id,
        name=view.asset.name,
        version=view.version.version,
        content=view.content,
        pipeline=pipeline,
        schema=schema,
        fast=fast,
    )


_CONTROLLER: list[Any] = []


def _one_thread() -> Any:
    """Limit OpenMP to one thread in the calling thread, for the ``with`` block (12 µs with a
    controller made once; made the first time, after scikit-learn loaded its OpenMP runtime)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="openmp")


def _score(model: LoadedModel, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    from studio9.ml.engine.training import predict_frame
    from studio9.ml.schema import rows_to_columns, rows_to_frame

    task = model.content.task
    # Few rows: the compiled scorer (the same answer, without scikit-learn's per-call checks),
    # on the columns as arrays; many: the pipeline on a frame, whose checks cost little per row.
    frame: Any
    if model.fast is not None and len(rows) <= FAST_ROWS:
        scorer, frame = model.fast, rows_to_columns(model.schema, rows)
    else:
        scorer, frame = model.pipeline, rows_to_frame(model.schema, rows)
    if len(rows) <= INLINE_ROWS:
        # One OpenMP thread: waking a team of threads for a few rows costs more than the rows,
        # and they would fight the server's own threads for the cores. This thread only.
        with _one_thread():
            out = predict_frame(scorer, task, model.content.classes, frame)  # type: ignore[arg-type]
    else:
        out = predict_frame(scorer, task, model.content.classes, frame)  # type: ignore[arg-type]
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
