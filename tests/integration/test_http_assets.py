"""The catalog over HTTP, through the whole app (memory://, SQLite and PostgreSQL): uploads become
``file`` assets; read, versions, rename, library names, deletes refused for dependents or forced,
lineage; and another user meets a 404 on every asset route of someone else's.

Derived assets (tables, models) have no routes of their own yet: the tests make them, and record
their lineage, through the container's ``CatalogService``, as the jobs that make them will.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.catalog.domain import AssetKind
from studio9.catalog.service import CatalogService
from studio9.config import Settings
from tests.conftest import database_settings

Client = AsyncTestClient[Litestar]
ASSETS = "/api/v1/assets"


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return await database_settings(request, tmp_path)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, background=False)) as test_client:
        yield test_client


@pytest.fixture
def catalog(client: Client) -> CatalogService:
    service: CatalogService = client.app.state.container.catalog
    return service


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "ada")


@pytest.fixture
async def bob(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "bob")


async def _user(client: Client, admin_headers: dict[str, str], name: str) -> dict[str, str]:
    created = await client.post("/api/v1/users", headers=admin_headers, json={"username": name})
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']['token']}"}


async def _user_id(client: Client, headers: dict[str, str]) -> str:
    me = await client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    user_id: str = me.json()["id"]
    return user_id


async def _upload(client: Client, headers: dict[str, str], name: str = "sales.csv") -> dict[str, Any]:
    response = await client.post(f"/api/v1/files?name={name}", headers=headers, content=b"a,b\n1,2\n")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _derived(
    catalog: CatalogService, owner_id: str, name: str, *inputs: str, kind: AssetKind = AssetKind.TABLE
) -> str:
    """A version-1 asset made from version 1 of ``inputs`` by a job, as a table import would be."""
    asset = await catalog.create(owner_id=owner_id, kind=kind, name=name, content={"row_count": 1})
    await catalog.record_lineage(
        job_id=f"job-{name}", inputs=[(i, 1) for i in inputs], outputs=[(asset.id, 1)]
    )
    return asset.id


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


async def test_an_upload_is_a_file_asset_with_its_content(client: Client, ada: dict[str, str]) -> None:
    uploaded = await _upload(client, ada, "résultats.csv")
    response = await client.get(f"{ASSETS}/{uploaded['id']}", headers=ada)
    assert response.status_code == 200, response.text
    asset = response.json()
    assert asset["id"] == uploaded["id"]
    assert (asset["kind"], asset["name"], asset["status"]) == ("file", "résultats.csv", "active")
    assert (asset["latest_version"], asset["in_library"], asset["tags"]) == (1, False, [])
    assert asset["owner_id"] == await _user_id(client, ada)
    assert asset["version"]["version"] == 1
    assert asset["version"]["content"] == {
        "file_id": uploaded["id"],
        "size": uploaded["size"],
        "sha256": uploaded["sha256"],
        "content_type": uploaded["content_type"],
    }
    versions = await client.get(f"{ASSETS}/{uploaded['id']}/versions", headers=ada)
    assert [v["version"] for v in versions.json()["items"]] == [1]
    assert versions.json()["next_cursor"] is None


async def test_old_versions_stay_readable(
    client: Client, ada: dict[str, str], catalog: CatalogService
) -> None:
    owner = await _user_id(client, ada)
    asset = await catalog.create(owner_id=owner, kind=AssetKind.TABLE, name="t", content={"rows": 1})
    for rows in (2, 3):
        await catalog.add_version(asset.id, {"rows": rows}, expected_latest=rows - 1, job_id="job-x")
    latest = (await client.get(f"{ASSETS}/{asset.id}", headers=ada)).json()
    assert (latest["latest_version"], latest["version"]["content"]) == (3, {"rows": 3})
    old = (await client.get(f"{ASSETS}/{asset.id}?version=1", headers=ada)).json()
    assert (old["version"]["version"], old["version"]["content"], old["version"]["job_id"]) == (
        1,
        {"rows": 1},
        None,
    )
    _problem(await client.get(f"{ASSETS}/{asset.id}?version=4", headers=ada), 404)
    first = (await client.get(f"{ASSETS}/{asset.id}/versions?limit=2", headers=ada)).json()
    assert [v["version"] for v in first["items"]] == [3, 2]
    rest = await client.get(f"{ASSETS}/{asset.id}/versions?cursor={first['next_cursor']}", headers=ada)
    assert [v["version"] for v in rest.json()["items"]] == [1]


async def test_the_library_refuses_a_bad_cursor_or_kind(client: Client, ada: dict[str, str]) -> None:
    # What it lists: tests/integration/test_http_library.py (its index is fed by the loops).
    _problem(await client.get(f"{ASSETS}?cursor=garbage", headers=ada), 422)
    _problem(await client.get(f"{ASSETS}?kind=spreadsheet", headers=ada), 422)
    _problem(await client.get(f"{ASSETS}?scope=everyone", headers=ada), 422)
    _problem(await client.get(f"{ASSETS}?order=updated", headers=ada), 422)


async def test_patch_renames_describes_tags_and_joins_the_library(
    client: Client, ada: dict[str, str]
) -> None:
    file_id = (await _upload(client, ada))["id"]
    body = {
        "name": "Ventes 2026",
        "description": "raw export",
        "tags": ["sales", "raw", "sales"],
        "in_library": True,
    }
    response = await client.patch(f"{ASSETS}/{file_id}", headers=ada, json=body)
    assert response.status_code == 200, response.text
    changed = response.json()
    assert (changed["name"], changed["description"], changed["tags"], changed["in_library"]) == (
        "Ventes 2026",
        "raw export",
        ["sales", "raw"],
        True,
    )
    assert changed["updated_at"] > changed["created_at"]
    kept = (await client.patch(f"{ASSETS}/{file_id}", headers=ada, json={"description": ""})).json()
    assert (kept["name"], kept["tags"], kept["description"]) == ("Ventes 2026", ["sales", "raw"], "")
    for bad in (
        {"name": "a/b"},
        {"name": " padded"},
        {"tags": ["no spaces"]},
        {"owner_id": "x"},
        {"name": None},
    ):
        _problem(await client.patch(f"{ASSETS}/{file_id}", headers=ada, json=bad), 422)


async def test_library_names_are_unique_per_owner_and_kind(
    client: Client, ada: dict[str, str], bob: dict[str, str]
) -> None:
    first, second = (
        (await _upload(client, ada, "same.csv"))["id"],
        (await _upload(client, ada, "same.csv"))["id"],
    )
    assert (
        await client.patch(f"{ASSETS}/{first}", headers=ada, json={"in_library": True})
    ).status_code == 200
    taken = _problem(await client.patch(f"{ASSETS}/{second}", headers=ada, json={"in_library": True}), 409)
    assert "same.csv" in taken["detail"]
    other = (await _upload(client, ada, "other.csv"))["id"]
    await client.patch(f"{ASSETS}/{other}", headers=ada, json={"in_library": True})
    _problem(await client.patch(f"{ASSETS}/{other}", headers=ada, json={"name": "same.csv"}), 409)
    assert (await client.get(f"{ASSETS}/{other}", headers=ada)).json()["name"] == "other.csv"
    # Another user's library is theirs.
    theirs = (await _upload(client, bob, "same.csv"))["id"]
    assert (
        await client.patch(f"{ASSETS}/{theirs}", headers=bob, json={"in_library": True})
    ).status_code == 200


async def test_a_delete_is_refused_while_others_derive_from_the_asset(
    client: Client, ada: dict[str, str], catalog: CatalogService
) -> None:
    owner = await _user_id(client, ada)
    file_id = (await _upload(client, ada))["id"]
    table = await _derived(catalog, owner, "clean sales", file_id)
    model = await _derived(catalog, owner, "forecast", file_id, kind=AssetKind.MODEL)
    refused = _problem(await client.delete(f"{ASSETS}/{file_id}", headers=ada), 409)
    assert table in refused["detail"] and model in refused["detail"]
    assert "clean sales" in refused["detail"] and "forecast" in refused["detail"]
    # The files route is refused alike, and the file is still whole.
    _problem(await client.delete(f"/api/v1/files/{file_id}", headers=ada), 409)
    assert (await client.get(f"/api/v1/files/{file_id}/content", headers=ada)).content == b"a,b\n1,2\n"
    assert (await client.get(f"{ASSETS}/{file_id}", headers=ada)).status_code == 200


async def test_a_forced_delete_leaves_lineage_pointing_to_a_deleted_asset(
    client: Client, ada: dict[str, str], catalog: CatalogService
) -> None:
    file_id = (await _upload(client, ada))["id"]
    table = await _derived(catalog, await _user_id(client, ada), "clean", file_id)
    assert (await client.delete(f"{ASSETS}/{file_id}?force=true", headers=ada)).status_code == 204
    _problem(await client.get(f"{ASSETS}/{file_id}", headers=ada), 404)
    # The file went with its asset.
    _problem(await client.get(f"/api/v1/files/{file_id}", headers=ada), 404)
    graph = (await client.get(f"{ASSETS}/{table}/lineage?direction=up", headers=ada)).json()
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes[file_id] == {
        "id": file_id,
        "kind": None,
        "name": None,
        "version": None,
        "status": None,
        "deleted": True,
        "redacted": False,
    }
    assert nodes[table]["deleted"] is False
    assert [(e["input_id"], e["output_id"]) for e in graph["edges"]] == [(file_id, table)]
    # Nothing depends on the table: a plain delete goes through.
    assert (await client.delete(f"{ASSETS}/{table}", headers=ada)).status_code == 204


async def test_deleting_a_file_deletes_its_asset(client: Client, ada: dict[str, str]) -> None:
    file_id = (await _upload(client, ada))["id"]
    assert (await client.delete(f"/api/v1/files/{file_id}", headers=ada)).status_code == 204
    _problem(await client.get(f"{ASSETS}/{file_id}", headers=ada), 404)


async def test_lineage_goes_up_and_down_to_a_depth(
    client: Client, ada: dict[str, str], catalog: CatalogService
) -> None:
    owner = await _user_id(client, ada)
    raw = (await _upload(client, ada, "raw.csv"))["id"]
    clean = await _derived(catalog, owner, "clean", raw)
    features = await _derived(catalog, owner, "features", clean)
    model = await _derived(catalog, owner, "model", features, kind=AssetKind.MODEL)

    async def lineage(asset_id: str, query: str) -> tuple[set[str], set[tuple[str, str]]]:
        response = await client.get(f"{ASSETS}/{asset_id}/lineage?{query}", headers=ada)
        assert response.status_code == 200, response.text
        graph = response.json()
        return {n["id"] for n in graph["nodes"]}, {(e["input_id"], e["output_id"]) for e in graph["edges"]}

    nodes, edges = await lineage(model, "direction=up&depth=2")
    assert nodes == {model, features, clean}
    assert edges == {(clean, features), (features, model)}
    nodes, _ = await lineage(model, "direction=up&depth=20")
    assert nodes == {model, features, clean, raw}
    nodes, _ = await lineage(raw, "direction=down&depth=1")
    assert nodes == {raw, clean}
    nodes, edges = await lineage(features, "direction=both&depth=1")
    assert nodes == {clean, features, model}
    assert edges == {(clean, features), (features, model)}
    graph = (await client.get(f"{ASSETS}/{clean}/lineage", headers=ada)).json()
    node = next(n for n in graph["nodes"] if n["id"] == raw)
    assert (node["kind"], node["name"], node["version"], node["deleted"]) == ("file", "raw.csv", 1, False)
    assert graph["edges"][0]["job_id"] == "job-clean"
    assert graph["truncated"] is False
    _problem(await client.get(f"{ASSETS}/{clean}/lineage?depth=0", headers=ada), 422)
    _problem(await client.get(f"{ASSETS}/{clean}/lineage?direction=sideways", headers=ada), 422)


async def test_another_user_gets_404_on_every_asset_route(
    client: Client, ada: dict[str, str], bob: dict[str, str], catalog: CatalogService
) -> None:
    file_id = (await _upload(client, ada))["id"]
    await _derived(catalog, await _user_id(client, ada), "derived", file_id)
    routes = [
        ("GET", f"{ASSETS}/{file_id}", None),
        ("GET", f"{ASSETS}/{file_id}?version=1", None),
        ("GET", f"{ASSETS}/{file_id}/versions", None),
        ("GET", f"{ASSETS}/{file_id}/lineage", None),
        ("PATCH", f"{ASSETS}/{file_id}", {"name": "mine now"}),
        ("DELETE", f"{ASSETS}/{file_id}", None),
        ("DELETE", f"{ASSETS}/{file_id}?force=true", None),
    ]
    for method, url, body in routes:
        response = await client.request(method, url, headers=bob, json=body)
        assert _problem(response, 404)["detail"] == f"asset {file_id!r} not found", (method, url)
    # The library never lists it for bob: tests/integration/test_http_library.py (it needs the indexer).
    # Nothing of the owner's changed.
    asset = (await client.get(f"{ASSETS}/{file_id}", headers=ada)).json()
    assert asset["name"] == "sales.csv"
