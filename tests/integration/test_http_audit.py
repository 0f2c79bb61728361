"""The audit log over HTTP, through the whole app (memory://, SQLite, PostgreSQL): every write a
user makes leaves one event (actor, token, address, action, object), a login included; reads and
refused writes leave none; no password or token secret is ever stored; ``GET /api/v1/audit`` is
for an asset's owner and admins; a log that cannot be written does not fail the write."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from structlog.testing import capture_logs

from studio9.api import create_app
from studio9.audit.domain import AuditEvent, NewAuditEvent
from studio9.audit.service import AuditService
from studio9.auth.domain import Principal, Role
from studio9.catalog.domain import Asset, AssetKind, AssetStatus
from studio9.config import Settings
from studio9.errors import BackendUnavailable, PermissionDenied
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
AUDIT = "/api/v1/audit"
PASSWORD = "correct horse battery staple"  # looked for in the log: never there
ADDRESS = "testclient"  # the test client's ``request.client.host``


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, background=False)) as test_client:
        yield test_client


async def _me(client: Client, headers: dict[str, str]) -> dict[str, Any]:
    me: dict[str, Any] = (await client.get("/api/v1/auth/me", headers=headers)).json()
    return me


async def _events(client: Client, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    response = await client.get(AUDIT, headers=headers, params={"limit": 500, **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _stored(client: Client) -> Sequence[AuditEvent]:
    """Every stored event, read from the log itself rather than through the route."""
    service: AuditService = client.app.state.container.audit
    return await service.log.query(limit=10_000)


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": name, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def _upload(client: Client, headers: dict[str, str]) -> str:
    response = await client.post("/api/v1/files?name=notes.txt", headers=headers, content=b"hello")
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def test_every_write_leaves_one_event_and_reads_none(
    client: Client, admin_headers: dict[str, str]
) -> None:
    admin = await _me(client, admin_headers)
    created = await _user(client, admin_headers, "ada")
    ada_id, first_token = created["user"]["id"], created["token"]
    login = await client.post("/api/v1/auth/tokens", json={"username": "ada", "password": PASSWORD})
    assert login.status_code == 201, login.text
    ada = _bearer(login.json()["token"])
    login_token_id = login.json()["id"]
    file_id = await _upload(client, ada)
    patched = await client.patch(f"/api/v1/assets/{file_id}", headers=ada, json={"description": "mine"})
    assert patched.status_code == 200, patched.text
    revoked = await client.delete(f"/api/v1/auth/tokens/{first_token['id']}", headers=ada)
    assert revoked.status_code == 204, revoked.text
    # Reads, and writes refused, leave nothing.
    assert (await client.get(f"/api/v1/assets/{file_id}", headers=ada)).status_code == 200
    assert (await client.get("/api/v1/files", headers=ada)).status_code == 200
    assert (
        await client.patch("/api/v1/assets/01J0000000000000000000000Z", headers=ada, json={})
    ).status_code == 404
    assert (await client.post("/api/v1/users", headers=ada, json={"username": "eve"})).status_code == 403
    bad_login = await client.post(
        "/api/v1/auth/tokens", json={"username": "ada", "password": "wrong password"}
    )
    assert bad_login.status_code == 401

    events = await _events(client, admin_headers)

    expected = [
        ("DELETE /api/v1/auth/tokens/{token_id}", ada_id, login_token_id, first_token["id"], 204),
        ("PATCH /api/v1/assets/{asset_id}", ada_id, login_token_id, file_id, 200),
        ("POST /api/v1/files", ada_id, login_token_id, file_id, 201),
        ("POST /api/v1/auth/tokens", ada_id, login_token_id, login_token_id, 201),
        ("POST /api/v1/users", admin["id"], admin["token_id"], ada_id, 201),
    ]
    assert [
        (e["action"], e["actor_id"], e["token_id"], e["object_id"], e["detail"]["status"]) for e in events
    ] == expected
    assert {e["address"] for e in events} == {ADDRESS}
    assert events[0]["detail"]["path"] == {"token_id": first_token["id"]}
    assert events[1]["detail"]["path"] == {"asset_id": file_id}
    assert events[2]["detail"]["path"] == {}
    assert all(e["detail"]["request_id"] for e in events)
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    for event in events:
        assert datetime.fromisoformat(event["at"]) <= datetime.now(UTC)


async def test_no_password_or_token_secret_is_ever_stored(
    client: Client, admin_headers: dict[str, str], admin_token: str
) -> None:
    created = await _user(client, admin_headers, "ada")
    login = await client.post(
        "/api/v1/auth/tokens", json={"username": "ada", "password": PASSWORD, "name": "laptop"}
    )
    assert login.status_code == 201, login.text
    ada = _bearer(login.json()["token"])
    await _upload(client, ada)
    secrets = [PASSWORD, admin_token, created["token"]["token"], login.json()["token"]]

    stored = await _stored(client)
    served = json.dumps(await _events(client, admin_headers))

    assert len(stored) == 3
    for event in stored:
        text = json.dumps(attrs.asdict(event), default=str)
        for secret in secrets:
            assert secret not in text
    for secret in secrets:
        assert secret not in served
    assert "laptop" not in served  # nothing of a request body is kept


async def test_the_trail_of_an_asset_is_for_its_owner_and_admins(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada = _bearer((await _user(client, admin_headers, "ada"))["token"]["token"])
    bob = _bearer((await _user(client, admin_headers, "bob"))["token"]["token"])
    ada_id = (await _me(client, ada))["id"]
    file_id = await _upload(client, ada)
    for text in ("one", "two", "three"):
        response = await client.patch(f"/api/v1/assets/{file_id}", headers=ada, json={"description": text})
        assert response.status_code == 200
    await _upload(client, bob)

    mine = await _events(client, ada, asset=file_id)
    seen_by_admin = await _events(client, admin_headers, asset=file_id)

    assert [e["action"] for e in mine] == ["PATCH /api/v1/assets/{asset_id}"] * 3 + ["POST /api/v1/files"]
    assert mine == seen_by_admin
    assert await _events(client, ada, asset=file_id, actor=ada_id) == mine
    assert await _events(client, admin_headers, actor=ada_id) == mine
    assert len(await _events(client, admin_headers)) == 2 + 4 + 1  # two users made, ada's four, bob's one
    assert await _events(client, ada, asset=file_id, since="2999-01-01") == []
    assert await _events(client, ada, asset=file_id, since="2000-01-01T00:00:00+02:00") == mine
    # Paged: two by two, down the ids.
    first = await client.get(AUDIT, headers=ada, params={"asset": file_id, "limit": 2})
    cursor = first.json()["next_cursor"]
    second = await client.get(AUDIT, headers=ada, params={"asset": file_id, "limit": 2, "cursor": cursor})
    assert first.json()["items"] + second.json()["items"] == mine
    assert second.json()["next_cursor"] is None
    # Another user: as if the asset did not exist; no asset: a 422; another actor: a 403.
    assert (await client.get(AUDIT, headers=bob, params={"asset": file_id})).status_code == 404
    no_asset = await client.get(AUDIT, headers=bob)
    assert no_asset.status_code == 422
    assert no_asset.json()["errors"][0]["field"] == "asset"
    assert (
        await client.get(AUDIT, headers=ada, params={"asset": file_id, "actor": "someone"})
    ).status_code == 403
    assert (
        await client.get(AUDIT, headers=ada, params={"asset": file_id, "since": "2026-01-01T00:00:00"})
    ).status_code == 422
    assert (
        await client.get(AUDIT, headers=ada, params={"asset": file_id, "cursor": "abc"})
    ).status_code == 422
    assert (await client.get(AUDIT, params={"asset": file_id})).status_code == 401


async def test_a_log_that_cannot_be_written_fails_no_write(
    client: Client, admin_headers: dict[str, str], settings: Settings
) -> None:
    if settings.database_url != "memory://":
        pytest.skip("the decision is the same on every database: once is enough")

    class DownLog:
        async def append(self, events: Sequence[NewAuditEvent]) -> None:
            raise BackendUnavailable("database unreachable: postgresql://studio9:***@db/studio9")

        async def query(self, **_: Any) -> Sequence[AuditEvent]:
            return []

    client.app.state.container.audit.log = DownLog()

    with capture_logs() as logs:
        created = await client.post(
            "/api/v1/users", headers=admin_headers, json={"username": "ada", "password": PASSWORD}
        )

    assert created.status_code == 201, created.text
    (failure,) = [entry for entry in logs if entry["event"] == "audit_append_failed"]
    assert failure["log_level"] == "error"
    assert failure["action"] == "POST /api/v1/users"
    assert failure["object_id"] == created.json()["user"]["id"]
    assert PASSWORD not in json.dumps(failure, default=str)
    assert created.json()["token"]["token"] not in json.dumps(failure, default=str)


class _OneAsset:
    """The catalog's ``Assets.get`` for one asset that everyone may read (a share, say)."""

    def __init__(self, asset: Asset) -> None:
        self.asset = asset

    async def get(self, actor: Principal, asset_id: str) -> Asset:
        return self.asset


async def test_a_reader_who_does_not_own_the_asset_is_refused() -> None:
    now = datetime.now(UTC)
    asset = Asset(
        id="01J0000000000000000000000A",
        kind=AssetKind.TABLE,
        owner_id="ada",
        name="sales",
        status=AssetStatus.ACTIVE,
        latest_version=1,
        created_at=now,
        updated_at=now,
    )
    service = AuditService(log=None, assets=_OneAsset(asset), tokens=None)  # type: ignore[arg-type]
    bob = Principal(user_id="bob", username="bob", role=Role.USER, token_id="t", token_expires_at=now)

    with pytest.raises(PermissionDenied):
        await service.events(bob, asset=asset.id)
