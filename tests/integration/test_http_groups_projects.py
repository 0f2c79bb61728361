"""Groups and projects over HTTP, through the whole app (memory://, SQLite, PostgreSQL): who may
see, change and delete a group or a project (its owner, its members, a stranger, an admin), the
members of each (by id, username, group id or ``@group``), a project's folders and linked assets,
and what goes with a deleted group, project, folder or asset.

What a project membership grants on the linked assets themselves is the access policy's
(``studio9.access.policy``), tested with it; here only what these routes answer is."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
GROUPS = "/api/v1/groups"
PROJECTS = "/api/v1/projects"


@attrs.frozen
class Caller:
    id: str
    name: str
    headers: dict[str, str]


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, background=False)) as test_client:
        yield test_client


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> Caller:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    body = created.json()
    return Caller(body["user"]["id"], name, {"Authorization": f"Bearer {body['token']['token']}"})


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> Caller:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: dict[str, str]) -> Caller:
    return await _user(client, admin_headers, "bob")


@pytest.fixture
async def cy(client: Client, admin_headers: dict[str, str]) -> Caller:
    return await _user(client, admin_headers, "cy")


@pytest.fixture
async def dan(client: Client, admin_headers: dict[str, str]) -> Caller:
    return await _user(client, admin_headers, "dan")


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if status != 204 else None


async def _upload(client: Client, who: Caller, name: str) -> str:
    response = await client.post(f"/api/v1/files?name={name}", headers=who.headers, content=b"a,b\n1,2\n")
    assert response.status_code == 201, response.text
    asset_id: str = response.json()["id"]
    return asset_id


# -- groups ----------------------------------------------------------------------------------------


async def test_a_group_is_its_owners_to_manage_and_its_members_to_see(
    client: Client, admin_headers: dict[str, str], ada: Caller, bob: Caller, cy: Caller, dan: Caller
) -> None:
    group = _ok(await client.post(GROUPS, headers=ada.headers, json={"name": "team"}), 201)
    assert (group["name"], group["owner_id"], group["members"]) == ("team", ada.id, [ada.id])
    gid = group["id"]
    assert (await client.post(GROUPS, headers=bob.headers, json={"name": "team"})).status_code == 409
    assert (await client.post(GROUPS, headers=bob.headers, json={"name": "no spaces"})).status_code == 422
    assert (await client.post(GROUPS, headers=bob.headers, json={"name": "x", "y": 1})).status_code == 422

    # Members by username and by id; an unknown user is a 404; adding twice changes nothing.
    _ok(await client.put(f"{GROUPS}/{gid}/members/bob", headers=ada.headers))
    added = _ok(await client.put(f"{GROUPS}/{gid}/members/{cy.id}", headers=ada.headers))
    assert added["members"] == sorted([ada.id, bob.id, cy.id])
    again = _ok(await client.put(f"{GROUPS}/{gid}/members/cy", headers=ada.headers))
    assert again["members"] == added["members"]
    assert (await client.put(f"{GROUPS}/{gid}/members/nobody", headers=ada.headers)).status_code == 404

    # A member sees it (by id or @name) and may not change it: 403; a stranger: 404 everywhere.
    assert (_ok(await client.get(f"{GROUPS}/@team", headers=bob.headers)))["id"] == gid
    assert (_ok(await client.get(f"{GROUPS}/{gid}", headers=bob.headers)))["members"] == added["members"]
    assert (await client.put(f"{GROUPS}/{gid}/members/dan", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{GROUPS}/{gid}/members/cy", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{GROUPS}/{gid}", headers=bob.headers)).status_code == 403
    for response in (
        await client.get(f"{GROUPS}/{gid}", headers=dan.headers),
        await client.get(f"{GROUPS}/@team", headers=dan.headers),
        await client.put(f"{GROUPS}/{gid}/members/dan", headers=dan.headers),
        await client.delete(f"{GROUPS}/{gid}/members/ada", headers=dan.headers),
        await client.delete(f"{GROUPS}/{gid}", headers=dan.headers),
        await client.get(f"{GROUPS}/nothing", headers=ada.headers),
    ):
        assert response.status_code == 404, response.text

    # Lists: one's own groups; an admin's: all of them, paged.
    other = _ok(await client.post(GROUPS, headers=dan.headers, json={"name": "other"}), 201)
    assert [g["id"] for g in (_ok(await client.get(GROUPS, headers=bob.headers)))["items"]] == [gid]
    assert [g["id"] for g in (_ok(await client.get(GROUPS, headers=dan.headers)))["items"]] == [other["id"]]
    first = _ok(await client.get(GROUPS, headers=admin_headers, params={"limit": 1}))
    rest = _ok(await client.get(GROUPS, headers=admin_headers, params={"cursor": first["next_cursor"]}))
    assert [g["id"] for g in first["items"] + rest["items"]] == [other["id"], gid]
    assert rest["next_cursor"] is None

    # A member leaves; the owner cannot (409) while owner; the owner takes a member out.
    assert (await client.delete(f"{GROUPS}/{gid}/members/bob", headers=bob.headers)).status_code == 204
    assert (await client.get(f"{GROUPS}/{gid}", headers=bob.headers)).status_code == 404
    assert (await client.delete(f"{GROUPS}/{gid}/members/ada", headers=ada.headers)).status_code == 409
    assert (await client.delete(f"{GROUPS}/{gid}/members/{cy.id}", headers=ada.headers)).status_code == 204
    assert (await client.delete(f"{GROUPS}/{gid}/members/cy", headers=ada.headers)).status_code == 404

    # An admin manages any group.
    _ok(await client.put(f"{GROUPS}/{other['id']}/members/ada", headers=admin_headers))
    assert (await client.delete(f"{GROUPS}/{other['id']}", headers=admin_headers)).status_code == 204
    assert (await client.delete(f"{GROUPS}/{gid}", headers=ada.headers)).status_code == 204
    for who in (ada, dan):
        assert (_ok(await client.get(GROUPS, headers=who.headers)))["items"] == []


# -- projects --------------------------------------------------------------------------------------


async def test_project_members_by_user_username_group_and_at_group(
    client: Client, admin_headers: dict[str, str], ada: Caller, bob: Caller, cy: Caller, dan: Caller
) -> None:
    project = _ok(await client.post(PROJECTS, headers=ada.headers, json={"name": "Survey 2026"}), 201)
    pid = project["id"]
    assert (project["owner_id"], project["description"]) == (ada.id, "")
    assert (await client.post(PROJECTS, headers=ada.headers, json={"name": "Survey 2026"})).status_code == 409
    _ok(await client.post(PROJECTS, headers=bob.headers, json={"name": "Survey 2026"}), 201)  # per owner
    assert (await client.post(PROJECTS, headers=ada.headers, json={"name": "a/b"})).status_code == 422

    # A stranger: 404 on every route of the project.
    for response in (
        await client.get(f"{PROJECTS}/{pid}", headers=dan.headers),
        await client.patch(f"{PROJECTS}/{pid}", headers=dan.headers, json={"name": "x"}),
        await client.get(f"{PROJECTS}/{pid}/members", headers=dan.headers),
        await client.put(f"{PROJECTS}/{pid}/members/dan", headers=dan.headers, json={"permission": "write"}),
        await client.delete(f"{PROJECTS}/{pid}", headers=dan.headers),
    ):
        assert response.status_code == 404, response.text

    # Members by username (read) and by id (write); an unknown one: 404; a bad permission: 422.
    put = f"{PROJECTS}/{pid}/members"
    member = _ok(await client.put(f"{put}/bob", headers=ada.headers, json={"permission": "read"}))
    assert (member["member_kind"], member["member_id"], member["permission"]) == ("user", bob.id, "read")
    _ok(await client.put(f"{put}/{cy.id}", headers=ada.headers, json={"permission": "write"}))
    assert (
        await client.put(f"{put}/nobody", headers=ada.headers, json={"permission": "read"})
    ).status_code == 404
    assert (
        await client.put(f"{put}/@nothing", headers=ada.headers, json={"permission": "read"})
    ).status_code == 404
    assert (
        await client.put(f"{put}/bob", headers=ada.headers, json={"permission": "own"})
    ).status_code == 422

    # A reader reads and may change nothing (403); a writer renames, may not manage members or delete.
    assert (_ok(await client.get(f"{PROJECTS}/{pid}", headers=bob.headers)))["id"] == pid
    assert (
        await client.patch(f"{PROJECTS}/{pid}", headers=bob.headers, json={"name": "x"})
    ).status_code == 403
    assert (
        await client.put(f"{put}/dan", headers=bob.headers, json={"permission": "read"})
    ).status_code == 403
    assert (await client.delete(f"{PROJECTS}/{pid}", headers=bob.headers)).status_code == 403
    renamed = _ok(
        await client.patch(
            f"{PROJECTS}/{pid}", headers=cy.headers, json={"name": "Survey", "description": "d"}
        )
    )
    assert (renamed["name"], renamed["description"]) == ("Survey", "d")
    assert (
        await client.put(f"{put}/dan", headers=cy.headers, json={"permission": "read"})
    ).status_code == 403
    assert (await client.delete(f"{put}/bob", headers=cy.headers)).status_code == 403
    assert (await client.delete(f"{PROJECTS}/{pid}", headers=cy.headers)).status_code == 403
    assert [p["id"] for p in (_ok(await client.get(PROJECTS, headers=cy.headers)))["items"]] == [pid]

    # Groups, by @name and by id: their members reach the project; the best membership counts.
    team = _ok(await client.post(GROUPS, headers=cy.headers, json={"name": "team"}), 201)
    _ok(await client.put(f"{GROUPS}/{team['id']}/members/dan", headers=cy.headers))
    by_name = _ok(await client.put(f"{put}/@team", headers=ada.headers, json={"permission": "read"}))
    assert (by_name["member_kind"], by_name["member_id"]) == ("group", team["id"])
    assert (_ok(await client.get(f"{PROJECTS}/{pid}", headers=dan.headers)))["name"] == "Survey"
    assert (
        await client.patch(f"{PROJECTS}/{pid}", headers=dan.headers, json={"name": "y"})
    ).status_code == 403
    by_id = _ok(await client.put(f"{put}/{team['id']}", headers=ada.headers, json={"permission": "write"}))
    assert (by_id["member_id"], by_id["permission"]) == (team["id"], "write")
    _ok(await client.patch(f"{PROJECTS}/{pid}", headers=dan.headers, json={"description": "by dan"}))
    members = (_ok(await client.get(put, headers=bob.headers)))["items"]
    assert [(m["member_kind"], m["member_id"], m["permission"]) for m in members] == [
        *sorted(
            [("user", ada.id, "write"), ("user", bob.id, "read"), ("user", cy.id, "write")],
            key=lambda m: m[1],
        ),
        ("group", team["id"], "write"),
    ]
    # The owner is a write member for as long as they own the project.
    assert (await client.delete(f"{put}/ada", headers=ada.headers)).status_code == 409
    assert (
        await client.put(f"{put}/ada", headers=ada.headers, json={"permission": "read"})
    ).status_code == 409

    # Out of the group, out of the project; a removed member: 404; removing twice: 404.
    assert (await client.delete(f"{GROUPS}/{team['id']}/members/dan", headers=cy.headers)).status_code == 204
    assert (await client.get(f"{PROJECTS}/{pid}", headers=dan.headers)).status_code == 404
    assert (await client.delete(f"{put}/bob", headers=ada.headers)).status_code == 204
    assert (await client.delete(f"{put}/bob", headers=ada.headers)).status_code == 404
    assert (await client.get(f"{PROJECTS}/{pid}", headers=bob.headers)).status_code == 404
    assert pid not in [p["id"] for p in (_ok(await client.get(PROJECTS, headers=bob.headers)))["items"]]

    # A deleted group's memberships go with it; an admin sees and deletes any project.
    _ok(await client.put(f"{GROUPS}/{team['id']}/members/dan", headers=cy.headers))
    assert (await client.delete(f"{GROUPS}/{team['id']}", headers=cy.headers)).status_code == 204
    assert [m["member_kind"] for m in (_ok(await client.get(put, headers=ada.headers)))["items"]] == [
        "user",
        "user",
    ]  # ada (owner) and cy
    assert (await client.get(f"{PROJECTS}/{pid}", headers=dan.headers)).status_code == 404
    every = (_ok(await client.get(PROJECTS, headers=admin_headers)))["items"]
    assert len(every) == 2 and pid in [p["id"] for p in every]
    assert (await client.delete(f"{PROJECTS}/{pid}", headers=admin_headers)).status_code == 204
    for who in (ada, cy):
        assert (await client.get(f"{PROJECTS}/{pid}", headers=who.headers)).status_code == 404
    assert (_ok(await client.get(PROJECTS, headers=cy.headers)))["items"] == []


async def test_folders_and_linked_assets(
    client: Client, admin_headers: dict[str, str], ada: Caller, bob: Caller, cy: Caller, dan: Caller
) -> None:
    pid = (_ok(await client.post(PROJECTS, headers=ada.headers, json={"name": "P"}), 201))["id"]
    other = (_ok(await client.post(PROJECTS, headers=ada.headers, json={"name": "Q"}), 201))["id"]
    members = f"{PROJECTS}/{pid}/members"
    _ok(await client.put(f"{members}/bob", headers=ada.headers, json={"permission": "read"}))
    _ok(await client.put(f"{members}/cy", headers=ada.headers, json={"permission": "write"}))
    _ok(await client.put(f"{members}/dan", headers=ada.headers, json={"permission": "write"}))

    # Folders: a writer makes them, a reader lists them and may not make one; names per project.
    folders = f"{PROJECTS}/{pid}/folders"
    raw = _ok(await client.post(folders, headers=cy.headers, json={"name": "raw"}), 201)
    assert (raw["project_id"], raw["name"]) == (pid, "raw")
    assert (await client.post(folders, headers=ada.headers, json={"name": "raw"})).status_code == 409
    assert (await client.post(folders, headers=bob.headers, json={"name": "x"})).status_code == 403
    foreign = _ok(
        await client.post(f"{PROJECTS}/{other}/folders", headers=ada.headers, json={"name": "raw"}), 201
    )
    clean = _ok(await client.post(folders, headers=ada.headers, json={"name": "clean"}), 201)
    listed = (_ok(await client.get(folders, headers=bob.headers)))["items"]
    assert [f["id"] for f in listed] == [raw["id"], clean["id"]]

    # Linking: the project's writer who owns the asset, at the root or in a folder of this project.
    links = f"{PROJECTS}/{pid}/assets"
    a1, a2, a3 = [await _upload(client, ada, f"a{i}.csv") for i in (1, 2, 3)]
    root = _ok(await client.put(f"{links}/{a1}", headers=ada.headers))
    assert (root["project_id"], root["asset_id"], root["folder_id"], root["added_by"]) == (
        pid,
        a1,
        None,
        ada.id,
    )
    inside = _ok(await client.put(f"{links}/{a2}", headers=ada.headers, params={"folder": raw["id"]}))
    assert inside["folder_id"] == raw["id"]
    _ok(await client.put(f"{links}/{a3}", headers=ada.headers, params={"folder": clean["id"]}))
    assert (
        await client.put(f"{links}/{a1}", headers=ada.headers, params={"folder": foreign["id"]})
    ).status_code == 404
    assert (await client.put(f"{links}/01HZZZZZZZZZZZZZZZZZZZZZZZ", headers=ada.headers)).status_code == 404

    # A reader may not link (403); a writer may not link an asset they do not own: 404 while they
    # cannot read it, 403 once they can (through this very project, if the policy says so).
    d1 = await _upload(client, dan, "d1.csv")
    assert (await client.put(f"{links}/{d1}", headers=bob.headers)).status_code == 403
    b1 = await _upload(client, bob, "b1.csv")
    assert (await client.put(f"{links}/{b1}", headers=bob.headers)).status_code == 403
    assert (await client.put(f"{links}/{d1}", headers=cy.headers)).status_code == 404
    cy_reads_a1 = (await client.get(f"/api/v1/assets/{a1}", headers=cy.headers)).status_code == 200
    moved_by_cy = await client.put(f"{links}/{a1}", headers=cy.headers, params={"folder": raw["id"]})
    assert moved_by_cy.status_code == (403 if cy_reads_a1 else 404), moved_by_cy.text

    # Lists: every link, the root's, one folder's; paged; an unknown folder: 404.
    async def ids(**params: Any) -> list[str]:
        page = _ok(await client.get(links, headers=bob.headers, params=params))
        return [link["asset_id"] for link in page["items"]]

    assert await ids() == [a3, a2, a1]
    assert await ids(folder="root") == [a1]
    assert await ids(folder=raw["id"]) == [a2]
    first = _ok(await client.get(links, headers=bob.headers, params={"limit": 2}))
    rest = _ok(await client.get(links, headers=bob.headers, params={"cursor": first["next_cursor"]}))
    assert [x["asset_id"] for x in first["items"] + rest["items"]] == [a3, a2, a1]
    assert (await client.get(links, headers=bob.headers, params={"folder": foreign["id"]})).status_code == 404
    assert (await client.get(links, headers=dan.headers, params={"folder": "x"})).status_code == 422

    # Linking again moves; deleting a folder moves its assets to the root (reader: 403).
    _ok(await client.put(f"{links}/{a1}", headers=ada.headers, params={"folder": raw["id"]}))
    assert await ids(folder=raw["id"]) == [a2, a1]
    assert (await client.delete(f"{folders}/{raw['id']}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{folders}/{foreign['id']}", headers=cy.headers)).status_code == 404
    assert (await client.delete(f"{folders}/{raw['id']}", headers=cy.headers)).status_code == 204
    assert await ids(folder="root") == [a2, a1]
    assert [f["id"] for f in (_ok(await client.get(folders, headers=ada.headers)))["items"]] == [clean["id"]]

    # Unlinking: a writer, or the asset's owner even when no longer a member; not a reader.
    _ok(await client.put(f"{links}/{d1}", headers=dan.headers))
    assert (await client.delete(f"{members}/dan", headers=ada.headers)).status_code == 204
    assert (await client.delete(f"{links}/{a1}", headers=bob.headers)).status_code == 403
    assert (await client.delete(f"{links}/{a1}", headers=cy.headers)).status_code == 204
    assert (await client.delete(f"{links}/{a1}", headers=cy.headers)).status_code == 404
    assert (await client.delete(f"{links}/{a2}", headers=dan.headers)).status_code == 404
    assert (await client.delete(f"{links}/{d1}", headers=dan.headers)).status_code == 204
    assert await ids() == [a3, a2]

    # An admin links anyone's asset; a deleted asset leaves the project.
    _ok(await client.put(f"{links}/{b1}", headers=admin_headers))
    assert (await client.delete(f"/api/v1/assets/{a2}", headers=ada.headers)).status_code == 204
    assert await ids() == sorted([b1, a3], reverse=True)

    # Deleting the project takes its folders, links and members; the assets stay.
    assert (await client.delete(f"{PROJECTS}/{pid}", headers=ada.headers)).status_code == 204
    assert (await client.get(links, headers=ada.headers)).status_code == 404
    assert (await client.get(f"{PROJECTS}/{pid}/folders", headers=ada.headers)).status_code == 404
    assert (await client.get(f"/api/v1/assets/{a3}", headers=ada.headers)).status_code == 200
    assert [p["id"] for p in (_ok(await client.get(PROJECTS, headers=ada.headers)))["items"]] == [other]
    assert (_ok(await client.get(PROJECTS, headers=cy.headers)))["items"] == []
