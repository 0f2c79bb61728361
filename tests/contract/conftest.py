"""Fixtures shared by the contract suites: the system of record on every adapter."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from dramatiq.common import dq_name, xq_name

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from tests.services import RABBITMQ_URL, require


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


@pytest.fixture
def queue_name() -> str:
    return f"jobs-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def amqp_url(queue_name: str) -> Iterator[str]:
    url = require("RabbitMQ", RABBITMQ_URL)
    yield url
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for name in (queue_name, dq_name(queue_name), xq_name(queue_name)):
            channel.queue_delete(queue=name)
    finally:
        connection.close()
