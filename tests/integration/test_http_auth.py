"""Authentication over HTTP: token lifecycle, 401 on every route, 403 for admin routes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.tracking.mlflow_face.protocol import is_mlflow_path

PUBLIC = {("GET", "/health"), ("GET", "/about"), ("POST", "/api/v1/auth/tokens")}
ADMIN_ONLY = {
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users"),
    ("GET", "/api/v1/users/{user_id}"),
    ("DELETE", "/api/v1/users/{user_id}"),
}


def _routes(app: Litestar) -> list[tuple[str, str]]:
    found = []
    for route in app.routes:
        for method in sorted(getattr(route, "methods", ())):
            if method in {"HEAD", "OPTIONS"}:
                continue
            found.append((method, route.path))
    return found


def _concrete(path: str) -> str:
    # An integer parameter (a model version) must look like one, or no route matches at all.
    path = re.sub(r"\{[^}:]+:int\}", "1", path)
    return re.sub(r"\{[^}]+\}", "01ABSENT0000000000000000000", path)


def _is_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()


async def _login(client: AsyncTestClient[Litestar], username: str, password: str) -> Any:
    return await client.post("/api/v1/auth/tokens", json={"username": username, "password": password})


async def _create_user(
    client: AsyncTestClient[Litestar], headers: dict[str, str], username: str, role: str = "user"
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/users",
        headers=headers,
        json={"username": username, "password": "correct horse", "role": role},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_route_but_the_public_ones_answers_401_without_a_valid_token(
    client: AsyncTestClient[Litestar],
) -> None:
    # The API docs under /schema are public too (docs/decisions.md; tests/integration/test_api_docs.py).
    routes = [r for r in _routes(client.app) if r not in PUBLIC and not r[1].startswith("/schema")]
    assert ("GET", "/api/v1/auth/me") in routes and ("GET", "/status") in routes
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer s9_not-a-real-token"}, {"Authorization": "Basic abc"}):
            response = await client.request(method, _concrete(path), headers=headers)
            if is_mlflow_path(path):  # MLflow clients read MLflow's error documents
                assert response.status_code == 401, (method, path)
                assert response.json()["error_code"] == "UNAUTHENTICATED"
            else:
                _is_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")


async def test_public_routes_answer_without_a_token(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/health")).status_code == 200
    about = (await client.get("/about")).json()
    assert about["name"] == "studio9" and about["version"] and about["build"] == "dev"


async def test_admin_routes_answer_403_to_a_plain_user(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    created = await _create_user(client, admin_headers, "ada")
    user_headers = {"Authorization": f"Bearer {created['token']['token']}"}
    for method, path in ADMIN_ONLY:
        kwargs: dict[str, Any] = {"json": {"username": "eve"}} if method == "POST" else {}
        response = await client.request(method, _concrete(path), headers=user_headers, **kwargs)
        _is_problem(response, 403)


async def test_token_lifecycle_issue_use_list_revoke(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    await _create_user(client, admin_headers, "ada")
    login = await _login(client, "ada", "correct horse")
    assert login.status_code == 201
    issued = login.json()
    assert issued.keys() == {"id", "token", "expires_at"}
    headers = {"Authorization": f"Bearer {issued['token']}"}

    me = (await client.get("/api/v1/auth/me", headers=headers)).json()
    assert (me["username"], me["role"], me["token_id"]) == ("ada", "user", issued["id"])

    listed = (await client.get("/api/v1/auth/tokens", headers=headers)).json()["items"]
    assert issued["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)

    assert (await client.delete(f"/api/v1/auth/tokens/{issued['id']}", headers=headers)).status_code == 204
    _is_problem(await client.get("/api/v1/auth/me", headers=headers), 401)


async def test_another_users_token_is_not_found(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    ada = await _create_user(client, admin_headers, "ada")
    bob = await _create_user(client, admin_headers, "bob")
    bob_headers = {"Authorization": f"Bearer {bob['token']['token']}"}
    _is_problem(await client.delete(f"/api/v1/auth/tokens/{ada['token']['id']}", headers=bob_headers), 404)


async def test_wrong_password_is_401_and_repeated_failures_are_429(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    await _create_user(client, admin_headers, "ada")
    for _ in range(5):
        _is_problem(await _login(client, "ada", "wrong horse"), 401)
    locked = await _login(client, "ada", "correct horse")
    _is_problem(locked, 429)
    assert int(locked.headers["retry-after"]) > 0
    _is_problem(await _login(client, "nobody", "whatever1"), 401)


async def test_users_are_listed_with_a_cursor_and_deleted(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    for name in ("ada", "bob", "cy"):
        await _create_user(client, admin_headers, name)
    first = (await client.get("/api/v1/users?limit=2", headers=admin_headers)).json()
    second = (
        await client.get(f"/api/v1/users?limit=2&cursor={first['next_cursor']}", headers=admin_headers)
    ).json()
    names = [u["username"] for u in first["items"] + second["items"]]
    assert sorted(names) == ["ada", "admin", "bob", "cy"]
    assert second["next_cursor"] is None
    target = first["items"][0] if first["items"][0]["username"] != "admin" else first["items"][1]
    assert (await client.delete(f"/api/v1/users/{target['id']}", headers=admin_headers)).status_code == 204
    _is_problem(await client.get(f"/api/v1/users/{target['id']}", headers=admin_headers), 404)


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"password": "correct horse"}, 422, "username"),
        ({"username": "Not Valid!", "password": "correct horse"}, 422, "username"),
        ({"username": "ada", "password": "short"}, 422, "password"),
        ({"username": "ada", "password": "correct horse", "role": "overlord"}, 422, "role"),
        ({"username": "ada", "password": "correct horse", "extra": 1}, 422, "extra"),
    ],
)
async def test_invalid_user_bodies_are_422_naming_the_field(
    client: AsyncTestClient[Litestar],
    admin_headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    response = await client.post("/api/v1/users", headers=admin_headers, json=body)
    _is_problem(response, status)
    assert field in {e["field"] for e in response.json()["errors"]}


async def test_duplicate_username_is_409(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    await _create_user(client, admin_headers, "ada")
    response = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": "ada", "password": "correct horse"}
    )
    _is_problem(response, 409)


async def test_a_users_email_is_normalised_unique_and_theirs_to_see(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    created = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": "ada", "email": " Ada@Example.ORG "}
    )
    assert created.status_code == 201, created.text
    assert created.json()["user"]["email"] == "ada@example.org"
    token = created.json()["token"]["token"]
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["email"] == "ada@example.org"
    taken = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": "ada2", "email": "ADA@example.org"}
    )
    _is_problem(taken, 409)
    assert "ada@example.org" not in taken.text
    for bad in ("ada", "@example.org", "ada@", "a da@example.org", "ada@localhost"):
        refused = await client.post(
            "/api/v1/users", headers=admin_headers, json={"username": "cy", "email": bad}
        )
        _is_problem(refused, 422)
        assert "email" in {e["field"] for e in refused.json()["errors"]}, bad


async def test_service_account_gets_a_token_and_no_password(
    client: AsyncTestClient[Litestar], admin_headers: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": "worker-1", "role": "service"}
    )
    assert response.status_code == 201
    created = response.json()
    assert created["user"]["has_password"] is False
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {created['token']['token']}"})
    assert me.json()["role"] == "service"


async def test_admin_token_file_is_private(client: AsyncTestClient[Litestar], settings: Any) -> None:
    path = settings.data_dir / "admin-token"
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text().startswith("s9_")
