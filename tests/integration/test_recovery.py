"""Real processes: ``studio9 serve`` killed with SIGKILL mid-work, or stopped with jobs queued,
then started again. Every job must end completed, with its result recorded once, and a
handler may run again only for a job whose lease expired."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http

FAST = {
    "STUDIO9_HEARTBEAT_INTERVAL": "0.3",
    "STUDIO9_LEASE_TIMEOUT": "2",
    "STUDIO9_SWEEP_INTERVAL": "0.5",
    "STUDIO9_REDELIVER_AFTER": "2",
    "STUDIO9_RETRY_BACKOFF": "0.2",
    "STUDIO9_WORKER_THREADS": "4",
}


class Api:
    def __init__(self, port: int, token: str) -> None:
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=10, headers={"Authorization": f"Bearer {token}"}
        )

    def submit(self, type_name: str, params: dict[str, Any], max_attempts: int = 1) -> str:
        response = self.client.post(
            "/api/v1/jobs", json={"type": type_name, "params": params, "max_attempts": max_attempts}
        )
        assert response.status_code == 201, response.text
        job_id: str = response.json()["id"]
        return job_id

    def job(self, job_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.client.get(f"/api/v1/jobs/{job_id}").json()
        return body

    def reasons(self, job_id: str) -> list[str]:
        return [e["reason"] for e in self.client.get(f"/api/v1/jobs/{job_id}/events").json()["items"]]

    def wait_all(
        self, job_ids: list[str], statuses: set[str], timeout: float = 60
    ) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            jobs = {job_id: self.job(job_id) for job_id in job_ids}
            if all(j["status"] in statuses for j in jobs.values()):
                return jobs
            time.sleep(0.2)
        pending = {k: v["status"] for k, v in jobs.items() if v["status"] not in statuses}
        raise AssertionError(f"jobs did not reach {statuses}: {pending}")


def _serve(data_dir: Path, log: Path, command: str = "serve") -> tuple[Any, Api]:
    port = free_port()
    process = start(command, "--port", str(port), env=studio9_env(data_dir, **FAST), log=log)
    wait_http(f"http://127.0.0.1:{port}/health", process)
    return process, Api(port, (data_dir / "admin-token").read_text().strip())


def test_sigkill_with_jobs_running_loses_nothing_and_records_each_result_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, api = _serve(data_dir, tmp_path / "first.log")
    try:
        sleepers = [api.submit("system.sleep", {"seconds": 2.5}, max_attempts=3) for _ in range(4)]
        quick = [api.submit("system.noop", {"echo": i}) for i in range(20)]
        api.wait_all(sleepers, {"running"}, timeout=20)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        stop(process)

    process, api = _serve(data_dir, tmp_path / "second.log")
    try:
        jobs = api.wait_all(sleepers + quick, {"completed", "failed", "cancelled"}, timeout=90)
        assert {j["status"] for j in jobs.values()} == {"completed"}, {k: j["error"] for k, j in jobs.items()}
        for job_id in sleepers + quick:
            reasons = api.reasons(job_id)
            claims = reasons.count("claimed")
            assert reasons.count("completed") == 1, reasons
            # A handler ran again only where the lease of the killed attempt expired.
            assert claims == 1 + reasons.count("lease_expired"), reasons
            assert jobs[job_id]["attempt"] == claims
        assert all("lease_expired" in api.reasons(job_id) for job_id in sleepers)
        assert [jobs[j]["result"]["echo"] for j in quick] == list(range(20))
    finally:
        assert stop(process) == 0


def test_jobs_queued_when_the_process_stops_run_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The API alone queues jobs into its in-process broker, whose messages die with it.
    assert run_cli("migrate", env=studio9_env(data_dir)).returncode == 0
    process, api = _serve(data_dir, tmp_path / "api.log", command="api")
    try:
        queued = [api.submit("system.noop", {"echo": i}) for i in range(30)]
        assert {api.job(j)["status"] for j in queued} == {"queued"}
    finally:
        assert stop(process) == 0

    process, api = _serve(data_dir, tmp_path / "serve.log")
    try:
        jobs = api.wait_all(queued, {"completed", "failed", "cancelled"}, timeout=60)
        assert {j["status"] for j in jobs.values()} == {"completed"}
        for job_id in queued:
            assert api.reasons(job_id).count("claimed") == 1
    finally:
        assert stop(process) == 0


def test_a_graceful_stop_with_a_job_running_gives_it_back_and_logs_no_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "stopping.log"
    port = free_port()
    env = studio9_env(data_dir, **FAST, STUDIO9_SHUTDOWN_TIMEOUT="0.5")
    process = start("serve", "--port", str(port), env=env, log=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
        api = Api(port, (data_dir / "admin-token").read_text().strip())
        sleeper = api.submit("system.sleep", {"seconds": 3})
        api.wait_all([sleeper], {"running"}, timeout=20)
    finally:
        assert stop(process) == 0  # SIGTERM: the job outlives the shutdown timeout
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert [line for line in lines if line["level"] in ("error", "critical")] == []
    assert "Traceback" not in log.read_text()

    process, api = _serve(data_dir, tmp_path / "after.log")
    try:
        job = api.wait_all([sleeper], {"completed", "failed", "cancelled"}, timeout=30)[sleeper]
        assert (job["status"], job["attempt"]) == ("completed", 1)  # the released attempt is not spent
        assert "released" in api.reasons(sleeper)
    finally:
        assert stop(process) == 0
