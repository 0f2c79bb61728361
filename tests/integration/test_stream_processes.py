"""Streams on real processes: 2 `studio9 api` + 1 `studio9 worker` on PostgreSQL + RabbitMQ.

Items are pushed over both APIs; midway the API process whose runner serves the stream is
killed with SIGKILL. The other takes the stream over once the lease runs out, and in the end
every item is in exactly one batch job: none lost, none doubled (re-pushed items included).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.services import RABBITMQ_URL, require

ITEMS = 300
CHUNK = 10
FAST = {
    "STUDIO9_HEARTBEAT_INTERVAL": "0.5",
    "STUDIO9_LEASE_TIMEOUT": "3",
    "STUDIO9_SWEEP_INTERVAL": "1",
    "STUDIO9_REDELIVER_AFTER": "5",
    "STUDIO9_WORKER_THREADS": "2",
    "STUDIO9_LOG_LEVEL": "warning",
}


def test_killing_the_serving_api_loses_and_doubles_no_item(tmp_path: Path, postgres_url: str) -> None:
    broker = require("RabbitMQ", RABBITMQ_URL)
    data_dir = tmp_path / "data"
    env = studio9_env(data_dir, STUDIO9_DATABASE_URL=postgres_url, STUDIO9_BROKER_URL=broker, **FAST)
    assert run_cli("migrate", env=env).returncode == 0
    ports = [free_port(), free_port()]
    apis = [
        start("api", "--port", str(p), env=env, log=tmp_path / f"api{i}.log") for i, p in enumerate(ports)
    ]
    worker = start("worker", env=env, log=tmp_path / "worker.log")
    try:
        for port, api in zip(ports, apis, strict=True):
            wait_http(f"http://127.0.0.1:{port}/health", api)
        headers = {"Authorization": f"Bearer {(data_dir / 'admin-token').read_text().strip()}"}
        clients = [
            httpx.Client(base_url=f"http://127.0.0.1:{p}/api/v1", headers=headers, timeout=10) for p in ports
        ]
        spec = {"job_type": "system.noop", "item_param": "echo", "batch_size": CHUNK, "max_wait": 0.5}
        created = clients[0].post("/streams", json=spec)
        assert created.status_code == 201, created.text
        stream_id = created.json()["id"]

        alive = [0, 1]
        for start_at in range(0, ITEMS, CHUNK):
            if start_at == ITEMS // 2:
                victim = _serving_api(clients[alive[0]], stream_id, apis)
                apis[victim].send_signal(signal.SIGKILL)
                apis[victim].wait(timeout=10)
                alive.remove(victim)
            items = [{"key": f"k{i}", "n": i} for i in range(start_at, start_at + CHUNK)]
            if start_at >= ITEMS // 2:  # a client retrying a push whose answer it never saw
                items.append({"key": f"k{start_at - ITEMS // 2}", "n": start_at - ITEMS // 2})
            pushed = clients[alive[(start_at // CHUNK) % len(alive)]].post(
                f"/streams/{stream_id}/items", json=items
            )
            assert pushed.status_code == 202, pushed.text

        survivor = clients[alive[0]]
        counters = _wait_until_batched(survivor, stream_id)
        assert counters["received"] == ITEMS and counters["pending"] == 0, counters
        seen = Counter(
            item["key"] for job in _batch_jobs(survivor, stream_id) for item in job["params"]["echo"]
        )
        assert sorted(seen) == sorted(f"k{i}" for i in range(ITEMS))
        assert set(seen.values()) == {1}, [k for k, n in seen.items() if n > 1]
    finally:
        for process in (*apis, worker):
            stop(process)


def _serving_api(client: httpx.Client, stream_id: str, apis: list[Any]) -> int:
    """The index of the API process whose runner holds the stream's lease (its pid is in the name)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runner = client.get(f"/streams/{stream_id}").json()["runner"]
        if runner:
            pid = int(runner.split("/")[1])
            return next(i for i, api in enumerate(apis) if api.pid == pid)
        time.sleep(0.2)
    raise AssertionError("no runner took the stream")


def _wait_until_batched(client: httpx.Client, stream_id: str) -> dict[str, int]:
    deadline = time.monotonic() + 90
    counters: dict[str, int] = {}
    while time.monotonic() < deadline:
        counters = client.get(f"/streams/{stream_id}").json()["counters"]
        if counters["batched"] >= ITEMS and counters["pending"] == 0:
            return counters
        time.sleep(0.3)
    raise AssertionError(f"items still pending: {counters}")


def _batch_jobs(client: httpx.Client, stream_id: str) -> list[dict[str, Any]]:
    """The stream's batch jobs, once every batch is submitted."""
    deadline = time.monotonic() + 60
    while True:
        batches = _batches(client, stream_id)
        # A submitted batch shows its job's status; ``submitting`` and ``failed`` are the batch's own.
        waiting = [b for b in batches if b["status"] in ("submitting", "failed")]
        if not waiting:
            return [client.get(f"/jobs/{b['job_id']}").json() for b in batches]
        if time.monotonic() > deadline:
            raise AssertionError(f"batches not submitted: {waiting}")
        time.sleep(0.3)


def _batches(client: httpx.Client, stream_id: str) -> list[dict[str, Any]]:
    batches: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/streams/{stream_id}/jobs", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        batches += body["items"]
        if not (cursor := body["next_cursor"]):
            return batches
