"""MLflow tracking: the same client workload against Studio9 and a real ``mlflow server``, in one run.

Both servers run on free loopback ports with a fresh temporary directory each:

* ``mlflow``: ``mlflow server`` 3.17.2 from a cached virtualenv (built once under
  ``~/.cache/studio9-bench/mlflow-3.17.2``: mlflow's server cannot live in the project venv), SQLite
  backend store, local artifacts, its defaults otherwise (4 uvicorn workers, access log).
* ``studio9``: ``python -m studio9 serve`` on the edge defaults (SQLite, ``file://`` blobs, one
  process), ``STUDIO9_*`` variables of this environment ignored, the first admin's token from
  ``<data dir>/admin-token`` as ``MLFLOW_TRACKING_TOKEN``.

Measuring starts once each server's process tree has settled (under 10 % of a CPU). Clients are
the project venv's ``mlflow-skinny`` ``MlflowClient`` in spawned processes, configured by
``MLFLOW_TRACKING_URI`` (and the token for Studio9): the same code against both.

* runs: each client process creates and finishes runs one after the other for ``--seconds``:
  ``create_run`` → ``log_batch`` (20 params) → ``log_batch`` (100 metrics) → ``set_terminated``
  (which also gets the run, to print its URL): 5 requests a run. 1 and 8 clients.
* search: 10,000 runs (10 params, 10 metrics each, the same values on both) seeded into Studio9
  through its REST API by 8 processes (create, one log-batch, update per run), into mlflow through
  its own ``SqlAlchemyStore`` in its venv (through REST it takes ~15 min on a busy 2-core box;
  ``--mlflow-seed rest`` does it anyway); then ``search_runs(..., max_results=100)`` of three shapes,
  sequential, the two servers taking turns round by round, each also as a bare ``POST runs/search``.

    .venv/bin/python benchmarks/tracking.py
    .venv/bin/python benchmarks/tracking.py --only mlflow --seconds 5 --search-runs 1000   # a quick look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from children import HOST, child, free_port, wait_ready
from deadline import BenchTimeout, Deadline
from tracking_mlflow import (
    MLFLOW_VERSION,
    SHAPES,
    VENV_DIR,
    Target,
    create_runs,
    ensure_venv,
    mlflow_server,
    search,
    seed_runs,
    store_seed,
    tree_cpu_s,
    tree_rss_mb,
    wait_idle,
    worker_restarts,
)

ADMIN_TOKEN_FILE = "admin-token"  # studio9.bootstrap.ADMIN_TOKEN_FILE
MLFLOW_API = "/api/2.0/mlflow"
AIM_RUNS_RATIO, AIM_SEARCH_P50_MS, AIM_SEARCH_RATIO = 5.0, 15.0, 5.0
SPAWN = multiprocessing.get_context("spawn")


class ChildFailed(Exception):
    """A client process reported an error."""


class NotReady(Exception):
    """Studio9 does not serve the MLflow REST API (yet)."""


def _expect(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.url.path} answered {response.status_code}: {response.text[:300]}"
        )
    return response.json()


@contextlib.contextmanager
def studio9_server(workdir: Path, log_level: str, deadline: Deadline) -> Iterator[tuple[Target, int]]:
    data_dir, log_path, port = workdir / "data", workdir / "serve.log", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO9_", "MLFLOW_"))}
    env.update(STUDIO9_DATA_DIR=str(data_dir), STUDIO9_LOG_LEVEL=log_level, STUDIO9_SHUTDOWN_TIMEOUT="5")
    base = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "studio9", "serve", "--host", HOST, "--port", str(port)]
    with child(cmd, env, log_path) as proc:
        wait_ready(f"{base}/health", proc, log_path, deadline)
        target = Target("studio9", base, (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip())
        probe = httpx.get(
            f"{base}{MLFLOW_API}/experiments/get-by-name",
            params={"experiment_name": "studio9-bench-probe"},
            headers=_auth(target),
        )
        if probe.status_code != 404 or "RESOURCE_DOES_NOT_EXIST" not in probe.text:
            raise NotReady(f"{probe.status_code} {probe.text[:200]} (run with --only mlflow)")
        yield target, proc.pid


def _auth(target: Target) -> dict[str, str]:
    return {"Authorization": f"Bearer {target.token}"} if target.token else {}


def create_experiment(target: Target, name: str) -> str:
    response = httpx.post(
        f"{target.uri}{MLFLOW_API}/experiments/create", json={"name": name}, headers=_auth(target)
    )
    return str(_expect(response, 200)["experiment_id"])


def _run_children(
    jobs: list[tuple[Any, tuple[Any, ...]]], deadline: Deadline, what: str, after_start: Any = None
) -> list[dict[str, Any]]:
    """Start one spawned process per job (``function(*args, queue)``), return what each reported."""
    queue = SPAWN.Queue()
    procs = [SPAWN.Process(target=function, args=(*args, queue), daemon=True) for function, args in jobs]
    for proc in procs:
        proc.start()
    if after_start is not None:
        after_start()
    try:
        results = []
        for _ in procs:
            result = queue.get(timeout=deadline.left(what))
            if "error" in result:
                raise ChildFailed(f"{what}: {result['error']}")
            results.append(result)
        return results
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=10)


def _pct_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


def measure_runs(
    target: Target, pid: int, experiment: str, clients: int, args: Any, deadline: Deadline
) -> dict[str, Any]:
    barrier = SPAWN.Barrier(clients)
    shape = (args.params, args.metrics)
    jobs = [(create_runs, (target, experiment, shape, args.seconds, barrier)) for _ in range(clients)]
    cpu = tree_cpu_s(pid)
    results = _run_children(jobs, deadline, f"creating runs on {target.name}")
    runs = sum(r["runs"] for r in results)
    cpu_ms = (tree_cpu_s(pid) - cpu) * 1000 / (runs + clients)  # the warm-up runs too
    wall = max(r["ended"] for r in results) - min(r["started"] for r in results)
    latencies = [x for r in results for x in r["latencies"]]
    errors = sum(r["errors"] for r in results)
    figures = {"runs_per_s": runs / wall, "runs": runs, "errors": errors, "seconds": wall, "cpu_ms": cpu_ms,
               "p50_ms": _pct_ms(latencies, 0.5), "p99_ms": _pct_ms(latencies, 0.99)}  # fmt: skip
    print(
        f"  clients={clients} {target.name:<8} runs_per_s={figures['runs_per_s']:.1f} runs={runs}"
        f" run_p50_ms={figures['p50_ms']:.1f} run_p99_ms={figures['p99_ms']:.1f}"
        f" server_cpu_ms_per_run={cpu_ms:.1f} errors={errors}",
        flush=True,
    )
    if errors:
        first = next(r["first_error"] for r in results if r["first_error"])
        print(f"    first error: {first}", flush=True)
    return figures


def seed(target: Target, experiment: str, args: Any, deadline: Deadline) -> float:
    started = time.perf_counter()
    shape, n = (args.seed_params, args.seed_metrics), args.seed_clients
    if target.name == "mlflow" and args.mlflow_seed == "store":
        how = "mlflow's SqlAlchemyStore, in its venv"
        timeout = deadline.left("seeding mlflow")
        store_seed(args.mlflow_python, args.mlflow_db, experiment, args.search_runs, shape, timeout)
    else:
        how = f"REST, {n} clients"
        jobs = [(seed_runs, (target, experiment, range(k, args.search_runs, n), shape)) for k in range(n)]
        _run_children(jobs, deadline, f"seeding {target.name}")
    took = time.perf_counter() - started
    rate = args.search_runs / took
    print(f"  seed {target.name:<8} seconds={took:.1f} runs_per_s={rate:.1f} ({how})", flush=True)
    return took


def measure_search(targets: list[Target], experiments: dict[str, str], args: Any, deadline: Deadline) -> Any:
    """One search process per target; round by round they take turns, a semaphore each."""
    turns = [SPAWN.Semaphore(0) for _ in targets]
    jobs = [
        (search, (t, experiments[t.name], args.queries, args.warmup, turns[k], turns[(k + 1) % len(targets)]))
        for k, t in enumerate(targets)
    ]
    results = _run_children(jobs, deadline, "searching runs", after_start=turns[0].release)
    return {r["target"]: r for r in results}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--only", action="append", choices=("mlflow", "studio9"), help="repeatable; default both")
    add(
        "--clients", default="1,8", help="client processes for the runs figure, comma-separated (default 1,8)"
    )
    add("--seconds", type=float, default=20.0, help="runs: seconds per target and client count (default 20)")
    add("--params", type=int, default=20, help="runs: params per run (default 20)")
    add("--metrics", type=int, default=100, help="runs: metrics per run (default 100)")
    add("--search-runs", type=int, default=10_000, help="search: runs seeded (default 10,000)")
    add("--seed-clients", type=int, default=8, help="search: seeding processes (default 8)")
    add("--seed-params", type=int, default=10, help="search: params per seeded run (default 10)")
    add("--seed-metrics", type=int, default=10, help="search: metrics per seeded run (default 10)")
    seed_help = "how mlflow's search corpus is written: its SqlAlchemyStore (default), or REST as Studio9's"
    add("--mlflow-seed", choices=("store", "rest"), default="store", help=seed_help)
    add(
        "--queries",
        type=int,
        default=100,
        help="search: timed rounds, each shape once per round (default 100)",
    )
    add("--warmup", type=int, default=5, help="search: untimed rounds first (default 5)")
    add("--studio9-log-level", default="info", help="STUDIO9_LOG_LEVEL (default info, the edge default)")
    add("--venv", type=Path, default=VENV_DIR, help=f"mlflow's virtualenv (default {VENV_DIR})")
    add("--deadline", type=float, default=3600.0, help="overall seconds (default 3600)")
    args = parser.parse_args()
    args.only = args.only or ["mlflow", "studio9"]
    args.clients = [int(c) for c in args.clients.split(",")]
    if args.search_runs < 1000 or min(args.clients) < 1 or args.queries < 1:
        parser.error(
            "--search-runs must be at least 1000 (the shapes need 100 hits); --clients, --queries >= 1"
        )
    return args


def _ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def report_search(found: dict[str, Any], args: Any) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Print the search figures; the JSON's p50 and p99 parts, and whether the answers agree."""
    p50s: dict[str, Any] = {}
    p99s: dict[str, Any] = {}
    print(
        f"search: runs={args.search_runs} returned=100 rounds={args.queries} warmup={args.warmup}"
        " (sequential, the servers taking turns; client = MlflowClient().search_runs, http = a bare POST)"
    )
    for shape, (filter_string, order_by) in SHAPES.items():
        print(f"  {shape:<7} filter={filter_string!r} order_by={order_by}")
        p50, p99 = p50s.setdefault(shape, {}), p99s.setdefault(shape, {})
        for name, result in found.items():
            for how, key in (("client", name), ("http", f"{name}_http")):
                p50[key] = round(_pct_ms(result["times"][shape][how], 0.5), 2)
                p99[key] = round(_pct_ms(result["times"][shape][how], 0.99), 2)
            print(
                f"    {name:<8} client_p50_ms={p50[name]:.2f} client_p99_ms={p99[name]:.2f}"
                f" http_p50_ms={p50[f'{name}_http']:.2f} http_p99_ms={p99[f'{name}_http']:.2f}"
            )
        if len(found) < 2:
            continue
        verdicts = []
        for how, suffix in (("client", ""), ("http", "_http")):
            for figures in (p50, p99):
                figures[f"ratio{suffix}"] = round(
                    _ratio(figures[f"mlflow{suffix}"], figures[f"studio9{suffix}"]), 3
                )
            met = p50[f"studio9{suffix}"] <= AIM_SEARCH_P50_MS and p50[f"ratio{suffix}"] >= AIM_SEARCH_RATIO
            verdicts.append(f"{how} {'met' if met else 'NOT met'}")
        print(
            f"    ratio_p50={p50['ratio']:.2f} ratio_p99={p99['ratio']:.2f}"
            f" ratio_http_p50={p50['ratio_http']:.2f} ratio_http_p99={p99['ratio_http']:.2f}"
            "  (mlflow / studio9 ms: times faster)"
        )
        print(
            f"    aim: studio9 p50_ms <= {AIM_SEARCH_P50_MS:g} and ratio_p50 >= {AIM_SEARCH_RATIO:g}:"
            f" {', '.join(verdicts)}"
        )
    answers = [r["answers"] for r in found.values()]
    same = all(a == answers[0] for a in answers)
    if len(found) == 2:
        print(f"  same_answers={'yes' if same else 'NO'}  (run names of each shape's page, in order)")
        for shape in SHAPES if not same else ():
            if answers[0][shape] != answers[1][shape]:
                print(f"    {shape}: mlflow {answers[0][shape][:5]}... studio9 {answers[1][shape][:5]}...")
    return p50s, p99s, same


