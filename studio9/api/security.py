"""Bearer-token authentication for every route but the public ones.

A plain ASGI middleware (it runs on every request, so it stays lean): it reads the
``Authorization`` header, asks ``AuthService.authenticate`` (which caches verified
tokens for ``STUDIO9_AUTH_CACHE_SECONDS``) and puts the ``Principal`` in
``scope["user"]``; handlers receive it through the ``principal`` dependency.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from studio9.auth import AuthService, Principal
from studio9.errors import Unauthenticated

#: Reachable without a token: liveness and identity of the service.
PUBLIC_PATHS = frozenset({"/health", "/about"})
#: The login checks a username and password instead of a token.
LOGIN = ("POST", "/api/v1/auth/tokens")
#: The API docs page, its script and the OpenAPI document (docs/decisions.md: nothing secret).
DOCS = "/schema"


def bearer_auth(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and _needs_token(scope["method"], scope["path"]):
            auth: AuthService = scope["app"].state.container.auth
            scope["user"] = await auth.authenticate(_bearer(scope))
        await app(scope, receive, send)

    return middleware


def _needs_token(method: str, path: str) -> bool:
    return not is_public(method, path)


def is_public(method: str, path: str) -> bool:
    """Whether a request needs no token (the OpenAPI document marks these routes alike)."""
    return path in PUBLIC_PATHS or (method, path) == LOGIN or path == DOCS or path.startswith(DOCS + "/")


def _bearer(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, secret = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and secret.strip():
                return secret.strip()
            break
    raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The caller of an authenticated route."""
    user = request.scope.get("user")
    if not isinstance(user, Principal):
        raise Unauthenticated("this route needs a bearer token")
    return user


def provide_auth_service(request: Request[Any, Any, Any]) -> AuthService:
    service: AuthService = request.app.state.container.auth
    return service
