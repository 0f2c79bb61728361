"""A request that fails with 500 leaves no secret in the log: not its token, cookie, password or body.

The whole app is built (auth middleware, request context, problem handlers) and one route
that fails on purpose is registered on it for the test only; the log is captured in both
formats the product writes.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.params import JSONBody
from litestar.testing import AsyncTestClient

from studio9.logs import configure_logging

PASSWORD = "correct-horse-battery-staple"
COOKIE = "session-cookie-value-4d2f"


@post("/api/v1/test-only/fails", status_code=200)
async def fails(data: JSONBody[dict[str, Any]], request: Request[Any, Any, Any]) -> None:
    """Fails the way a bug would, with the caller's credentials in its locals and its message."""
    authorization = request.headers["authorization"]
    raise RuntimeError(f"upstream refused {authorization} for {data['username']}")


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_a_failed_request_logs_no_token_password_cookie_or_body(
    client: AsyncTestClient[Litestar], admin_token: str, fmt: str
) -> None:
    client.app.register(fails)
    stream = io.StringIO()
    configure_logging("info", fmt, stream, cache=False)
    body = {"username": "admin", "password": PASSWORD}
    response = await client.post(
        "/api/v1/test-only/fails",
        json=body,
        headers={"Authorization": f"Bearer {admin_token}", "Cookie": f"session={COOKIE}"},
    )
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    text = stream.getvalue()
    # The failure is logged, with its traceback (the frames that held the secrets)...
    assert "request_failed" in text and "RuntimeError" in text and "upstream refused" in text
    assert "test_http_secrets.py" in text
    # ...and nothing the caller sent.
    assert admin_token not in text
    assert admin_token.removeprefix("s9_")[:12] not in text
    assert PASSWORD not in text
    assert COOKIE not in text
    assert '"password"' not in text and "'password': 'correct" not in text
