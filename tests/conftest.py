"""Shared fixtures: settings for each backend, a running app, and real databases."""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient

from studio9 import bootstrap
from studio9.api import create_app
from studio9.config import Settings
from tests.services import POSTGRES_ADMIN_URL, require


def memory_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings whose every backend is in memory (the data dir only receives the admin token)."""
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": "memory://",
        "index_url": "memory://",
        "blob_url": "memory://",
        "sink_url": "memory://",
        "auth_cache_seconds": 0.0,
    }
    values.update(overrides)
    return Settings(**values)


async def database_settings(request: pytest.FixtureRequest, tmp_path: Path, **overrides: Any) -> Settings:
    """``memory_settings`` on the system of record ``request.param`` names (memory, sqlite or
    postgresql), migrated: for fixtures parametrized over databases."""
    if request.param == "memory":
        return memory_settings(tmp_path, **overrides)
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/s9.db"
    settings = memory_settings(tmp_path, database_url=url, **overrides)
    await asyncio.to_thread(bootstrap.migrate, settings)
    return settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return memory_settings(tmp_path)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def admin_token(client: AsyncTestClient[Litestar], settings: Settings) -> str:
    return (settings.data_dir / "admin-token").read_text().strip()


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return require("PostgreSQL", POSTGRES_ADMIN_URL)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"studio9_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = postgres_server.rpartition("/")
    try:
        yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on a free loopback port (S3, SQS, SNS…), with fake credentials in the environment.

    moto's decorators do not patch aioboto3, so AWS adapters are pointed at this server through
    their URL's ``endpoint_url`` parameter, exactly as they would be at LocalStack.
    """
    from moto.server import ThreadedMotoServer

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
