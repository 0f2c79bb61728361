"""Jobs on the edge: end-to-end ``system.noop`` throughput and latency against bare Dramatiq.

Three ways, one after the other in the same run, all on EDGE defaults (SQLite file database
in a fresh temporary data dir, ``memory://`` broker, in-process worker threads, every other
``STUDIO9_*`` setting at its default; any ``STUDIO9_*`` variable in your environment is
ignored):

* ``bare_dramatiq``: a StubBroker, a no-op actor and an in-process ``dramatiq.Worker`` with
  the same thread count. Throughput: N messages sent, then drained (``broker.join`` +
  ``worker.join``). Latency: M sequential messages on an idle worker, send -> actor runs.
* ``studio9_service``: in this process, ``studio9.bootstrap.migrate`` then ``build`` +
  ``processes.running(workers=True, loops=True)``; jobs go through ``JobService.submit``.
* ``studio9_http``: a real ``python -m studio9 serve`` on a free loopback port; jobs go
  through ``POST /api/v1/jobs`` with the first admin's token from ``<data dir>/admin-token``.

Throughput (jobs/s) = N / (first submit -> every job finished), with ``--concurrency``
submitters. Latency p50/p99 = M sequential submit -> poll until completed on an idle system,
as the client sees it (``p50_ms``) and as stored, submitted_at -> completed_at (``stored_*``).
Then the ratios to bare Dramatiq and the aims. Everything has an overall ``--deadline``;
the server is stopped and temporary directories are removed whatever happens. Run from the
repository root:

    .venv/bin/python benchmarks/jobs_edge.py [--jobs 2000] [--latency-samples 200] [--threads 4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import dramatiq
import httpx

# Run as a script: its directory is on the path.
from children import HOST, STOP_TIMEOUT_S, child, free_port, wait_ready
from deadline import BenchTimeout, Deadline
from dramatiq.brokers.stub import StubBroker

ADMIN_TOKEN_FILE = "admin-token"  # studio9.bootstrap.ADMIN_TOKEN_FILE
WORKER_TIMEOUT_MS = 100  # as adapters.job_broker.dramatiq_jobs.WorkerThreads
WARMUP_JOBS = 10
BUSY_POLL_S = 0.02  # throughput: how often "is anything still queued or running?" is asked
TERMINAL = frozenset({"completed", "failed", "cancelled"})
AIM_SERVICE_JPS, AIM_HTTP_JPS, AIM_P50_MS = 500.0, 300.0, 10.0


@dataclass
class Figure:
    jobs_per_s: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, as the client saw them
    stored: list[float] = field(default_factory=list)  # seconds, submitted_at -> completed_at
    failed: int = 0

    def line(self, name: str) -> str:
        text = (
            f"{name:<16} jobs_per_s={self.jobs_per_s:.1f} p50_ms={pct_ms(self.latencies, 0.5):.2f}"
            f" p99_ms={pct_ms(self.latencies, 0.99):.2f}"
        )
        if self.stored:
            text += (
                f" stored_p50_ms={pct_ms(self.stored, 0.5):.2f} stored_p99_ms={pct_ms(self.stored, 0.99):.2f}"
            )
        return text + f" failed={self.failed}"


def pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


# -- 1. bare Dramatiq ----------------------------------------------------------------------
def bare_dramatiq(args: argparse.Namespace, deadline: Deadline) -> Figure:
    broker = StubBroker()
    ran, ran_at = threading.Event(), [0.0]

    def noop(job_id: str) -> None:
        ran_at[0] = time.perf_counter()
        ran.set()

    actor = dramatiq.actor(actor_name="bench.noop", queue_name="bench", broker=broker, max_retries=0)(noop)
    worker = dramatiq.Worker(broker, worker_threads=args.threads, worker_timeout=WORKER_TIMEOUT_MS)
    worker.start()
    figure = Figure()
    try:
        for i in range(WARMUP_JOBS + args.latency_samples):
            ran.clear()
            sent = time.perf_counter()
            actor.send(f"01JBENCH{i:018d}")
            if not ran.wait(deadline.left("measuring bare Dramatiq latency")):
                raise BenchTimeout("bare Dramatiq latency: a message never ran")
            if i >= WARMUP_JOBS:
                figure.latencies.append(ran_at[0] - sent)
        started = time.perf_counter()
        for i in range(args.jobs):
            actor.send(f"01JBENCH{i:018d}")
        try:
            broker.join("bench", timeout=int(deadline.left("draining bare Dramatiq") * 1000))
        except dramatiq.errors.QueueJoinTimeout:
            raise BenchTimeout("bare Dramatiq did not drain its queue in time") from None
        worker.join()
        figure.jobs_per_s = args.jobs / (time.perf_counter() - started)
    finally:
        worker.stop(timeout=int(STOP_TIMEOUT_S * 1000))
        broker.close()
    return figure


# -- the Studio9 measurement, shared by the service and HTTP targets ----------------------------
@dataclass(frozen=True)
class Jobs:
    """How one target submits a job, reads one job, and tells whether any is still unfinished."""

    submit: Callable[[], Awaitable[str]]
    read: Callable[[str], Awaitable[tuple[str, float | None]]]  # status, stored seconds
    busy: Callable[[], Awaitable[bool]]
    failures: Callable[[], Awaitable[int]]
    poll_s: float


async def measure(jobs: Jobs, args: argparse.Namespace, deadline: Deadline, what: str) -> Figure:
    figure = Figure()
    for i in range(WARMUP_JOBS + args.latency_samples):  # idle latency first: nothing else queued
        sent = time.perf_counter()
        job_id = await jobs.submit()
        async with asyncio.timeout(deadline.left(f"measuring {what} latency")):
            while (found := await jobs.read(job_id))[0] not in TERMINAL:  # noqa: ASYNC110 - polling is the point
                await asyncio.sleep(jobs.poll_s)
        if i >= WARMUP_JOBS:
            figure.latencies.append(time.perf_counter() - sent)
            if found[1] is not None:
                figure.stored.append(found[1])
    numbers = iter(range(args.jobs))

    async def submitter() -> None:
        for _ in numbers:
            await jobs.submit()

    started = time.perf_counter()
    async with asyncio.timeout(deadline.left(f"measuring {what} throughput")):
        await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
        while await jobs.busy():  # noqa: ASYNC110 - as a client would poll
            await asyncio.sleep(BUSY_POLL_S)
    figure.jobs_per_s = args.jobs / (time.perf_counter() - started)
    figure.failed = await jobs.failures()
    return figure


def edge_env(data_dir: Path, args: argparse.Namespace) -> dict[str, str]:
    """This process's environment without any STUDIO9_* setting, plus a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env.update(
        STUDIO9_DATA_DIR=str(data_dir),
        STUDIO9_LOG_LEVEL=args.log_level,
        STUDIO9_LOG_FORMAT="json",
        STUDIO9_WORKER_THREADS=str(args.threads),
        STUDIO9_SHUTDOWN_TIMEOUT="5",
    )
    return env


