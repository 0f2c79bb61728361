"""Litestar dependency providers of the tracking context (the native and the MLflow routes)."""

from __future__ import annotations

from typing import Any

from litestar import Request

from studio9.tracking.artifacts import ArtifactService
from studio9.tracking.experiments import ExperimentService
from studio9.tracking.service import TrackingService


def provide_experiment_service(request: Request[Any, Any, Any]) -> ExperimentService:
    service: ExperimentService = request.app.state.container.experiments
    return service


def provide_tracking_service(request: Request[Any, Any, Any]) -> TrackingService:
    service: TrackingService = request.app.state.container.tracking
    return service


def provide_artifact_service(request: Request[Any, Any, Any]) -> ArtifactService:
    service: ArtifactService = request.app.state.container.artifacts
    return service
