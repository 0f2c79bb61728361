"""The asset library over HTTP (memory://, SQLite, PostgreSQL), with the background loops running
so that the indexer feeds it: scopes, kinds, tags, projects, folders, words, orders and facets,
and never a hit or a count of what the caller may not read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings
from tests.integration.test_http_tables import FAST, Client, _user

ASSETS = "/api/v1/assets"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path, **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


async def _upload(client: Client, headers: dict[str, str], name: str) -> str:
    response = await client.post(f"/api/v1/files?name={name}", headers=headers, content=b"a\n1\n")
    assert response.status_code == 201, response.text
    file_id: str = response.json()["id"]
    return file_id


async def _asset(client: Client, headers: dict[str, str], name: str, tags: list[str]) -> str:
    """An uploaded file, named ``name``, tagged, in its owner's library."""
    file_id = await _upload(client, headers, f"{name}.csv")
    body = {"name": name, "tags": tags, "in_library": True}
    changed = await client.patch(f"{ASSETS}/{file_id}", headers=headers, json=body)
    assert changed.status_code == 200, changed.text
    return file_id


async def library(
    client: Client, headers: dict[str, str], until: Callable[[dict[str, Any]], bool], **params: Any
) -> dict[str, Any]:
    """The first page for ``params`` once ``until(page)`` holds (the indexer drains every second)."""
    page: dict[str, Any] = {}
    for _ in range(300):
        response = await client.get(ASSETS, headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        if until(page):
            return page
        await asyncio.sleep(0.05)
    raise AssertionError(f"the library never showed what was expected: {page}")


def _ids(page: dict[str, Any]) -> list[str]:
    return [a["id"] for a in page["items"]]


async def test_the_library_shows_and_counts_only_what_the_caller_may_read(
    client: Client, admin_headers: dict[str, str]
) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    sales = await _asset(client, ada, "sales 2026", ["sales", "q1"])
    costs = await _asset(client, ada, "costs", ["finance"])
    secret = await _asset(client, ada, "secret plans", ["sales"])
    theirs = await _asset(client, bob, "bob notes", ["notes"])

    mine = await library(client, ada, lambda p: len(p["items"]) == 3)
    assert set(_ids(mine)) == {sales, costs, secret}
    assert mine["facets"]["tag"] == {"sales": 2, "finance": 1, "q1": 1}
    # Bob sees his own; ada's exist for him nowhere, not even in the counts.
    seen = await library(client, bob, lambda p: len(p["items"]) == 1)
    assert _ids(seen) == [theirs]
    assert seen["facets"]["tag"] == {"notes": 1}
    assert sum(seen["facets"]["owner"].values()) == 1

    shared = await client.post(f"{ASSETS}/{sales}/shares", headers=ada, json={"user": "bob"})
    assert shared.status_code == 201, shared.text
    both = await library(client, bob, lambda p: len(p["items"]) == 2)
    assert set(_ids(both)) == {sales, theirs}
    assert both["facets"]["tag"] == {"notes": 1, "q1": 1, "sales": 1}  # not the secret's "sales"
    only_shared = await library(client, bob, lambda p: True, scope="shared")
    assert _ids(only_shared) == [sales]
    assert _ids(await library(client, bob, lambda p: True, scope="personal")) == [theirs]
    assert _ids(await library(client, bob, lambda p: True, q="sales")) == [sales]
    assert _ids(await library(client, bob, lambda p: True, tag="notes")) == [theirs]

    # Taken back: out of the hits and the counts again.
    await client.delete(f"/api/v1/shares/{shared.json()['id']}", headers=ada)
    gone = await library(client, bob, lambda p: len(p["items"]) == 1)
    assert _ids(gone) == [theirs]
    assert gone["facets"]["tag"] == {"notes": 1}
    # An admin's library holds everything.
    every = await library(client, admin_headers, lambda p: len(p["items"]) >= 4)
    assert {sales, costs, secret, theirs} <= set(_ids(every))


async def test_projects_folders_orders_and_paging(client: Client, admin_headers: dict[str, str]) -> None:
    ada, bob = await _user(client, admin_headers, "ada"), await _user(client, admin_headers, "bob")
    names = ["delta", "Alpha", "charlie", "bravo"]
    ids = {name: await _asset(client, ada, name, []) for name in names}
    project = (await client.post("/api/v1/projects", headers=ada, json={"name": "survey"})).json()
    folder = (
        await client.post(f"/api/v1/projects/{project['id']}/folders", headers=ada, json={"name": "raw"})
    ).json()
    linked = await client.put(
        f"/api/v1/projects/{project['id']}/assets/{ids['bravo']}",
        headers=ada,
        params={"folder": folder["id"]},
    )
    assert linked.status_code == 200, linked.text
    await client.put(f"/api/v1/projects/{project['id']}/assets/{ids['delta']}", headers=ada)
    member = await client.put(
        f"/api/v1/projects/{project['id']}/members/bob", headers=ada, json={"permission": "read"}
    )
    assert member.status_code == 200, member.text

    in_project = await library(client, bob, lambda p: len(p["items"]) == 2, project=project["id"])
    assert set(_ids(in_project)) == {ids["bravo"], ids["delta"]}
    in_folder = await library(client, bob, lambda p: len(p["items"]) == 1, folder=folder["id"])
    assert _ids(in_folder) == [ids["bravo"]]

    # By name (case-insensitive), two at a time: every one once, in order.
    await library(client, ada, lambda p: len(p["items"]) == 4)
    seen: list[str] = []
    params: dict[str, Any] = {"order": "name", "limit": 2}
    while True:
        page = (await client.get(ASSETS, headers=ada, params=params)).json()
        seen += [a["name"] for a in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == ["Alpha", "bravo", "charlie", "delta"]
    newest = (await client.get(ASSETS, headers=ada, params={"order": "newest"})).json()
    assert [a["name"] for a in newest["items"]] == names[::-1]
