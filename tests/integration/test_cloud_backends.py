"""The API and the worker on PostgreSQL + RabbitMQ, as real processes (the cloud shape)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.services import RABBITMQ_URL, require


@pytest.fixture
def rabbitmq_url() -> str:
    return require("RabbitMQ", RABBITMQ_URL)


def test_api_and_worker_run_on_postgres_and_rabbitmq(
    tmp_path: Path, postgres_url: str, rabbitmq_url: str
) -> None:
    env = studio9_env(tmp_path / "data", STUDIO9_DATABASE_URL=postgres_url, STUDIO9_BROKER_URL=rabbitmq_url)
    assert run_cli("migrate", env=env).returncode == 0
    port = free_port()
    api = start("api", "--port", str(port), env=env, log=tmp_path / "api.log")
    worker = start("worker", env=env, log=tmp_path / "worker.log")
    try:
        health = wait_http(f"http://127.0.0.1:{port}/health", api)
        assert health.status_code == 200, health.text
        assert all(b["status"] == "up" for b in health.json()["backends"].values())
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        status = httpx.get(f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {token}"})
        assert status.json()["backends"]["broker"]["url"].startswith("amqp://guest:***@")
        assert status.json()["queues"]["jobs"] >= 0
        workers = status.json()["workers"]
        deadline_workers = time.monotonic() + 20
        while not workers and time.monotonic() < deadline_workers:
            time.sleep(0.2)
            workers = httpx.get(
                f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {token}"}
            ).json()["workers"]
        assert len(workers) == 1 and workers[0]["threads"] == 4 and workers[0]["running"] == 0
        deadline = time.monotonic() + 20
        while "workers_started" not in (tmp_path / "worker.log").read_text():
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.1)
    finally:
        api_code, worker_code = stop(api), stop(worker)
    assert api_code == 0, (tmp_path / "api.log").read_text()
    assert worker_code == 0, (tmp_path / "worker.log").read_text()
    worker_log = (tmp_path / "worker.log").read_text()
    assert "workers_stopped" in worker_log
    assert "guest:guest" not in worker_log + (tmp_path / "api.log").read_text()