def _stored_seconds(submitted: datetime | None, completed: datetime | None) -> float | None:
    return (completed - submitted).total_seconds() if submitted and completed else None


# -- 2. through the Python service -------------------------------------------------------------
def studio9_service(args: argparse.Namespace, workdir: Path, deadline: Deadline) -> Figure:
    from studio9.bootstrap import migrate
    from studio9.config.settings import Settings
    from studio9.logs import configure_logging

    env = edge_env(workdir / "service-data", args)
    settings = Settings.from_env({k: v for k, v in env.items() if k.startswith("STUDIO9_")})
    with (workdir / "service.log").open("w", encoding="utf-8") as log:
        configure_logging(settings.log_level, settings.log_format, stream=log)
        migrate(settings)
        return asyncio.run(_service(settings, args, deadline))


async def _service(settings: Any, args: argparse.Namespace, deadline: Deadline) -> Figure:
    from studio9.bootstrap import build
    from studio9.jobs.domain import JobStatus
    from studio9.processes import running

    async with build(settings) as container, running(container, workers=True, loops=True):
        _, token = await container.auth.create_user(None, "bench")
        principal = await container.auth.authenticate(token.secret)
        store = container.jobs.store

        async def submit() -> str:
            return (await container.jobs.submit(principal, "system.noop", {})).id

        async def read(job_id: str) -> tuple[str, float | None]:
            job = await store.get(job_id)
            return job.status.value, _stored_seconds(job.submitted_at, job.completed_at)

        async def busy() -> bool:
            return any(n for status, n in (await store.counts()).items() if not status.is_terminal)

        async def failures() -> int:
            return (await store.counts())[JobStatus.FAILED]

        poll_s = (args.poll_ms or 1.0) / 1000
        return await measure(Jobs(submit, read, busy, failures, poll_s), args, deadline, "service")