def run(args: argparse.Namespace) -> int:
    deadline = Deadline(time.monotonic() + args.deadline)
    load_before = os.getloadavg()
    figures: dict[str, Any] = {"clients": {}, "rss_mb": {}}
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="studio9-tracking-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        targets: list[Target] = []
        pids: dict[str, int] = {}
        try:
            if "mlflow" in args.only:
                mlflow, mlflow_dir = ensure_venv(args.venv, deadline), Path(tmp) / "mlflow"
                mlflow_dir.mkdir()
                args.mlflow_python, args.mlflow_db = (
                    mlflow.parent / "python",
                    f"sqlite:///{mlflow_dir}/mlflow.db",
                )
                url, pids["mlflow"] = stack.enter_context(mlflow_server(mlflow, mlflow_dir, deadline))
                targets.append(Target("mlflow", url, None))
            if "studio9" in args.only:
                (Path(tmp) / "studio9").mkdir()
                target, pids["studio9"] = stack.enter_context(
                    studio9_server(Path(tmp) / "studio9", args.studio9_log_level, deadline)
                )
                targets.append(target)
            settled = ", ".join(f"{name} {wait_idle(pid, deadline):.0f} s" for name, pid in pids.items())
            print(
                f"servers: {', '.join(t.name for t in targets)} (mlflow {MLFLOW_VERSION}, sqlite, 4 workers;"
                f" studio9 serve, edge defaults, log level {args.studio9_log_level}; settled after {settled})"
                f" cpus={os.cpu_count()} load_avg={','.join(f'{x:.2f}' for x in load_before)}",
                flush=True,
            )
            print(f"runs: params={args.params} metrics={args.metrics} seconds={args.seconds:g}"
                  " requests_per_run=5 (create, log-batch, log-batch, get, update)", flush=True)  # fmt: skip
            runs_exp = {t.name: create_experiment(t, "bench-runs") for t in targets}
            for clients in args.clients:
                measured = {
                    t.name: measure_runs(t, pids[t.name], runs_exp[t.name], clients, args, deadline)
                    for t in targets
                }
                failed |= any(m["errors"] for m in measured.values())
                entry = {name: round(m["runs_per_s"], 1) for name, m in measured.items()}
                entry.update(
                    {f"{name}_cpu_ms_per_run": round(m["cpu_ms"], 1) for name, m in measured.items()}
                )
                if len(measured) == 2:
                    entry["ratio"] = round(_ratio(entry["studio9"], entry["mlflow"]), 3)
                    verdict = "met" if entry["ratio"] >= AIM_RUNS_RATIO else "NOT met"
                    print(f"  clients={clients} ratio={entry['ratio']:.2f}  (studio9 / mlflow runs/s;"
                          f" aim: >= {AIM_RUNS_RATIO:g} {verdict})", flush=True)  # fmt: skip
                figures["clients"][clients] = entry
            print(
                f"seeding: runs={args.search_runs} params={args.seed_params} metrics={args.seed_metrics}"
                " (REST: create, log-batch, update per run)",
                flush=True,
            )
            search_exp = {t.name: create_experiment(t, "bench-search") for t in targets}
            figures["seed_seconds"] = {
                t.name: round(seed(t, search_exp[t.name], args, deadline), 1) for t in targets
            }
            p50s, p99s, same = report_search(measure_search(targets, search_exp, args, deadline), args)
            failed |= not same
            figures["search_p50_ms"], figures["search_p99_ms"] = p50s, p99s
        except BenchTimeout as exc:
            print(f"deadline: {exc}", file=sys.stderr)
            return 2
        except (ChildFailed, NotReady) as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
        finally:
            for name, pid in pids.items():
                rss, hwm = tree_rss_mb(pid)
                figures["rss_mb"][name] = {"rss": round(rss), "peak": round(hwm)}
                print(f"memory {name:<8} rss_mb={rss:.0f} peak_rss_mb={hwm:.0f}  (process tree, sum)")
            if "mlflow" in pids:
                restarts = worker_restarts(Path(tmp) / "mlflow")
                print(f"mlflow worker_restarts={restarts} (workers uvicorn replaced: a missed health check)")
    load = os.getloadavg()
    print(f"load_avg_after={','.join(f'{x:.2f}' for x in load)}")
    main_clients = max(args.clients)
    summary = {
        "runs_per_s": {**figures["clients"].get(main_clients, {}), "clients": main_clients},
        "runs_per_s_by_clients": figures["clients"],
        "search_p50_ms": figures.get("search_p50_ms"),
        "search_p99_ms": figures.get("search_p99_ms"),
        "seed_seconds": figures.get("seed_seconds"),
        "rss_mb": figures["rss_mb"],
        "load_avg": [round(x, 2) for x in (*load_before, *load)],
    }
    print("json: " + json.dumps(summary))
    return 1 if failed else 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped on SIGTERM too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
