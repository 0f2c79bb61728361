"""The tracking context's part of the composition root: experiments, runs, logged models, artifacts.

An experiment is a catalog asset of kind ``experiment``: its kind handler removes its artifacts
(``experiments/<id>/`` in the blob store) and its tracking rows when the catalog deletes it.
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
from studio9.tracking.artifacts import ArtifactService, experiment_prefix
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.ports import TrackingStore
from studio9.tracking.service import TrackingService


@attrs.frozen
class TrackingParts:
    experiments: ExperimentService
    tracking: TrackingService
    artifacts: ArtifactService


@attrs.frozen
class ExperimentFiles:
    """The ``experiment`` kind's handler: a deleted experiment takes its artifacts and runs along."""

    blobs: BlobStore
    store: TrackingStore

    async def deleted(self, asset: Asset, versions: Sequence[AssetVersion]) -> None:
        await self.blobs.delete_prefix(experiment_prefix(asset.id))
        await self.store.forget_experiment(asset.id)


def build_tracking(
    settings: Settings, *, database: Database, catalog: CatalogService, users: UserStore, blobs: BlobStore
) -> TrackingParts:
    store = database.tracking
    experiments = ExperimentService(catalog, store, users, cache_seconds=settings.auth_cache_seconds)
    tracking = TrackingService(experiments, store)
    catalog.register(AssetKind.EXPERIMENT, ExperimentFiles(blobs, store))
    return TrackingParts(
        experiments=experiments, tracking=tracking, artifacts=ArtifactService(tracking, blobs)
    )
