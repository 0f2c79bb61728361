"""The ML context's part of the composition root: the model registry, online prediction, the jobs.

A registered model is a catalog asset of kind ``model``: its kind handler removes its skops
files (``models/<id>/``) and its registry rows when the catalog deletes it. Alias moves and
version deletes reach this process's online predictor at once and other processes through the
event bus (``model.changed``).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from studio9.auth.ports import UserStore
from studio9.catalog.domain import Asset, AssetKind, AssetVersion
from studio9.catalog.service import CatalogService
from studio9.config import Settings
from studio9.database import Database
from studio9.files.ports import BlobStore
from studio9.jobs.registry import JobTypeRegistry
from studio9.messaging.ports import EventPublisher, EventSubscriber
from studio9.ml.content import model_prefix
from studio9.ml.imports import ModelImporter
from studio9.ml.jobs import ScoreDeps, evaluate_job_type, predict_job_type
from studio9.ml.ports import ModelRegistryStore
from studio9.ml.prediction_log import PredictionLog
from studio9.ml.score_job import ScoreJobDeps, score_job_type
from studio9.ml.service import MODEL_CHANGED, ModelService
from studio9.ml.serving import OnlinePredictor
from studio9.ml.train_job import TrainDeps, train_job_type
from studio9.predictions.service import PredictionService
from studio9.tables.ports import TableFiles
from studio9.tracking.service import TrackingService


@attrs.frozen
class MlParts:
    models: ModelService
    predictor: OnlinePredictor
    importer: ModelImporter
    prediction_log: PredictionLog


@attrs.frozen
class ModelFiles:
    """The ``model`` kind's handler: a deleted model takes its files and registry rows along."""

    blobs: BlobStore
    registry: ModelRegistryStore

    async def deleted(self, asset: Asset, versions: Sequence[AssetVersion]) -> None:
        await self.blobs.delete_prefix(model_prefix(asset.id))
        await self.registry.forget_model(asset.id)


def build_ml(
    settings: Settings,
    *,
    database: Database,
    catalog: CatalogService,
    users: UserStore,
    blobs: BlobStore,
    events: EventPublisher,
    tables: TableFiles,
    predictions: PredictionService,
    registry: JobTypeRegistry,
    tracking: TrackingService,
) -> MlParts:
    """The ML context over the shared backends, its job types registered in ``registry``;
    ``ml.train`` logs its runs through ``tracking``."""
    trusted = settings.trusted_model_types
    prediction_log = PredictionLog(predictions)
    models = ModelService(catalog, database.model_registry, users, events=events)
    predictor = OnlinePredictor(
        models, blobs, prediction_log, allowed_types=trusted, cache_seconds=settings.auth_cache_seconds
    )
    # Alias moves here drop the cached answer at once; elsewhere, on their event.
    models.on_change = predictor.forget
    if isinstance(events, EventSubscriber):
        events.subscribe(predictor.on_event, prefix=MODEL_CHANGED, on_gap=predictor.on_gap)
    catalog.register(AssetKind.MODEL, ModelFiles(blobs, database.model_registry))
    registry.register(
        train_job_type(TrainDeps(catalog, database.model_registry, tables, users, blobs, tracking))
    )
    score = ScoreDeps(
        models=models, tables=tables, users=users, blobs=blobs, recorder=predictions, allowed_types=trusted
    )
    registry.register(predict_job_type(score))
    registry.register(evaluate_job_type(score))
    registry.register(score_job_type(ScoreJobDeps(predictor, users, predictions)))
    return MlParts(
        models=models,
        predictor=predictor,
        importer=ModelImporter(models, blobs, allowed_types=trusted),
        prediction_log=prediction_log,
    )
