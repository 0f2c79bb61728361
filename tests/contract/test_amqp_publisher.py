"""RabbitMQ's job publisher (``adapters/job_broker/amqp_publisher.py``) beyond the broker contract:
reconnects, namespaces, and Dramatiq workers reading what it writes."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import pytest

from studio9 import bootstrap
from studio9.errors import ConfigError
from studio9.urls import AdapterURL
from tests.contract.test_job_broker import (
    BROKERS,
    OPTIONS,
    SETTING,
    Collector,
    _server_connections,
    consuming,
    delete_queues,
    own_job_queue,
    with_query,
)

pytestmark = pytest.mark.service("rabbitmq")


async def test_publisher_reconnects_after_its_connection_is_dropped(amqp_url: str, queue_name: str) -> None:
    name = f"studio9-test-{queue_name}"
    with own_job_queue(amqp_url) as job_url:
        url = with_query(job_url, "client_properties=" + quote(repr({"connection_name": name})))
        await _publish_across_a_dropped_connection(url, name)


async def _publish_across_a_dropped_connection(url: str, name: str) -> None:
    async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS) as broker:
        collector = Collector()
        queue = broker.job_queue()
        async with consuming(broker, collector, threads=2):
            # Given a job id published and received
            await queue.enqueue("before")
            assert await collector.wait_for(1) == ["before"]
            # When RabbitMQ closes the publisher's connection
            pids = await asyncio.to_thread(_server_connections, f"{name} publisher")
            if not pids:
                pytest.skip("rabbitmqctl cannot list this server's connections")
            for pid in pids:
                proc = await asyncio.create_subprocess_exec(
                    "rabbitmqctl", "-q", "close_connection", pid, "test"
                )
                assert await proc.wait() == 0
            await asyncio.sleep(0.2)  # let the close reach the client
            # Then the next publish opens a new connection and nothing is lost
            await queue.enqueue("after")
            assert await collector.wait_for(2) == ["before", "after"]
            assert await asyncio.to_thread(_server_connections, f"{name} publisher") not in ([], pids)


async def test_namespace_prefixes_the_job_queue(amqp_url: str) -> None:
    namespace = f"ns{uuid.uuid4().hex[:8]}"
    url = with_query(amqp_url, f"namespace={namespace}")
    async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS) as broker:
        assert broker.job_queue_name == f"{namespace}.jobs"
        collector = Collector()
        try:
            async with consuming(broker, collector, threads=1):
                await broker.job_queue().enqueue("namespaced")
                assert await collector.wait_for(1) == ["namespaced"]
            assert f"{namespace}.jobs" in await broker.queue_depths()
        finally:
            await asyncio.to_thread(delete_queues, amqp_url, broker.job_queue_name)


def test_a_bad_namespace_is_refused_naming_the_setting(amqp_url: str) -> None:
    url = AdapterURL.parse(with_query(amqp_url, "namespace=no/slashes"))
    adapter = bootstrap.adapter_class(BROKERS, url, setting=SETTING)
    with pytest.raises(ConfigError) as caught:
        adapter.from_url(url, OPTIONS)
    assert caught.value.setting == SETTING
    assert "namespace" in str(caught.value)