# -- 3. through HTTP -----------------------------------------------------------------------
@contextlib.contextmanager
def serve(env: dict[str, str], port: int, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with child(
        [sys.executable, "-m", "studio9", "serve", "--host", HOST, "--port", str(port)], env, log_path
    ) as proc:
        yield proc


def studio9_http(args: argparse.Namespace, workdir: Path, deadline: Deadline) -> Figure:
    data_dir, log_path, port = workdir / "http-data", workdir / "serve.log", free_port()
    with serve(edge_env(data_dir, args), port, log_path) as proc:
        wait_ready(f"http://{HOST}:{port}/health", proc, log_path, deadline)
        token = (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip()
        return asyncio.run(_http(f"http://{HOST}:{port}", token, args, deadline))


async def _http(base: str, token: str, args: argparse.Namespace, deadline: Deadline) -> Figure:
    limits = httpx.Limits(
        max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=30.0) as client:

        async def submit() -> str:
            response = await client.post("/api/v1/jobs", json={"type": "system.noop", "params": {}})
            if response.status_code != 201:
                raise RuntimeError(
                    f"POST /api/v1/jobs answered {response.status_code}: {response.text[:300]}"
                )
            return str(response.json()["id"])

        async def read(job_id: str) -> tuple[str, float | None]:
            job = (await client.get(f"/api/v1/jobs/{job_id}")).raise_for_status().json()
            sub, done = (
                datetime.fromisoformat(job[k]) if job[k] else None for k in ("submitted_at", "completed_at")
            )
            return str(job["status"]), _stored_seconds(sub, done)

        async def listed(status: str, limit: int) -> int:
            page = await client.get("/api/v1/jobs", params={"status": status, "limit": limit})
            return len(page.raise_for_status().json()["items"])

        async def busy() -> bool:  # queued first: a job seen neither queued nor running is finished
            return await listed("queued", 1) > 0 or await listed("running", 1) > 0

        async def failures() -> int:  # counts up to 500
            return await listed("failed", 500)

        return await measure(
            Jobs(submit, read, busy, failures, poll_s=(args.poll_ms or 2.0) / 1000), args, deadline, "HTTP"
        )


# -- main ----------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs for throughput (default 2000)")
    parser.add_argument("--latency-samples", type=int, default=200, help="idle latency samples (default 200)")
    parser.add_argument("--threads", type=int, default=4, help="worker threads (default 4, as Studio9)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent submitters (default 16)")
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="overall limit in seconds (default 600)"
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=("debug", "info", "warning", "error"),
        help="STUDIO9_LOG_LEVEL",
    )
    parser.add_argument("--poll-ms", type=float, help="latency poll interval (default 1 service, 2 HTTP)")
    parser.add_argument(
        "--only", action="append", choices=("bare", "service", "http"), help="run only these (repeatable)"
    )
    args = parser.parse_args()
    if min(args.jobs, args.latency_samples, args.threads, args.concurrency) < 1 or args.deadline <= 0:
        parser.error("--jobs, --latency-samples, --threads, --concurrency and --deadline must be positive")
    return args


def aim(value: float, goal: float, *, at_most: bool = False) -> str:
    return "met" if (value <= goal if at_most else value >= goal) else "NOT met"


def report(results: dict[str, Figure]) -> None:
    for name, figure in results.items():
        print(figure.line(name), flush=True)
    bare, service, http = (results.get(k) for k in ("bare_dramatiq", "studio9_service", "studio9_http"))
    if bare is not None:
        ratios = [
            f"ratio_{k}={f.jobs_per_s / bare.jobs_per_s:.3f}"
            for k, f in (("service", service), ("http", http))
            if f is not None
        ]
        if ratios:
            print("  ".join(ratios) + "  (throughput vs bare_dramatiq)")
    for name, target, goal in (("service", service, AIM_SERVICE_JPS), ("http", http, AIM_HTTP_JPS)):
        if target is not None:
            p50 = pct_ms(target.latencies, 0.5)
            print(
                f"aim {name}: jobs_per_s >= {goal:g} {aim(target.jobs_per_s, goal)};"
                f" idle p50_ms <= {AIM_P50_MS:g} {aim(p50, AIM_P50_MS, at_most=True)}"
            )


def run(args: argparse.Namespace) -> int:
    deadline = Deadline(time.monotonic() + args.deadline)
    only = set(args.only or ("bare", "service", "http"))
    print(
        f"jobs={args.jobs} latency_samples={args.latency_samples} threads={args.threads}"
        f" concurrency={args.concurrency} log_level={args.log_level}",
        flush=True,
    )
    results: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory(prefix="studio9-jobs-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if "bare" in only:
                results["bare_dramatiq"] = bare_dramatiq(args, deadline)
            if "service" in only:
                results["studio9_service"] = studio9_service(args, workdir, deadline)
            if "http" in only:
                results["studio9_http"] = studio9_http(args, workdir, deadline)
        except (BenchTimeout, TimeoutError) as exc:
            report(results)
            print(
                f"jobs_edge: gave up after --deadline {args.deadline:g}s: {str(exc) or 'out of time'}",
                file=sys.stderr,
            )
            return 2
    report(results)
    return 1 if any(f.failed for f in results.values()) else 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the server is stopped on SIGTERM too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
