"""Bearer-token authentication for every route but the public ones.

The middleware puts the ``Principal`` in ``scope["user"]``; handlers receive it through
the ``principal`` dependency. Token checks go through ``AuthService.authenticate``,
which caches verified tokens briefly (``STUDIO9_AUTH_CACHE_SECONDS``).
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp

from studio9.auth import AuthService, Principal
from studio9.errors import Unauthenticated

# Reachable without a token: liveness, identity of the service, and the login itself
# (it checks a username and password instead).
PUBLIC_PATHS = ("^/health$", "^/about$")
LOGIN_PATH = "/api/v1/auth/tokens"


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app, exclude=list(PUBLIC_PATHS))

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        if connection.scope["path"] == LOGIN_PATH and connection.scope.get("method") == "POST":
            return AuthenticationResult(user=None, auth=None)
        header = connection.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
        auth: AuthService = connection.app.state.container.auth
        principal = await auth.authenticate(secret.strip())
        return AuthenticationResult(user=principal, auth=principal.token_id)


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller of an authenticated route."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("this route needs a bearer token")
    return user


def provide_auth_service(request: Request[Any, Any, Any]) -> AuthService:
    service: AuthService = request.app.state.container.auth
    return service
