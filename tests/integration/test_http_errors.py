"""Problem details (RFC 9457) for every error class, from the one mapping in studio9.api.problems."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from studio9.api.middleware import request_context
from studio9.api.problems import STATUS_OF, exception_handlers
from studio9.errors import BackendUnavailable, RateLimited, Studio9Error


def _raise(kind: type[Studio9Error]) -> Studio9Error:
    if kind is RateLimited:
        return RateLimited("slow down", retry_after=7)
    return kind("it went wrong", field="name")


def _app_raising(exc: BaseException) -> Litestar:
    @get("/boom")
    async def boom() -> None:
        raise exc

    return Litestar(
        [boom], exception_handlers=exception_handlers(), middleware=[request_context], logging_config=None
    )


@pytest.mark.parametrize(("kind", "status"), list(STATUS_OF.items()), ids=lambda v: getattr(v, "__name__", v))
async def test_each_error_class_becomes_its_problem(kind: type[Studio9Error], status: int) -> None:
    async with AsyncTestClient(_app_raising(_raise(kind))) as client:
        response = await client.get("/boom", headers={"X-Request-ID": "req-123"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("urn:studio9:problem:")
    assert body["instance"] == "/boom"
    assert body["request_id"] == "req-123"
    if kind is RateLimited:
        assert response.headers["retry-after"] == "7"
    else:
        assert body["detail"] == "it went wrong"
        assert body["errors"] == [{"field": "name", "message": "it went wrong"}]


async def test_unexpected_errors_are_500_without_internals() -> None:
    async with AsyncTestClient(
        _app_raising(RuntimeError("secret internals at postgres://u:pw@h/db"))
    ) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert "internals" not in response.text and "pw" not in response.text


async def test_malformed_json_is_400(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/api/v1/auth/tokens", content=b'{"username": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_missing_body_is_400_saying_so(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    for path in ("/api/v1/auth/tokens", "/api/v1/jobs", "/api/v1/streams", "/api/v1/users"):
        response = await client.post(path, headers={**admin_headers, "Content-Type": "application/json"})
        assert response.status_code == 400, (path, response.text)
        assert response.json()["detail"] == "request body is missing: send a JSON document"


async def test_a_cursor_no_page_handed_out_is_422_on_every_list(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    stream = await client.post("/api/v1/streams", headers=admin_headers, json={"job_type": "system.noop"})
    lists = [
        "/api/v1/jobs",
        "/api/v1/jobs?q=anything",
        "/api/v1/users",
        "/api/v1/files",
        "/api/v1/streams",
        f"/api/v1/streams/{stream.json()['id']}/jobs",
        "/api/v1/services/jobs/config-settings",
        "/api/v1/predictions",
    ]
    for path in lists:
        response = await client.get(path, headers=admin_headers, params={"cursor": "garbage!"})
        assert response.status_code == 422, (path, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["cursor"], path


async def test_oversized_body_is_413(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(
        "/api/v1/auth/tokens", content=b"x" * 1_100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["status"] == 413


async def test_unknown_route_is_404_and_wrong_method_405(client: AsyncTestClient[Litestar]) -> None:
    missing = await client.get("/no/such/route")
    assert (missing.status_code, missing.json()["status"]) == (404, 404)
    wrong = await client.delete("/about")
    assert (wrong.status_code, wrong.json()["status"]) == (405, 405)


async def test_request_id_is_echoed_or_made(client: AsyncTestClient[Litestar]) -> None:
    given = await client.get("/about", headers={"X-Request-ID": "abc-1"})
    assert given.headers["x-request-id"] == "abc-1"
    made = await client.get("/about", headers={"X-Request-ID": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 26


@attrs.define
class DownBackend:
    async def ping(self) -> None:
        raise BackendUnavailable("refused at db.internal:5432")

    async def aclose(self) -> None:
        return None


async def test_health_is_503_when_a_backend_is_down_and_status_says_why(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    container: Any = client.app.state.container
    client.app.state.container = attrs.evolve(
        container, backends={**container.backends, "broker": DownBackend()}
    )
    health = await client.get("/health")
    assert health.status_code == 503
    assert health.json()["backends"]["broker"] == {
        "status": "down",
        "latency_ms": health.json()["backends"]["broker"]["latency_ms"],
    }
    assert "db.internal" not in health.text  # the public route does not say where things live
    status = (await client.get("/status", headers=admin_headers)).json()
    assert status["backends"]["broker"]["status"] == "down"
    assert "refused" in status["backends"]["broker"]["error"]
    assert status["uptime_seconds"] >= 0
