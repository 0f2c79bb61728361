"""Scale-out on real processes: 2 `studio9 api` + 3 `studio9 worker` on PostgreSQL + RabbitMQ.

2,000 jobs are submitted, spread over both APIs as a load balancer would. Midway one worker
and one API are killed with SIGKILL and every broker connection is dropped. Every job must
end completed, none recorded twice, and no sweep may handle the same job twice.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.services import RABBITMQ_URL, require

JOBS = int(os.environ.get("STUDIO9_TEST_SCALE_JOBS", "2000"))
FAST = {
    "STUDIO9_HEARTBEAT_INTERVAL": "0.5",
    "STUDIO9_LEASE_TIMEOUT": "3",
    "STUDIO9_SWEEP_INTERVAL": "1",
    "STUDIO9_REDELIVER_AFTER": "5",
    "STUDIO9_RETRY_BACKOFF": "0.2",
    "STUDIO9_WORKER_THREADS": "4",
    "STUDIO9_SHUTDOWN_TIMEOUT": "5",
    "STUDIO9_LOG_LEVEL": "warning",
}


def _drop_broker_connections() -> None:
    if shutil.which("rabbitmqctl"):
        subprocess.run(
            ["rabbitmqctl", "close_all_connections", "studio9 scale-out test"],
            capture_output=True,
            timeout=30,
            check=False,
        )


async def _submit_all(ports: list[int], token: str, alive: list[bool], on_half: Any, jobs: int) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids: list[str] = []
    async with httpx.AsyncClient(headers=headers, timeout=10) as client:

        async def submit(i: int) -> None:
            for attempt in range(len(ports) * 3):
                live = [p for p, ok in zip(ports, alive, strict=True) if ok]
                port = live[(i + attempt) % len(live)]
                try:
                    response = await client.post(
                        f"http://127.0.0.1:{port}/api/v1/jobs",
                        # max_attempts 1 (the type's default): a job on the killed worker
                        # must still complete, since its worker's death is not its failure.
                        json={"type": "system.noop", "params": {"echo": i}},
                    )
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                if response.status_code == 201:
                    ids.append(response.json()["id"])
                    return
            raise AssertionError(f"job {i} could not be submitted")

        for start_at in range(0, jobs, 100):
            await asyncio.gather(*(submit(i) for i in range(start_at, min(jobs, start_at + 100))))
            if start_at == (jobs // 200) * 100:
                on_half()
    return ids


def test_two_apis_three_workers_survive_kills_and_dropped_connections(
    tmp_path: Path, postgres_url: str
) -> None:
    broker = require("RabbitMQ", RABBITMQ_URL)
    _scale_out(tmp_path, postgres_url, broker, jobs=JOBS, drop_connections=True)


def test_the_same_on_sqs(tmp_path: Path, postgres_url: str, moto_endpoint: str) -> None:
    namespace = f"s9test{uuid.uuid4().hex[:8]}"
    broker = f"sqs://?region=us-east-1&namespace={namespace}&endpoint_url={moto_endpoint}&wait_time_seconds=1"
    _scale_out(tmp_path, postgres_url, broker, jobs=200, drop_connections=False)


def _scale_out(tmp_path: Path, postgres_url: str, broker: str, *, jobs: int, drop_connections: bool) -> None:
    data_dir = tmp_path / "data"
    env = studio9_env(data_dir, STUDIO9_DATABASE_URL=postgres_url, STUDIO9_BROKER_URL=broker, **FAST)
    assert run_cli("migrate", env=env).returncode == 0
    ports = [free_port(), free_port()]
    apis = [
        start("api", "--port", str(p), env=env, log=tmp_path / f"api{i}.log") for i, p in enumerate(ports)
    ]
    workers = [start("worker", env=env, log=tmp_path / f"worker{i}.log") for i in range(3)]
    alive = [True, True]
    try:
        for port, api in zip(ports, apis, strict=True):
            wait_http(f"http://127.0.0.1:{port}/health", api)
        token = (data_dir / "admin-token").read_text().strip()

        def chaos() -> None:
            _kill_holding_jobs(workers[0], ports[0], token, postgres_url)
            apis[1].send_signal(signal.SIGKILL)
            alive[1] = False
            if drop_connections:
                _drop_broker_connections()

        # The chaos runs beside the submissions: a worker holds jobs only while work arrives.
        chaos_thread = threading.Thread(target=chaos)
        ids = asyncio.run(_submit_all(ports, token, alive, chaos_thread.start, jobs))
        chaos_thread.join(timeout=60)
        assert len(set(ids)) == jobs
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{ports[0]}", timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            counts = client.get("/status").json()["jobs"]
            if (
                sum(counts.values()) >= jobs
                and counts["queued"] == counts["running"] == counts["submitted"] == 0
            ):
                break
            time.sleep(1)
        assert counts["completed"] >= jobs and counts["failed"] == counts["cancelled"] == 0, counts

        every = _all_jobs(client)
        assert set(ids) <= set(every)  # a request cut by the kill may have stored a job we never heard of
        assert {j["status"] for j in every.values()} == {"completed"}
        assert all(j["error"] is None for j in every.values())  # no earlier attempt's error stays
        lost = 0
        for job_id in every:
            reasons = [e["reason"] for e in client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]]
            counted = Counter(reasons)
            assert counted["completed"] == 1, (job_id, reasons)
            assert counted["claimed"] == 1 + counted["lease_expired"] + counted["released"], (job_id, reasons)
            lost += counted["lease_expired"]
        assert lost >= 1, "the killed worker held no job: the test proved nothing"
    finally:
        for process in [*apis, *workers]:
            stop(process, timeout=15)


def _kill_holding_jobs(worker: subprocess.Popen[bytes], port: int, token: str, database_url: str) -> None:
    """SIGKILL ``worker`` at a moment it holds running jobs: freeze it (SIGSTOP), look in the
    database for jobs it holds, and kill it if there are some, else let it go on and look again.
    No-op jobs are held for a millisecond or so: a kill at a random moment often finds none."""
    status = httpx.get(f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {token}"})
    worker_id = next(w["id"] for w in status.json()["workers"] if w["pid"] == worker.pid)
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        for _ in range(400):
            worker.send_signal(signal.SIGSTOP)
            time.sleep(0.05)  # let statements it sent before it stopped land first
            held = conn.execute(
                "SELECT count(*) FROM jobs WHERE status = 'running' AND lease_owner = %s", (worker_id,)
            ).fetchone()
            if held and held[0]:
                worker.send_signal(signal.SIGKILL)
                return
            worker.send_signal(signal.SIGCONT)
            time.sleep(0.005)
    raise AssertionError(f"worker {worker_id} never held a job")


def _all_jobs(client: httpx.Client) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params).json()
        jobs.update({j["id"]: j for j in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return jobs
