"""RabbitMQ's job publisher (``adapters/job_broker/amqp_publisher.py``) beyond the broker contract:
reconnects, namespaces, and Dramatiq workers reading what it writes."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import quote

import pika
import pytest

from studio9 import bootstrap
from studio9.errors import ConfigError
from studio9.messaging.worker import WorkerThreads
from studio9.urls import AdapterURL
from tests.contract.test_job_broker import BROKERS, OPTIONS, SETTING, _server_connections, declare_collector

pytestmark = pytest.mark.service("rabbitmq")


def _with(amqp_url: str, query: str) -> str:
    return amqp_url + ("&" if "?" in amqp_url else "?") + query


async def test_publisher_reconnects_after_its_connection_is_dropped(amqp_url: str, queue_name: str) -> None:
    name = f"studio9-test-{queue_name}"
    url = _with(amqp_url, "client_properties=" + quote(repr({"connection_name": name})))
    async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS) as broker:
        collector = declare_collector(broker, queue_name)
        assert collector.actor is not None
        queue = broker.job_queue(collector.actor)
        threads = WorkerThreads(broker.dramatiq_broker, threads=2)
        threads.start()
        try:
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
        finally:
            threads.stop(timeout=5)


async def test_namespace_prefixes_the_job_queue(amqp_url: str) -> None:
    namespace = f"ns{uuid.uuid4().hex[:8]}"
    url = _with(amqp_url, f"namespace={namespace}")
    async with bootstrap.open_adapter(BROKERS, url, setting=SETTING, options=OPTIONS) as broker:
        assert broker.job_queue_name == f"{namespace}.jobs"
        collector = declare_collector(broker, broker.job_queue_name)
        assert collector.actor is not None
        threads = WorkerThreads(broker.dramatiq_broker, threads=1)
        threads.start()
        try:
            await broker.job_queue(collector.actor).enqueue("namespaced")
            assert await collector.wait_for(1) == ["namespaced"]
        finally:
            threads.stop(timeout=5)
            for suffix in ("", ".DQ", ".XQ"):
                await asyncio.to_thread(_delete_queue, amqp_url, broker.job_queue_name + suffix)


def test_a_bad_namespace_is_refused_naming_the_setting(amqp_url: str) -> None:
    url = AdapterURL.parse(_with(amqp_url, "namespace=no/slashes"))
    adapter = bootstrap.adapter_class(BROKERS, url, setting=SETTING)
    with pytest.raises(ConfigError) as caught:
        adapter.from_url(url, OPTIONS)
    assert caught.value.setting == SETTING
    assert "namespace" in str(caught.value)


def _delete_queue(amqp_url: str, name: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        connection.channel().queue_delete(queue=name)
    finally:
        connection.close()
