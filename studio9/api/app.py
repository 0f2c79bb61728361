"""The Litestar application factory.

``create_app(settings)`` is the only way an app is made: by the CLI (``serve``, ``api``),
by the tests, and by anyone embedding Studio9's HTTP face. The container of services
is built in the app's lifespan, so each process (and each test) owns its own; the
lifespan also runs the background loops (supervisor sweeps, the search indexer) and,
for the edge ``serve``, the job worker threads.
"""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, Router
from litestar.di import Provide

from studio9 import __version__
from studio9.access.api import (
    GroupController,
    ProjectController,
    provide_group_service,
    provide_project_service,
)
from studio9.access.sharing.api import AssetShareController, ShareController, provide_share_service
from studio9.api.audit_hook import audit_writes
from studio9.api.docs import DocsPage
from studio9.api.json_request import Studio9Request
from studio9.api.middleware import request_context
from studio9.api.openapi import openapi_config
from studio9.api.openapi_facts import describe, structs_of
from studio9.api.problems import exception_handlers
from studio9.api.security import bearer_auth, is_public, provide_auth_service, provide_principal
from studio9.api.system import about, health, status
from studio9.audit.api import AuditController, provide_audit_service
from studio9.auth.api import AuthController, UserController
from studio9.bootstrap import Container, build, write_admin_token
from studio9.catalog.api import AssetController, provide_catalog_service
from studio9.config.api import ConfigSettingController
from studio9.config.settings import Settings
from studio9.files.api import FileController, provide_file_service
from studio9.jobs.api import JobController, list_job_types
from studio9.jobs.ports import JobType
from studio9.messaging.streams.api import StreamController
from studio9.metadata.api import LibraryController, provide_library
from studio9.ml.api import (
    ModelController,
    provide_model_importer,
    provide_model_service,
    provide_online_predictor,
)
from studio9.predictions.api import PredictionController, provide_prediction_service
from studio9.processes import running
from studio9.tables.api import TableController, provide_table_service
from studio9.tables.queries.api import SqlController, provide_sql_service
from studio9.tracking.api import (
    ExperimentController,
    RunController,
    provide_artifact_service,
    provide_experiment_service,
    provide_tracking_service,
)
from studio9.tracking.mlflow_face.registry_routes import provide_registry_face
from studio9.tracking.mlflow_face.routes import mlflow_routes

log = structlog.get_logger()

API_PREFIX = "/api/v1"


def create_app(
    settings: Settings, *, run_workers: bool = False, first_admin: bool = True, background: bool = True
) -> Litestar:
    """Build the HTTP application.

    Args:
        settings: where every backend lives.
        run_workers: also run job worker threads in this process (edge ``serve``).
        first_admin: on an empty user table, create ``admin`` and write its token to
            ``<data dir>/admin-token``.
        background: run the supervisor and the indexer loops in this process.
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with build(settings) as container:
            app.state.container = container
            if first_admin and (token := await container.auth.ensure_first_admin()):
                path = write_admin_token(settings.data_dir, token.secret)
                log.warning(
                    "admin_token_written",
                    path=str(path),
                    token_id=token.id,
                    hint="read it once, then keep it somewhere safe",
                )
            async with running(container, workers=run_workers, loops=background):
                yield

    api_v1 = Router(
        path=API_PREFIX,
        route_handlers=[
            AuthController,
            UserController,
            JobController,
            list_job_types,
            FileController,
            AssetController,
            ConfigSettingController,
            StreamController,
            PredictionController,
            TableController,
            SqlController,
            AuditController,
            GroupController,
            ProjectController,
            AssetShareController,
            ShareController,
            LibraryController,
            ModelController,
            ExperimentController,
            RunController,
        ],
    )
    app = Litestar(
        route_handlers=[health, about, status, api_v1, *mlflow_routes()],
        lifespan=[lifespan],
        # audit_writes inside bearer_auth: it records who wrote, so it needs the caller.
        middleware=[request_context, bearer_auth, audit_writes],
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "auth_service": Provide(provide_auth_service, sync_to_thread=False),
            "file_service": Provide(provide_file_service, sync_to_thread=False),
            "catalog_service": Provide(provide_catalog_service, sync_to_thread=False),
            "audit_service": Provide(provide_audit_service, sync_to_thread=False),
            "job_service": Provide(_jobs, sync_to_thread=False),
            "job_search": Provide(_job_search, sync_to_thread=False),
            "blob_store": Provide(_blobs, sync_to_thread=False),
            "config_service": Provide(_config, sync_to_thread=False),
            "stream_service": Provide(_streams, sync_to_thread=False),
            "presigner": Provide(_presigner, sync_to_thread=False),
            "prediction_service": Provide(provide_prediction_service, sync_to_thread=False),
            "table_service": Provide(provide_table_service, sync_to_thread=False),
            "sql_service": Provide(provide_sql_service, sync_to_thread=False),
            "group_service": Provide(provide_group_service, sync_to_thread=False),
            "project_service": Provide(provide_project_service, sync_to_thread=False),
            "share_service": Provide(provide_share_service, sync_to_thread=False),
            "library": Provide(provide_library, sync_to_thread=False),
            "model_service": Provide(provide_model_service, sync_to_thread=False),
            "online_predictor": Provide(provide_online_predictor, sync_to_thread=False),
            "model_importer": Provide(provide_model_importer, sync_to_thread=False),
            "experiment_service": Provide(provide_experiment_service, sync_to_thread=False),
            "tracking_service": Provide(provide_tracking_service, sync_to_thread=False),
            "artifact_service": Provide(provide_artifact_service, sync_to_thread=False),
            "registry_face": Provide(provide_registry_face, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(),
        openapi_config=openapi_config(
            version=__version__,
            public=is_public,
            # Made on the first request for the document, when the app and its job types exist.
            facts=lambda document: describe(
                document, structs=structs_of(app.routes), job_types=_job_types(app)
            ),
            render=DocsPage(),
        ),
        request_max_body_size=settings.max_body_bytes,
        request_class=Studio9Request,
        logging_config=None,
        debug=False,
    )
    return app


def _job_types(app: Litestar) -> Iterable[JobType] | None:
    """The registered job types, or None before the app started (no container yet)."""
    container: Container | None = getattr(app.state, "container", None)
    return container.jobs.registry if container is not None else None


def _container(request: Request[Any, Any, Any]) -> Container:
    container: Container = request.app.state.container
    return container


def _jobs(request: Request[Any, Any, Any]) -> Any:
    return _container(request).jobs


def _job_search(request: Request[Any, Any, Any]) -> Any:
    return _container(request).job_search


def _config(request: Request[Any, Any, Any]) -> Any:
    return _container(request).config


def _streams(request: Request[Any, Any, Any]) -> Any:
    return _container(request).streams


def _presigner(request: Request[Any, Any, Any]) -> Any:
    """The blob store when downloads should redirect to it (it presigns and redirects are on), else None."""
    container = _container(request)
    blobs = container.files.blobs
    return blobs if container.settings.blob_redirects and hasattr(blobs, "presigned_url") else None


def _blobs(request: Request[Any, Any, Any]) -> Any:
    return _container(request).files.blobs
