"""Jobs in the cloud shape: ``system.noop`` on PostgreSQL + RabbitMQ against bare Dramatiq + RabbitMQ.

On the local PostgreSQL (127.0.0.1:5432, user postgres) and RabbitMQ (127.0.0.1:5672, guest), in a
vhost of the run's own (``studio9-bench-<hex>``, by ``rabbitmqctl``: the bare baseline gets the
same isolation as Studio9, whose broker URL could also take a ``namespace``), one after the other:

* ``bare_dramatiq_rabbitmq``: ``RabbitmqBroker(confirm_delivery=True)``, a no-op actor, and
  ``--bare-processes`` spawned processes (default: the largest ``--workers``), each a
  ``dramatiq.Worker`` of ``--threads`` threads; the actor puts ``time.monotonic()`` on a queue.
* ``studio9_pg_rabbitmq workers=K`` for each K in ``--workers``: a fresh PostgreSQL database,
  ``studio9 migrate``, K ``studio9 worker`` processes (``STUDIO9_WORKER_THREADS=--threads``, log
  level warning), jobs submitted here with ``container.jobs.submit`` by ``local_principal``.

Each: a warm-up burst; latency p50/p99 of ``--latency-samples`` sequential jobs on an idle system
(bare: send -> actor runs; Studio9: submit -> ``JobStore.get``, polled every ``--poll-ms``, sees it
completed; ``stored_*``: completed_at - submitted_at); throughput: ``--jobs`` from ``--concurrency``
senders / (first send -> last run; Studio9: until a count of submitted, queued and running jobs,
on a connection of its own and the status index, polled every 10 ms, shows none); ``cpu_ms``:
CPU per job meanwhile, split into this process (``client``), the workers, and the local
PostgreSQL and RabbitMQ processes (all of them: run it on an otherwise quiet machine).
Every Studio9 run comes right after a bare run of its own, and those pairs repeat ``--rounds``
times (3); a target's ratio is the median of its rounds' Studio9 / bare. Then the best ratio,
and the aims.
Bounded by ``--deadline``; processes, databases and the vhost are removed whatever happens.
From the repository root:

    .venv/bin/python benchmarks/jobs_cloud.py [--jobs 2000] [--workers 1,2,4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dramatiq
import psycopg

# Run as a script (``python benchmarks/jobs_cloud.py``): its directory is on the path.
from deadline import BenchTimeout, Deadline
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from jobs_cloud_figures import CpuMeter, Figure, report

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
STUDIO9 = (sys.executable, "-m", "studio9")
PG_ADMIN_URL = f"postgresql://postgres@{HOST}:5432/postgres"
AMQP_USER, AMQP_PASSWORD = "guest", "guest"  # the local broker's default account
BARE_ACTOR, BARE_QUEUE = "bench.noop", "bench_noop"
WORKER_TIMEOUT_MS = 100  # as adapters.job_broker.dramatiq_jobs.WorkerThreads
WARMUP_JOBS = 5  # sequential, before the latency samples
WARMUP_PER_SENDER = 4  # concurrent warm-up burst: opens every sender's connection
BUSY_POLL_S, IDLE_POLL_S = 0.01, 0.25  # the end of a burst is seen within 10 ms
TERMINAL = frozenset({"completed", "failed", "cancelled"})
UNFINISHED_SQL = "SELECT count(*) FROM jobs WHERE status IN ('submitted', 'queued', 'running')"
STOP_TIMEOUT_S, COMMAND_TIMEOUT_S = 15.0, 60.0
Procs = list[subprocess.Popen[bytes]]


# -- backends: a vhost per run, a database per Studio9 figure ---------------------------------
def rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()[-500:]}")


@contextlib.contextmanager
def vhost() -> Iterator[str]:
    """A fresh RabbitMQ vhost for guest; yields its amqp:// URL; deleted on exit."""
    name = f"studio9-bench-{uuid.uuid4().hex[:12]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, AMQP_USER, ".*", ".*", ".*")
        yield f"amqp://{AMQP_USER}:{AMQP_PASSWORD}@{HOST}:5672/{quote(name, safe='')}"
    finally:
        rabbitmqctl("delete_vhost", name)


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database; yields its SQLAlchemy URL; dropped on exit."""
    name = f"studio9_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@{HOST}:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- 1. bare Dramatiq + RabbitMQ -------------------------------------------------------------
def _bare_worker(url: str, threads: int, done: Any, stop: Any) -> None:
    """In a spawned process: run the no-op actor; each run puts (number, monotonic time) on ``done``."""
    broker = RabbitmqBroker(url=url, confirm_delivery=True)

    def noop(number: int) -> None:
        done.put((number, time.monotonic()))

    dramatiq.actor(actor_name=BARE_ACTOR, queue_name=BARE_QUEUE, broker=broker, max_retries=0)(noop)
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=WORKER_TIMEOUT_MS)
    worker.start()
    stop.wait()
    worker.stop(timeout=int(STOP_TIMEOUT_S * 1000))
    broker.close()
    done.cancel_join_thread()


def bare(args: argparse.Namespace, url: str, deadline: Deadline) -> Figure:
    ctx = mp.get_context("spawn")
    done, stop = ctx.Queue(), ctx.Event()
    work = (url, args.threads, done, stop)
    procs = [ctx.Process(target=_bare_worker, args=work, daemon=True) for _ in range(args.bare_processes)]
    broker = RabbitmqBroker(url=url, confirm_delivery=True)
    declare = dramatiq.actor(actor_name=BARE_ACTOR, queue_name=BARE_QUEUE, broker=broker, max_retries=0)
    send = declare(lambda number: None).send

    def collect(numbers: set[int], what: str) -> float:
        """Wait until each of ``numbers`` has run; the time the last one ran."""
        last = 0.0
        while numbers:
            try:
                number, at = done.get(timeout=min(1.0, deadline.left(what)))
            except queue.Empty:
                if not all(p.is_alive() for p in procs):
                    raise RuntimeError("a bare Dramatiq worker process died") from None
                continue
            numbers.discard(number)
            last = max(last, at)
        return last

    figure = Figure("bare_dramatiq_rabbitmq")
    for proc in procs:
        proc.start()
    try:
        with ThreadPoolExecutor(args.concurrency, thread_name_prefix="bench-send") as pool:
            first = args.concurrency * WARMUP_PER_SENDER
            list(pool.map(send, range(first)))
            collect(set(range(first)), "warming up bare Dramatiq")
            for number in range(first, first + WARMUP_JOBS + args.latency_samples):  # idle, one by one
                sent = time.monotonic()
                send(number)
                ran = collect({number}, "measuring bare Dramatiq latency")
                if number >= first + WARMUP_JOBS:
                    figure.latencies.append(ran - sent)
            first += WARMUP_JOBS + args.latency_samples
            numbers = range(first, first + args.jobs)
            meter = CpuMeter([p.pid for p in procs if p.pid])
            meter.start()
            started = time.monotonic()
            list(pool.map(send, numbers))
            last = collect(set(numbers), "measuring bare Dramatiq throughput")
            figure.jobs_per_s = args.jobs / (last - started)
            figure.cpu_ms = meter.stop(args.jobs)
    finally:
        stop.set()
        broker.close()
        for proc in procs:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(STOP_TIMEOUT_S)
    return figure


# -- 2. Studio9: studio9 worker processes, submissions from this process ---------------------
@contextlib.contextmanager
def workers(env: dict[str, str], count: int, logs: Path) -> Iterator[Procs]:
    """``count`` ``studio9 worker`` processes; SIGTERM (then kill) on exit."""
    procs: Procs = []
    cmd = [*STUDIO9, "worker"]
    try:
        for i in range(count):
            with (logs / f"worker{i}.log").open("wb") as out:
                procs.append(subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=out, stderr=out))
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # does nothing if it has already exited
        for proc in procs:
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)


def studio9(args: argparse.Namespace, count: int, amqp_url: str, workdir: Path, deadline: Deadline) -> Figure:
    from studio9.config.settings import Settings

    (logs := workdir / f"workers{count}").mkdir()
    with database() as db_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}  # none of ours
        env |= {"STUDIO9_DATA_DIR": str(logs / "data"), "STUDIO9_DATABASE_URL": db_url}
        env |= {"STUDIO9_BROKER_URL": amqp_url, "STUDIO9_LOG_LEVEL": "warning", "STUDIO9_LOG_FORMAT": "json"}
        env |= {"STUDIO9_WORKER_THREADS": str(args.threads), "STUDIO9_SHUTDOWN_TIMEOUT": "5"}
        cmd, timeout = [*STUDIO9, "migrate"], min(COMMAND_TIMEOUT_S, deadline.left("migrating"))
        done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"studio9 migrate exited with {done.returncode}: {done.stderr[-800:]}")
        with workers(env, count, logs) as procs:
            try:
                own = Settings.from_env({k: v for k, v in env.items() if k.startswith("STUDIO9_")})
                return asyncio.run(_studio9(own, procs, args, deadline))
            except RuntimeError:
                for log in sorted(logs.glob("worker*.log")):  # say why before the directory goes
                    print(f"-- {log.name}:", *log.read_text().splitlines()[-20:], sep="\n", file=sys.stderr)
                raise


async def _studio9(settings: Any, procs: Procs, args: argparse.Namespace, deadline: Deadline) -> Figure:
    from studio9.bootstrap import build
    from studio9.jobs.domain import JobStatus

    figure = Figure(f"studio9_pg_rabbitmq workers={len(procs)}")

    def check_alive() -> None:
        if dead := [p.args for p in procs if p.poll() is not None]:
            raise RuntimeError(f"{len(dead)} studio9 worker process(es) exited early")

    libpq_url = settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    async with (
        build(settings) as container,
        await psycopg.AsyncConnection.connect(libpq_url, autocommit=True) as watcher,
    ):
        principal = await container.auth.local_principal("bench")
        store = container.jobs.store

        async def unfinished() -> int:
            """Jobs not yet finished: an index range on ``status``, not a scan of the whole table."""
            cursor = await watcher.execute(UNFINISHED_SQL)
            row = await cursor.fetchone()
            return int(row[0]) if row else 0

        async def submit() -> str:
            return (await container.jobs.submit(principal, "system.noop", {})).id

        async def burst(jobs: int) -> None:
            """Submit ``jobs`` from ``--concurrency`` submitters; return when none is unfinished."""
            numbers = iter(range(jobs))

            async def submitter() -> None:
                for _ in numbers:
                    await submit()

            await asyncio.gather(*(submitter() for _ in range(args.concurrency)))
            await finished()

        async def finished() -> None:
            """Return once no job is unfinished. Counting a backlog of thousands of rows every
            10 ms would load the database measured: polls come at half the time the backlog
            should take at the rate seen so far, and every 10 ms once it is nearly done."""
            left, seen, rate = await unfinished(), time.perf_counter(), 0.0
            while left:
                check_alive()
                await asyncio.sleep(min(IDLE_POLL_S, max(BUSY_POLL_S, left / rate / 2 if rate else 0)))
                now_left, now = await unfinished(), time.perf_counter()
                if now_left < left:
                    rate = (left - now_left) / (now - seen)
                left, seen = now_left, now

        async with asyncio.timeout(deadline.left(f"waiting for {len(procs)} studio9 workers")):
            since = datetime.now(UTC) - timedelta(hours=1)  # a fresh database: any row is this run's
            while len(await container.workers.live(seen_after=since)) < len(procs):
                check_alive()
                await asyncio.sleep(0.1)
            await burst(args.concurrency * WARMUP_PER_SENDER)
        async with asyncio.timeout(deadline.left(f"measuring {figure.name} latency")):
            for i in range(WARMUP_JOBS + args.latency_samples):  # idle: nothing else queued
                sent = time.perf_counter()
                job_id = await submit()
                while (job := await store.get(job_id)).status.value not in TERMINAL:
                    check_alive()
                    await asyncio.sleep(args.poll_ms / 1000)
                if i >= WARMUP_JOBS and job.completed_at and job.started_at:
                    figure.latencies.append(time.perf_counter() - sent)
                    figure.stored.append((job.completed_at - job.submitted_at).total_seconds())
                    figure.to_start.append((job.started_at - job.submitted_at).total_seconds())
        async with asyncio.timeout(deadline.left(f"measuring {figure.name} throughput")):
            meter = CpuMeter([p.pid for p in procs])
            meter.start()
            started = time.perf_counter()
            await burst(args.jobs)
            figure.jobs_per_s = args.jobs / (time.perf_counter() - started)
            figure.cpu_ms = meter.stop(args.jobs)
        counts = await store.counts()
        figure.failed = counts[JobStatus.FAILED] + counts[JobStatus.CANCELLED]
    return figure


# -- main ----------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=2000, help="jobs for throughput (default 2000)")
    parser.add_argument("--latency-samples", type=int, default=100, help="idle latency samples (default 100)")
    counts = lambda text: [int(n) for n in text.split(",")]  # noqa: E731 - "1,2,4"
    parser.add_argument("--workers", type=counts, default=[1, 2, 4], help="worker processes (1,2,4)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="bare + Studio9 runs per worker count (3)")
    parser.add_argument("--bare-processes", type=int, help="bare Dramatiq processes (default: max --workers)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent senders (default 16)")
    parser.add_argument("--poll-ms", type=float, default=1.0, help="Studio9 latency poll interval (1 ms)")
    parser.add_argument("--deadline", type=float, default=900.0, help="overall limit in seconds (900)")
    args = parser.parse_args()
    args.bare_processes = args.bare_processes or max(args.workers)
    numbers = (
        args.jobs,
        args.latency_samples,
        args.threads,
        args.rounds,
        args.bare_processes,
        args.concurrency,
    )
    if min(*numbers, *args.workers) < 1 or args.deadline <= 0 or args.poll_ms <= 0:
        parser.error("every count, --poll-ms and --deadline must be positive")
    return args


def run(args: argparse.Namespace) -> int:
    from studio9.logs import configure_logging

    deadline = Deadline(time.monotonic() + args.deadline)
    shown = (
        "jobs",
        "latency_samples",
        "threads",
        "workers",
        "rounds",
        "bare_processes",
        "concurrency",
        "poll_ms",
    )
    print(*(f"{k}={getattr(args, k)}".replace(" ", "") for k in shown), f"cpus={os.cpu_count()}", flush=True)
    configure_logging("warning", "json")  # for this process's own Studio9 container
    pairs: list[tuple[Figure, Figure]] = []  # (bare, the Studio9 run right after it)
    with tempfile.TemporaryDirectory(prefix="studio9-jobs-cloud-") as tmp, vhost() as amqp_url:
        try:
            for number in range(args.rounds):
                (workdir := Path(tmp) / f"round{number}").mkdir()
                for count in args.workers:
                    baseline = bare(args, amqp_url, deadline)
                    pairs.append((baseline, studio9(args, count, amqp_url, workdir, deadline)))
        except (BenchTimeout, TimeoutError, subprocess.TimeoutExpired) as exc:
            report(pairs)
            print(
                f"jobs_cloud: gave up after --deadline {args.deadline:g}s: {exc or 'timed out'}",
                file=sys.stderr,
            )
            return 2
    report(pairs)
    return 1 if any(ours.failed for _, ours in pairs) else 0


def main() -> int:
    # SIGTERM as Ctrl-C: asyncio.run cancels its task (sys.exit in the loop hangs on AnyIO's threads).
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        return run(parse_args())
    except KeyboardInterrupt:
        print("jobs_cloud: interrupted; cleaned up", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
