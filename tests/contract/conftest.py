"""Fixtures shared by the contract suites: the system of record on every adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """A migrated, empty system-of-record adapter, opened as production opens it, by URL."""
    if request.param == "memory":
        url = "memory://"
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/contract.db"
    else:
        url = request.getfixturevalue("postgres_url")
    bootstrap.migrate(Settings(database_url=url, data_dir=tmp_path))
    async with bootstrap.open_adapter(
        bootstrap.DATABASES, url, setting="STUDIO9_DATABASE_URL", options=AdapterOptions(data_dir=tmp_path)
    ) as adapter:
        yield adapter
