"""Per-request context: a request id on every log line and response, and one summary line.

A plain ASGI wrapper (no Litestar base class) because it runs on every request and
must stay cheap. The id comes from a well-formed ``X-Request-ID`` header, or is new.
"""

from __future__ import annotations

import re
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from studio9.api.problems import status_for
from studio9.ids import new_id
from studio9.logs import request_id_var

log = structlog.get_logger("studio9.http")

_ACCEPTABLE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,64}")
_QUIET_PATHS = frozenset({"/health"})


def request_context(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await app(scope, receive, send_with_id)
        except Exception as exc:
            # The app-level exception handler answers after we unwind; log what it will send.
            status = status_for(exc)
            raise
        finally:
            path = scope["path"]
            if path not in _QUIET_PATHS or status >= 400:
                log.info(
                    "request_finished",
                    method=scope["method"],
                    path=path,
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            request_id_var.reset(token)

    return middleware


def _incoming_id(scope: Scope) -> str | None:
    headers: Any = scope.get("headers", ())
    for name, value in headers:
        if name == b"x-request-id":
            return value.decode() if _ACCEPTABLE_ID.fullmatch(value) else None
    return None
