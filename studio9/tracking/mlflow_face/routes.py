"""Every route handler of the MLflow face, for the app factory to mount (outside ``/api/v1``)."""

from __future__ import annotations

from typing import Any

from studio9.tracking.mlflow_face import (
    artifact_routes,
    experiment_routes,
    logged_model_routes,
    registry_routes,
    run_routes,
)


def mlflow_routes() -> list[Any]:
    return [
        *experiment_routes.ROUTES,
        *run_routes.ROUTES,
        *logged_model_routes.ROUTES,
        *registry_routes.ROUTES,
        *artifact_routes.ROUTES,
    ]
