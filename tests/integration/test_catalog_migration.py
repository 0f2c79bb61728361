"""Migration 0008 makes every file uploaded before it a ``file`` asset, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from adapters.sql.migrations import sync_url
from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.catalog.domain import AssetKind, AssetStatus
from studio9.config import Settings
from studio9.ids import new_id
from studio9.urls import AdapterURL

UPLOADED = datetime(2026, 2, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/catalog.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


def _insert_files(url: str, rows: list[dict[str, Any]]) -> None:
    files = sa.table(
        "files",
        *(sa.column(n) for n in ("id", "owner_id", "name", "size", "sha256", "content_type", "blob_key")),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    engine = sa.create_engine(sync_url(AdapterURL.parse(url)))
    try:
        with engine.begin() as connection:
            connection.execute(sa.insert(files), rows)
    finally:
        engine.dispose()


async def test_existing_files_become_file_assets(database_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=database_url, data_dir=tmp_path)
    bootstrap.migrate(settings, revision="0007")
    ids = [new_id(), new_id()]
    created = UPLOADED if database_url.startswith("postgresql") else UPLOADED.replace(tzinfo=None)
    _insert_files(
        database_url,
        [
            {
                "id": ids[0],
                "owner_id": "owner-a",
                "name": "résultats.csv",
                "size": 5 * 1024**3,
                "sha256": "ab" * 32,
                "content_type": "text/csv",
                "blob_key": f"files/{ids[0]}",
                "created_at": created,
            },
            {
                "id": ids[1],
                "owner_id": "owner-a",
                "name": "résultats.csv",  # same name: outside the library, no clash
                "size": 0,
                "sha256": "cd" * 32,
                "content_type": None,
                "blob_key": f"files/{ids[1]}",
                "created_at": created,
            },
        ],
    )
    bootstrap.migrate(settings)
    async with bootstrap.open_adapter(
        bootstrap.DATABASES,
        database_url,
        setting="STUDIO9_DATABASE_URL",
        options=AdapterOptions(data_dir=tmp_path),
    ) as database:
        assets = await database.catalog.list("owner-a", kind=AssetKind.FILE, limit=10)
        assert sorted(a.id for a in assets) == sorted(ids)
        first = await database.catalog.get(ids[0])
        assert (first.name, first.status, first.in_library, first.latest_version) == (
            "résultats.csv",
            AssetStatus.ACTIVE,
            False,
            1,
        )
        assert first.created_at == UPLOADED
        version = await database.catalog.get_version(ids[0])
        assert version.content == {
            "file_id": ids[0],
            "size": 5 * 1024**3,
            "sha256": "ab" * 32,
            "content_type": "text/csv",
        }
        assert (await database.catalog.get_version(ids[1])).content[
            "content_type"
        ] == "application/octet-stream"
    bootstrap.migrate(settings, revision="0007", downgrade=True)
    bootstrap.migrate(settings)  # down and up again: the files are assets once more
    async with bootstrap.open_adapter(
        bootstrap.DATABASES,
        database_url,
        setting="STUDIO9_DATABASE_URL",
        options=AdapterOptions(data_dir=tmp_path),
    ) as database:
        assert len(await database.catalog.list("owner-a", kind=None, limit=10)) == 2
