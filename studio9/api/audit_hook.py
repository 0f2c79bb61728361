"""Every write over HTTP leaves one audit event: the one place where the API records them.

A plain ASGI middleware (as ``request_context``), inside ``bearer_auth`` so that the caller is
known: a POST, PUT, PATCH or DELETE answered with a 2xx by an authenticated caller, or a login
(``POST /api/v1/auth/tokens``, whose actor is the user the password authenticated), appends an
event (``studio9.audit``) before the last byte of the answer leaves, so a client that has its
answer finds its event. The event holds the route's template, its path parameters, the status
and the request id; the object is the ``asset_id`` path parameter, else the first ``id``/``*_id``
one or, for a create, the ``id`` of the created object in the JSON answer (or of its first
member that has one:
``{"user": {"id"…}, "token": …}``). Request bodies, query strings and every other part of an
answer are never read into it: no secret reaches the log.

If the log cannot be written, the write has happened all the same: the error is logged (no
secret in it) and the answer goes out unchanged (docs/decisions.md).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, Scope, Send

from studio9.audit import AuditService, http_action, http_detail, object_of
from studio9.audit.domain import WRITE_METHODS
from studio9.auth import Principal
from studio9.urls import redact
from studio9.web.audit import AUDIT_OBJECT

log = structlog.get_logger("studio9.audit")

#: The login: no token yet; the one it issues is in its answer.
LOGIN_TEMPLATE: Final = "/api/v1/auth/tokens"
#: Most bytes of an answer read for a created object's id (creates answer small documents).
MAX_BODY_READ: Final = 64 * 1024


def audit_writes(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["method"] not in WRITE_METHODS or _read_only(scope):
            await app(scope, receive, send)
            return
        await app(scope, receive, _Recorder(scope, send).send)

    return middleware


def _read_only(scope: Scope) -> bool:
    """A POST that only reads (a SQL preview) says so with ``opt={"read_only": True}``; a write
    that only adds data points to what an audited write made (an MLflow run's metrics, params,
    tags and artifacts) with ``opt={"audit": False}``: the run's create and delete are audited."""
    handler = scope.get("route_handler")
    return bool(handler is not None and (handler.opt.get("read_only") or handler.opt.get("audit") is False))


class _Recorder:
    """Watches one answer: its status, and its JSON body when the object is in it."""

    def __init__(self, scope: HTTPScope, send: Send) -> None:
        self._scope = scope
        self._send = send
        self._template: str = scope.get("path_template") or scope["path"]
        self._path_params: dict[str, Any] = dict(scope.get("path_params") or {})
        user = scope.get("user")
        self._principal = user if isinstance(user, Principal) else None
        self._object_id = object_of(self._path_params)
        self._status = 0
        self._recording = False
        self._body: bytearray | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self._start(message)
        elif message["type"] == "http.response.body" and self._recording:
            self._read(message.get("body", b""))
            if not message.get("more_body", False):
                self._recording = False
                await self._record()
        await self._send(message)

    def _start(self, message: HTTPResponseStartEvent) -> None:
        self._status = message["status"]
        is_login = self._scope["method"] == "POST" and self._template == LOGIN_TEMPLATE
        self._recording = 200 <= self._status < 300 and (self._principal is not None or is_login)
        if self._recording and (self._object_id is None or self._principal is None):
            headers: Any = message.get("headers", ())
            is_json = any(
                name.lower() == b"content-type" and b"json" in value.lower() for name, value in headers
            )
            self._body = bytearray() if is_json else None

    def _read(self, chunk: bytes) -> None:
        if self._body is None:
            return
        if len(self._body) + len(chunk) > MAX_BODY_READ:
            self._body = None  # too long for a create's answer: no object id from it
            return
        self._body += chunk

    async def _record(self) -> None:
        container = self._scope["app"].state.container
        audit: AuditService = container.audit
        created = _created_id(self._body)
        named = (self._scope.get("state") or {}).get(AUDIT_OBJECT)
        object_id = named if isinstance(named, str) else self._object_id or created
        event: dict[str, Any] = {"action": http_action(self._scope["method"], self._template)}
        try:
            if self._principal is not None:
                actor_id: str | None = self._principal.user_id
                token_id: str | None = self._principal.token_id
            else:  # the login: the token it issued, and that token's user
                token_id = created
                actor_id = None if created is None else await audit.token_user(created)
            client = self._scope.get("client")
            event.update(actor_id=actor_id, token_id=token_id, object_id=object_id)
            await audit.record(
                **event,
                address=client[0] if client else None,
                detail=http_detail(
                    self._path_params, self._status, self._scope.get("state", {}).get("request_id")
                ),
            )
        except Exception as exc:  # the write happened: its answer must still go out
            log.error(
                "audit_append_failed",
                **event,
                error=f"{type(exc).__name__}: {redact(str(exc))[:300]}",
            )


def _created_id(body: bytearray | None) -> str | None:
    """The ``id`` of a JSON answer, or of its first member that is an object with one."""
    if not body:
        return None
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None
    if not isinstance(document, dict):
        return None
    for candidate in (document, *document.values()):
        if isinstance(candidate, dict) and isinstance(candidate.get("id"), str):
            found: str = candidate["id"]
            return found
    return None
