"""Sharing over HTTP (memory://, SQLite, PostgreSQL): one access policy for every asset route.

A share to a user, a group or an email address, and a project membership, each give exactly the
documented access to a table, its rows, its statistics, SQL over it, its lineage and its file;
only an asset's owner shares it (the original let anyone share any asset id); a share to an
email address becomes the user's when that user is created (the original lost those)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings
from tests.integration.test_http_tables import FAST, ROWS, SALES, TABLES, Client, _import, _user, _wait

ASSETS = "/api/v1/assets"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "bob")


async def _share(
    client: Client, headers: dict[str, str], asset_id: str, expected: int = 201, **body: Any
) -> dict[str, Any]:
    response = await client.post(f"{ASSETS}/{asset_id}/shares", headers=headers, json=body)
    assert response.status_code == expected, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _status(client: Client, method: str, path: str, headers: dict[str, str], **kwargs: Any) -> int:
    return (await client.request(method, path, headers=headers, **kwargs)).status_code


async def _reads(client: Client, headers: dict[str, str], table_id: str) -> bool:
    """Whether ``headers`` reads the table on every read route (all 200) or none (all 404)."""
    paths = [
        f"{TABLES}/{table_id}",
        f"{TABLES}/{table_id}/rows",
        f"{TABLES}/{table_id}/stats",
        f"{ASSETS}/{table_id}",
    ]
    statuses = {await _status(client, "GET", path, headers) for path in paths}
    assert statuses in ({200}, {404}), statuses
    return statuses == {200}


async def test_a_read_share_reads_everything_and_changes_nothing(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    tid = table["id"]
    assert not await _reads(client, bob, tid)
    share = await _share(client, ada, tid, user="bob")
    assert (share["grantee_kind"], share["permission"]) == ("user", "read")
    assert await _reads(client, bob, tid)
    rows = (await client.get(f"{TABLES}/{tid}/rows", headers=bob, params={"limit": 1000})).json()["rows"]
    assert len(rows) == ROWS
    # SQL names it as ada names it, and reads exactly it.
    preview = await client.post(
        "/api/v1/sql/preview", headers=bob, json={"sql": 'SELECT count(*) FROM "ada/sales"'}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json()["rows"] == [[ROWS]]
    # Reading is not writing: 403 on changes, 403 on deleting and sharing.
    assert await _status(client, "PATCH", f"{TABLES}/{tid}", bob, json={"name": "mine"}) == 403
    assert await _status(client, "DELETE", f"{ASSETS}/{tid}", bob) == 403
    await _share(client, bob, tid, expected=403, user="ada")
    # Its copy is bob's own, with lineage to the original.
    copied = await client.post(f"{TABLES}/{tid}/copy", headers=bob, json={"name": "my sales"})
    assert copied.status_code == 201, copied.text
    lineage = (await client.get(f"{ASSETS}/{copied.json()['id']}/lineage?direction=up", headers=bob)).json()
    assert tid in {e["input_id"] for e in lineage["edges"]}
    # Taken back: gone again, on every route.
    assert await _status(client, "DELETE", f"/api/v1/shares/{share['id']}", ada) == 204
    assert not await _reads(client, bob, tid)
    assert (
        await client.post("/api/v1/sql/preview", headers=bob, json={"sql": 'SELECT 1 FROM "ada/sales"'})
    ).status_code == 404


async def test_a_write_share_changes_but_only_the_owner_deletes_or_shares(
    client: Client, ada: dict[str, str], bob: dict[str, str], admin_headers: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    tid = table["id"]
    await _share(client, ada, tid, user="bob", permission="write")
    assert await _status(client, "PATCH", f"{TABLES}/{tid}", bob, json={"description": "by bob"}) == 200
    assert await _status(client, "DELETE", f"{ASSETS}/{tid}", bob) == 403
    await _share(client, bob, tid, expected=403, email="cy@example.org")
    # Sharing again changes the permission of the one share.
    again = await _share(client, ada, tid, user="bob", permission="read")
    assert await _status(client, "PATCH", f"{TABLES}/{tid}", bob, json={"description": "x"}) == 403
    listed = (await client.get(f"{ASSETS}/{tid}/shares", headers=ada)).json()["items"]
    assert [(s["id"], s["permission"]) for s in listed] == [(again["id"], "read")]
    assert await _status(client, "GET", f"{ASSETS}/{tid}/shares", bob) == 403
    # An admin may do all of it.
    assert await _status(client, "DELETE", f"{ASSETS}/{tid}", admin_headers) == 204


async def test_nobody_shares_what_they_do_not_own(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    # The original's bug: any user could share any asset id. Unreadable: 404; unknown: 404.
    await _share(client, bob, table["id"], expected=404, user="bob")
    await _share(client, bob, "06H0000000000000000000000", expected=404, user="bob")
    assert not await _reads(client, bob, table["id"])
    # Bad grantees: none, two, an unknown user or group, oneself the owner, a bad email.
    await _share(client, ada, table["id"], expected=422)
    await _share(client, ada, table["id"], expected=422, user="bob", email="bob@example.org")
    await _share(client, ada, table["id"], expected=404, user="nobody")
    await _share(client, ada, table["id"], expected=404, group="@nobody")
    await _share(client, ada, table["id"], expected=422, user="ada")
    await _share(client, ada, table["id"], expected=422, email="not-an-email")


async def test_a_group_share_reaches_its_members_while_they_are_members(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    group = (await client.post("/api/v1/groups", headers=ada, json={"name": "analysts"})).json()
    await _share(client, ada, table["id"], group="@analysts")
    assert not await _reads(client, bob, table["id"])
    assert await _status(client, "PUT", f"/api/v1/groups/{group['id']}/members/bob", ada) == 200
    assert await _reads(client, bob, table["id"])
    received = (await client.get("/api/v1/shares", headers=bob)).json()["items"]
    assert [(s["asset_id"], s["grantee_kind"]) for s in received] == [(table["id"], "group")]
    assert await _status(client, "DELETE", f"/api/v1/groups/{group['id']}/members/bob", ada) == 204
    assert not await _reads(client, bob, table["id"])


async def test_an_email_share_becomes_the_users_when_they_are_created(
    client: Client, ada: dict[str, str], admin_headers: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    share = await _share(client, ada, table["id"], email="Cy@Example.org")
    assert (share["grantee_kind"], share["grantee"]) == ("email", "cy@example.org")
    given = (await client.get("/api/v1/shares?given=true", headers=ada)).json()["items"]
    assert [s["id"] for s in given] == [share["id"]]
    created = await client.post(
        "/api/v1/users", headers=admin_headers, json={"username": "cy", "email": "cy@example.org"}
    )
    assert created.status_code == 201, created.text
    cy = {"Authorization": f"Bearer {created.json()['token']['token']}"}
    assert await _reads(client, cy, table["id"])
    assert [s["id"] for s in (await client.get("/api/v1/shares", headers=cy)).json()["items"]] == [
        share["id"]
    ]
    # Cy's jobs act as cy, email included: a derived table over the shared one.
    derived = await client.post(
        TABLES, headers=cy, json={"name": "by city", "sql": 'SELECT count(*) AS n FROM "ada/sales"'}
    )
    assert derived.status_code == 202, derived.text
    job = await _wait(client, cy, derived.json()["job"]["id"])
    assert job["status"] == "completed", job


async def test_project_members_read_or_write_what_is_linked_to_the_project(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    tid = table["id"]
    project = (await client.post("/api/v1/projects", headers=ada, json={"name": "survey"})).json()
    pid = project["id"]
    assert (
        await _status(client, "PUT", f"/api/v1/projects/{pid}/members/bob", ada, json={"permission": "read"})
        == 200
    )
    assert not await _reads(client, bob, tid)  # a member, but nothing linked yet
    assert await _status(client, "PUT", f"/api/v1/projects/{pid}/assets/{tid}", ada) == 200
    assert await _reads(client, bob, tid)
    assert await _status(client, "PATCH", f"{TABLES}/{tid}", bob, json={"description": "x"}) == 403
    assert (
        await _status(client, "PUT", f"/api/v1/projects/{pid}/members/bob", ada, json={"permission": "write"})
        == 200
    )
    assert await _status(client, "PATCH", f"{TABLES}/{tid}", bob, json={"description": "x"}) == 200
    assert await _status(client, "DELETE", f"/api/v1/projects/{pid}/assets/{tid}", ada) == 204
    assert not await _reads(client, bob, tid)


async def test_lineage_shows_what_the_caller_may_not_read_as_a_stub(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    await _share(client, ada, table["id"], user="bob")
    graph = (await client.get(f"{ASSETS}/{table['id']}/lineage?direction=up", headers=bob)).json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    (file_id,) = set(nodes) - {table["id"]}
    assert nodes[file_id] == {
        "id": file_id,
        "kind": "file",
        "name": None,
        "version": None,
        "status": None,
        "deleted": False,
        "redacted": True,
    }
    assert nodes[table["id"]]["name"] == "sales"
    # The file itself: ada's, not shared, so not bob's to download, nor to import.
    assert await _status(client, "GET", f"/api/v1/files/{file_id}", bob) == 404
    assert await _status(client, "POST", TABLES, bob, json={"name": "mine", "file": file_id}) == 404
    await _share(client, ada, file_id, user="bob")
    assert await _status(client, "GET", f"/api/v1/files/{file_id}", bob) == 200
    assert await _status(client, "DELETE", f"/api/v1/files/{file_id}", bob) == 403
    # Shared, bob imports it into a table of his own; its job reads it as bob.
    imported = await client.post(TABLES, headers=bob, json={"name": "mine", "file": file_id})
    assert imported.status_code == 202, imported.text
    job = await _wait(client, bob, imported.json()["job"]["id"])
    assert job["status"] == "completed", job
    rows = await client.get(
        f"{TABLES}/{imported.json()['table']['id']}/rows", headers=bob, params={"limit": 1000}
    )
    assert len(rows.json()["rows"]) == ROWS
