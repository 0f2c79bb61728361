"""A JSON body nested past MAX_JSON_DEPTH is a 400 problem on every route that takes one, never a 500.

The routes are read from the app's own route table, so a route added later is covered
without touching this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.json_depth import MAX_JSON_DEPTH
from tests.conftest import memory_settings

Client = AsyncTestClient[Litestar]
LOGIN = ("POST", "/api/v1/auth/tokens")
JSON = {"Content-Type": "application/json"}
_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def _json_routes() -> list[tuple[str, str]]:
    """(method, path template) of every handler that takes a JSON body."""
    app = create_app(memory_settings(Path("never-created")))  # its lifespan never runs
    found = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            data = handler.parsed_fn_signature.parameters.get("data")
            media_type = getattr(data and data.kwarg_definition, "media_type", "application/json")
            if data is not None and str(getattr(media_type, "value", media_type)).endswith("json"):
                found.update((method, route.path_format) for method in handler.http_methods)
    return sorted(found)


ROUTES = _json_routes()


def _nested(levels: int) -> str:
    """A document ``levels`` deep, shaped as bodies carry params, items and setting values."""
    return '{"value": ' + "[" * (levels - 1) + "]" * (levels - 1) + "}"


@pytest.fixture
async def paths(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    """Values for path parameters: a real stream, else a made-up name."""
    stream = await client.post(
        "/api/v1/streams", headers=admin_headers, json={"job_type": "system.noop", "max_wait": 3600}
    )
    assert stream.status_code == 201, stream.text
    return {"stream_id": stream.json()["id"], "service": "depth-test", "name": "deep", "version": "1"}


def _url(template: str, paths: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: paths.get(m.group(1), "06h4hhznm9d6ht8a8wg2aaaaaa"), template)


def _assert_too_deep(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 400
    assert body["detail"] == f"request body is nested deeper than {MAX_JSON_DEPTH} levels"


def test_the_route_table_lists_the_json_routes() -> None:
    assert LOGIN in ROUTES
    assert ("POST", "/api/v1/jobs") in ROUTES
    assert ("POST", "/api/v1/streams/{stream_id}/items") in ROUTES
    assert ("PUT", "/api/v1/services/{service}/config-settings/{name}") in ROUTES


@pytest.mark.parametrize(("method", "template"), ROUTES, ids=[f"{m} {t}" for m, t in ROUTES])
async def test_too_deep_is_400_and_the_limit_itself_is_not(
    client: Client, admin_headers: dict[str, str], paths: dict[str, str], method: str, template: str
) -> None:
    url, headers = _url(template, paths), {**admin_headers, **JSON}
    for body in ("[" * 100_000, _nested(MAX_JSON_DEPTH + 1), f"[{_nested(MAX_JSON_DEPTH)}]"):
        _assert_too_deep(await client.request(method, url, content=body, headers=headers))
    for body in (_nested(MAX_JSON_DEPTH), f"[{_nested(MAX_JSON_DEPTH - 1)}]"):
        response = await client.request(method, url, content=body, headers=headers)
        assert response.status_code < 500, response.text
        assert "nested deeper" not in response.text


async def test_the_public_login_refuses_a_flood_of_brackets_without_a_token(client: Client) -> None:
    method, url = LOGIN
    _assert_too_deep(await client.request(method, url, content="[" * 100_000, headers=JSON))
    _assert_too_deep(await client.request(method, url, content=_nested(MAX_JSON_DEPTH + 1), headers=JSON))


async def test_values_at_the_limit_are_stored(
    client: Client, admin_headers: dict[str, str], paths: dict[str, str]
) -> None:
    deepest = "[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)  # inside a list, inside an item
    pushed = await client.post(
        f"/api/v1/streams/{paths['stream_id']}/items",
        content=f'[{{"key": "deep", "value": {deepest}}}]',
        headers={**admin_headers, **JSON},
    )
    assert pushed.status_code in {200, 202}, pushed.text
    assert pushed.json()["accepted"] == 1
    submitted = await client.post(
        "/api/v1/jobs",
        content=f'{{"type": "system.noop", "params": {{"echo": {deepest}}}}}',
        headers={**admin_headers, **JSON},
    )
    assert submitted.status_code == 201, submitted.text
