"""A `studio9 worker` SIGKILLed in the middle of a table import, on real processes: PostgreSQL,
RabbitMQ, one `studio9 api` and two `studio9 worker`.

The worker is frozen (SIGSTOP) and thawed in turn until the database says it holds the
``tables.import`` job and its scratch directory holds the import's staging directory; then it is
killed. The freezing also slows the import down, so no big file is needed to catch it mid-way.
A second worker takes the job once the lease expires. The job must complete with exactly one
table version holding every row once, and the table's blobs must be only what that version names:
each attempt writes under ``tables/<table>/<job>/<attempt>/``, and the attempt that adds the
version deletes what the killed one left under ``<job>/1/``.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.services import RABBITMQ_URL, require

ROWS = 200_000
CSV = ("id,city,amount\n" + "".join(f"{i},city{i % 97},{i}.5\n" for i in range(ROWS))).encode()
PAGE = 1000
FAST = {
    "STUDIO9_HEARTBEAT_INTERVAL": "0.3",
    "STUDIO9_LEASE_TIMEOUT": "3",
    "STUDIO9_SWEEP_INTERVAL": "0.5",
    "STUDIO9_REDELIVER_AFTER": "2",
    "STUDIO9_RETRY_BACKOFF": "0.2",
    "STUDIO9_WORKER_THREADS": "2",
    "STUDIO9_SHUTDOWN_TIMEOUT": "5",
    "STUDIO9_LOG_LEVEL": "warning",
}


def test_a_worker_killed_during_a_table_import_leaves_exactly_one_version(
    tmp_path: Path, postgres_url: str
) -> None:
    broker = require("RabbitMQ", RABBITMQ_URL)
    data_dir = tmp_path / "data"
    blobs = data_dir / "blobs"
    env = studio9_env(data_dir, STUDIO9_DATABASE_URL=postgres_url, STUDIO9_BROKER_URL=broker, **FAST)
    assert run_cli("migrate", env=env).returncode == 0
    port = free_port()
    processes = [
        start("api", "--port", str(port), env=env, log=tmp_path / "api.log"),
        start("worker", env=env, log=tmp_path / "worker0.log"),
    ]
    api, doomed = processes
    try:
        wait_http(f"http://127.0.0.1:{port}/health", api)
        token = (data_dir / "admin-token").read_text().strip()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=30, headers={"Authorization": f"Bearer {token}"}
        )
        uploaded = client.post("/api/v1/files", params={"name": "big.csv"}, content=CSV)
        assert uploaded.status_code == 201, uploaded.text
        worker_id = _worker_id(client, doomed.pid)
        created = client.post("/api/v1/tables", json={"name": "big", "file": uploaded.json()["id"]})
        assert created.status_code == 202, created.text
        table_id, job_id = created.json()["table"]["id"], created.json()["job"]["id"]
        first_attempt = blobs / "tables" / table_id / job_id / "1"

        _kill_mid_import(doomed, worker_id, job_id, data_dir / "scratch" / job_id, postgres_url)
        # Killed before its upload, the attempt left no part; plant one as a kill during the
        # upload would have: the attempt that adds the version must delete it.
        orphan = first_attempt / "part-00042.parquet"
        orphan.parent.mkdir(parents=True, exist_ok=True)
        orphan.write_bytes(b"half a part from the killed attempt")
        processes.append(start("worker", env=env, log=tmp_path / "worker1.log"))

        job = _wait_terminal(client, job_id, timeout=40)
        assert job["status"] == "completed", job
        assert job["error"] is None and job["result"]["rows"] == ROWS, job
        events = client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]
        reasons = Counter(e["reason"] for e in events)
        assert reasons["completed"] == 1 and reasons["lease_expired"] >= 1, events
        # Another run only where a lease expired (a stalled second run may lose its lease too).
        assert reasons["claimed"] == 1 + reasons["lease_expired"] == job["attempt"], events

        asset = client.get(f"/api/v1/assets/{table_id}").json()
        assert (asset["status"], asset["latest_version"]) == ("active", 1), asset
        versions = client.get(f"/api/v1/assets/{table_id}/versions").json()["items"]
        assert [(v["version"], v["job_id"]) for v in versions] == [(1, job_id)]
        content = versions[0]["content"]
        table = client.get(f"/api/v1/tables/{table_id}").json()
        assert (table["status"], table["version"], table["row_count"]) == ("active", 1, ROWS), table
        assert _all_ids(client, table_id) == list(range(ROWS))

        # The table's blobs are the version's parts and statistics, nothing of the killed attempt.
        stored = {
            p.relative_to(blobs).as_posix() for p in (blobs / "tables" / table_id).rglob("*") if p.is_file()
        }
        # All under one later attempt's prefix (the last, or a stalled one that still won).
        assert content["parts"], content
        winner = content["parts"][0].rpartition("/")[0] + "/"
        assert winner.startswith(f"tables/{table_id}/{job_id}/") and winner.count("/") == 4, winner
        assert 2 <= int(winner.split("/")[3]) <= job["attempt"], (winner, job)
        assert all(p.startswith(winner) for p in content["parts"]), content["parts"]
        assert stored == {*content["parts"], content["stats"]}, stored
        assert not orphan.exists() and not first_attempt.exists()
        # The retry's run (same job id, same data dir) removed what the killed one left in scratch.
        assert not (data_dir / "scratch" / job_id).exists()
    finally:
        for process in processes:
            stop(process, timeout=15)


def _worker_id(client: httpx.Client, pid: int, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for worker in client.get("/status").json()["workers"]:
            if worker["pid"] == pid:
                found: str = worker["id"]
                return found
        time.sleep(0.2)
    raise AssertionError(f"worker pid {pid} never showed in /status")


def _kill_mid_import(
    worker: subprocess.Popen[bytes], worker_id: str, job_id: str, scratch: Path, database_url: str
) -> None:
    """SIGKILL ``worker`` while it runs the import proper: freeze it, and kill it if the database
    says it holds the job and its scratch holds the import's staging directory (``import_table``
    is writing parts); else let it run 5 ms and look again. The freezing slows the import about tenfold."""
    deadline = time.monotonic() + 30
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        while time.monotonic() < deadline:
            worker.send_signal(signal.SIGSTOP)
            time.sleep(0.05)  # let statements it sent before it stopped land first
            held = conn.execute(
                "SELECT 1 FROM jobs WHERE id = %s AND status = 'running' AND lease_owner = %s",
                (job_id, worker_id),
            ).fetchone()
            if held and any(scratch.glob(".table.staging-*")):
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                return
            worker.send_signal(signal.SIGCONT)
            time.sleep(0.005)
    raise AssertionError(f"worker {worker_id} was never caught importing job {job_id}")


def _wait_terminal(client: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} stayed {job['status']}")


def _all_ids(client: httpx.Client, table_id: str) -> list[int]:
    """Every row's ``id``, a page at a time."""
    ids: list[int] = []
    params: dict[str, Any] = {"limit": PAGE, "columns": ["id"]}
    while True:
        page = client.get(f"/api/v1/tables/{table_id}/rows", params=params).json()
        ids += [row["id"] for row in page["rows"]]
        if page["next_cursor"] is None:
            return ids
        params["cursor"] = page["next_cursor"]
