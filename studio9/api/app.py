"""The Litestar application factory.

``create_app(settings)`` is the only way an app is made: by the CLI (``serve``, ``api``),
by the tests, and by anyone embedding Studio9's HTTP face. The container of services
is built in the app's lifespan, so each process (and each test) owns its own.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
import structlog
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from studio9 import __version__
from studio9.api.middleware import request_context
from studio9.api.problems import exception_handlers
from studio9.api.security import BearerTokenMiddleware, provide_auth_service, provide_principal
from studio9.api.system import about, health, status
from studio9.auth.api import AuthController, UserController
from studio9.bootstrap import build, write_admin_token
from studio9.config.settings import Settings
from studio9.messaging import WorkerThreads

log = structlog.get_logger()

API_PREFIX = "/api/v1"


def create_app(settings: Settings, *, run_workers: bool = False, first_admin: bool = True) -> Litestar:
    """Build the HTTP application.

    Args:
        settings: where every backend lives.
        run_workers: also run job worker threads in this process (edge ``serve``).
        first_admin: on an empty user table, create ``admin`` and write its token to
            ``<data dir>/admin-token``.
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
            workers = WorkerThreads(container.broker.dramatiq_broker, settings.worker_threads)
            if run_workers:
                await anyio.to_thread.run_sync(workers.start)
            try:
                yield
            finally:
                if run_workers:
                    await anyio.to_thread.run_sync(workers.stop, settings.shutdown_timeout)

    api_v1 = Router(path=API_PREFIX, route_handlers=[AuthController, UserController])
    return Litestar(
        route_handlers=[health, about, status, api_v1],
        lifespan=[lifespan],
        middleware=[request_context, BearerTokenMiddleware],
        dependencies={
            "principal": Provide(provide_principal, sync_to_thread=False),
            "auth_service": Provide(provide_auth_service, sync_to_thread=False),
        },
        exception_handlers=exception_handlers(),
        openapi_config=OpenAPIConfig(
            title="Studio9",
            version=__version__,
            path="/schema",
            security=[{"BearerToken": []}],
            components=Components(
                security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
        debug=False,
    )
