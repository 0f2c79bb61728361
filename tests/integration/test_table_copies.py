"""Copy-on-write table copies over HTTP (memory://, SQLite, PostgreSQL): a copy shares its source's
Parquet parts (no new blob), every copy stays whole whichever table is deleted first, and the
blobs go once the last table holding them is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from studio9.api import create_app
from studio9.config import Settings
from tests.conftest import database_settings
from tests.integration.test_http_tables import FAST, ROWS, SALES, TABLES, Client, _import, _stats_done, _user


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    # Blobs on disk, so that the test can count them.
    return await database_settings(request, tmp_path, blob_url=f"file://{tmp_path}/blobs", **FAST)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as test_client:
        yield test_client


@pytest.fixture
async def ada(client: Client, admin_headers: dict[str, str]) -> dict[str, str]:
    return await _user(client, admin_headers, "ada")


def _table_blobs(settings: Settings) -> set[str]:
    root = Path(settings.blob_url.removeprefix("file://"))
    tables = root / "tables"
    return {str(p.relative_to(root)) for p in tables.rglob("*") if p.is_file()} if tables.exists() else set()


async def _copy(client: Client, headers: dict[str, str], table_id: str, name: str) -> dict[str, Any]:
    copied = await client.post(f"{TABLES}/{table_id}/copy", headers=headers, json={"name": name})
    assert copied.status_code == 201, copied.text
    body: dict[str, Any] = copied.json()
    return body


async def _rows(client: Client, headers: dict[str, str], table_id: str) -> list[int]:
    page = await client.get(f"{TABLES}/{table_id}/rows", headers=headers, params={"limit": 1000})
    assert page.status_code == 200, page.text
    return [row["amount"] for row in page.json()["rows"]]


async def _versions(client: Client, headers: dict[str, str], asset_id: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/api/v1/assets/{asset_id}/versions", headers=headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def test_a_copy_shares_the_parts_and_survives_any_delete_order(
    client: Client, settings: Settings, ada: dict[str, str]
) -> None:
    table, job = await _import(client, ada, SALES)
    assert job["status"] == "completed", job
    await _stats_done(client, ada, table["id"])
    before = _table_blobs(settings)
    assert before

    first = await _copy(client, ada, table["id"], "first copy")
    second = await _copy(client, ada, first["id"], "copy of the copy")
    assert _table_blobs(settings) == before  # copy-on-write: not one byte written
    original_parts = (await _versions(client, ada, table["id"]))[0]["content"]["parts"]
    for copy in (first, second):
        (version,) = await _versions(client, ada, copy["id"])
        assert version["content"]["parts"] == original_parts
        assert (await _stats_done(client, ada, copy["id"]))["status"] == "done"

    # The original goes first (forced: copies depend on it); both copies stay whole.
    refused = await client.delete(f"/api/v1/assets/{table['id']}", headers=ada)
    assert refused.status_code == 409, refused.text
    assert [d["id"] for d in refused.json()["dependents"]] == [first["id"]]
    assert (await client.delete(f"/api/v1/assets/{table['id']}?force=true", headers=ada)).status_code == 204
    assert _table_blobs(settings) == before
    assert await _rows(client, ada, first["id"]) == list(range(ROWS))
    # Then the middle copy: the last one still reads every row.
    assert (await client.delete(f"/api/v1/assets/{first['id']}?force=true", headers=ada)).status_code == 204
    assert await _rows(client, ada, second["id"]) == list(range(ROWS))
    assert (await _stats_done(client, ada, second["id"]))["status"] == "done"
    # The last holder gone, so are the blobs.
    assert (await client.delete(f"/api/v1/assets/{second['id']}", headers=ada)).status_code == 204
    assert _table_blobs(settings) == set()


async def test_deleting_a_copy_leaves_the_original_untouched(
    client: Client, settings: Settings, ada: dict[str, str]
) -> None:
    table, _ = await _import(client, ada, SALES)
    await _stats_done(client, ada, table["id"])
    before = _table_blobs(settings)
    copy = await _copy(client, ada, table["id"], "scratch")
    assert (await client.delete(f"/api/v1/assets/{copy['id']}", headers=ada)).status_code == 204
    assert _table_blobs(settings) == before
    assert await _rows(client, ada, table["id"]) == list(range(ROWS))
    assert (await client.delete(f"/api/v1/assets/{table['id']}", headers=ada)).status_code == 204
    assert _table_blobs(settings) == set()
