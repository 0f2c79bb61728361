"""Config caches across processes: a write through one process reaches the other's ``cached()``
through the change event, long before the cache lifetime (300 s here) would let it.

Two containers built from the same settings stand for two processes (an API and a worker):
they share the system of record (a SQLite file) and the events destination, and each is
``running`` (which is what listens), as ``studio9 api`` and ``studio9 worker`` are.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pika
import pytest

from studio9 import bootstrap
from studio9.auth.domain import Principal, Role
from studio9.bootstrap import Container
from studio9.config import Settings
from studio9.config.domain import ConfigSetting
from studio9.processes import running
from tests.conftest import memory_settings
from tests.contract.test_job_broker import _server_connections
from tests.services import RABBITMQ_URL, require

ADMIN = Principal(
    user_id="admin",
    username="admin",
    role=Role.ADMIN,
    token_id="t",
    token_expires_at=datetime.now(UTC) + timedelta(days=1),
)
LONG_CACHE = 300.0  # any change seen within the test came through an event


@pytest.fixture(params=[pytest.param("amqp", marks=pytest.mark.service("rabbitmq")), "sns"])
def events_url(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"studio9-test-{uuid.uuid4().hex[:10]}"
    if request.param == "amqp":
        base = require("RabbitMQ", RABBITMQ_URL)
        yield f"{base}?exchange={name}"
        connection = pika.BlockingConnection(pika.URLParameters(base))
        try:
            connection.channel().exchange_delete(name)
        finally:
            connection.close()
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    yield f"sns://{name}?region=us-east-1&endpoint_url={endpoint}&create=true"
    sns = boto3.client("sns", endpoint_url=endpoint, region_name="us-east-1")
    for topic in sns.list_topics()["Topics"]:
        if topic["TopicArn"].endswith(":" + name):
            sns.delete_topic(TopicArn=topic["TopicArn"])


def shared_settings(tmp_path: Path, events_url: str) -> Settings:
    settings = memory_settings(
        tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/shared.db",
        events_url=events_url,
        auth_cache_seconds=LONG_CACHE,
    )
    bootstrap.migrate(settings)
    return settings


@contextlib.asynccontextmanager
async def process(settings: Settings) -> AsyncIterator[Container]:
    """One 'process': its own container, serving (so listening), without workers or loops."""
    async with bootstrap.build(settings) as container, running(container, workers=False, loops=False):
        yield container


async def eventually(read: Callable[[], Any], expected: Any, *, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while (got := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {got!r}, not {expected!r}, after {timeout}s")
        await asyncio.sleep(0.02)


async def test_a_write_in_one_process_is_seen_by_the_others_cache(tmp_path: Path, events_url: str) -> None:
    settings = shared_settings(tmp_path, events_url)
    async with process(settings) as api, process(settings) as worker:
        # Given the worker cached a value (and a miss) for the cache's whole lifetime
        await api.config.put(ADMIN, "jobs", "system.sleep", {"seconds": 1}, [])
        assert await worker.config.cached("jobs", "system.sleep") == {"seconds": 1}
        assert await worker.config.cached("jobs", "data.profile") is None
        # When the API changes them
        await api.config.put(ADMIN, "jobs", "system.sleep", {"seconds": 2}, [])
        await api.config.put(ADMIN, "jobs", "data.profile", {"format": "csv"}, [])
        # Then the worker's cache forgets them within moments, not 300 s
        await eventually(lambda: worker.config.cached("jobs", "system.sleep"), {"seconds": 2})
        await eventually(lambda: worker.config.cached("jobs", "data.profile"), {"format": "csv"})
        assert (await worker.config.get(ADMIN, "jobs", "system.sleep")).version == 2
        # And a delete, too
        await api.config.delete(ADMIN, "jobs", "system.sleep")
        await eventually(lambda: worker.config.cached("jobs", "system.sleep"), None)
        # Writes go both ways
        await worker.config.put(ADMIN, "jobs", "data.profile", {"format": "parquet"}, [])
        await eventually(lambda: api.config.cached("jobs", "data.profile"), {"format": "parquet"})


async def test_a_cli_style_container_does_not_subscribe(tmp_path: Path, events_url: str) -> None:
    settings = shared_settings(tmp_path, events_url)
    async with bootstrap.build(settings) as cli, process(settings) as api:
        await api.config.put(ADMIN, "jobs", "x", 1, [])
        assert await cli.config.cached("jobs", "x") == 1
        await api.config.put(ADMIN, "jobs", "x", 2, [])
        await asyncio.sleep(0.5)
        # Built but not running (a one-shot command): only the cache lifetime applies
        assert await cli.config.cached("jobs", "x") == 1


@pytest.mark.service("rabbitmq")
async def test_a_reconnect_clears_the_whole_cache(tmp_path: Path) -> None:
    base = require("RabbitMQ", RABBITMQ_URL)
    exchange = f"studio9-test-{uuid.uuid4().hex[:10]}"
    settings = shared_settings(tmp_path, f"{base}?exchange={exchange}")
    try:
        async with process(settings) as api, process(settings) as worker:
            await api.config.put(ADMIN, "jobs", "x", 1, [])
            await asyncio.sleep(0.3)  # its event has come and gone
            assert await worker.config.cached("jobs", "x") == 1
            # Given a change no event announced (as if published while the worker was away)
            stored = await api.config.store.get("jobs", "x")
            await api.config.store.put(_next(stored, value=2), expected_version=stored.version)
            await asyncio.sleep(0.3)
            assert await worker.config.cached("jobs", "x") == 1
            # When the worker's subscription loses its connection and reconnects
            events: Any = worker.backends["events"]
            pids = await asyncio.to_thread(_server_connections, events.connection_name)
            if not pids:
                pytest.skip("rabbitmqctl cannot list this server's connections")
            for pid in pids:
                proc = await asyncio.create_subprocess_exec(
                    "rabbitmqctl", "-q", "close_connection", pid, "test"
                )
                assert await proc.wait() == 0
            # Then it forgets everything it cached, since it may have missed events
            await eventually(lambda: worker.config.cached("jobs", "x"), 2, timeout=5)
    finally:
        connection = pika.BlockingConnection(pika.URLParameters(base))
        try:
            connection.channel().exchange_delete(exchange)
        finally:
            connection.close()


def _next(setting: ConfigSetting, *, value: Any) -> ConfigSetting:
    return ConfigSetting(
        service=setting.service,
        name=setting.name,
        value=value,
        tags=setting.tags,
        version=setting.version + 1,
        created_at=setting.created_at,
        updated_at=datetime.now(UTC),
        updated_by="test",
    )
