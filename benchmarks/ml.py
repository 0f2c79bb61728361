"""ML: an ``ml.train`` job, online predictions and 100-row predictions through a real ``studio9
serve``, each beside a raw baseline measured in the same run.

A generated table (``ml_data.generate``) is written as CSV, uploaded and imported (the
``tables.import`` job; timed, not counted after) into a fresh ``python -m studio9 serve`` on a free
loopback port: a new data directory, the edge defaults (SQLite, ``file://`` blobs, in-process job
workers), ``STUDIO9_*`` variables of this environment ignored, the admin token from the data dir.

* train: ``raw_sklearn`` is ``ml_data.raw_train`` in this process on the table's stored Parquet
  parts (read, search, refit of the best candidate, plain scikit-learn); ``studio9`` is the same
  search as an ``ml.train`` job, from ``POST /api/v1/jobs`` until a poll every 0.2 s sees it
  completed. The job's stored heartbeats (one every 5 s, the edge default) bracket its steps:
  search and refit, metrics and permutation importance, writing the outputs.
* online: one row a request, ``POST /api/v1/models/{name}/aliases/champion/predict`` against the
  bare app's ``POST /predict`` (``ml_data.bare_app``: uvicorn in a child process, one worker like
  ``serve``, the skops file exported from Studio9), taking turns, keep-alive ``httpx`` clients.
* throughput: 100-row requests from ``--clients`` concurrent keep-alive connections for
  ``--duration`` seconds per target (in two rounds, the targets taking turns); rows/s.

    .venv/bin/python benchmarks/ml.py                     # 200,000 rows x 30 columns
    .venv/bin/python benchmarks/ml.py --quick             # 20,000 rows: a smoke run
    .venv/bin/python benchmarks/ml.py --only online --only throughput
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import ml_data
from children import HOST, child, free_port, wait_ready
from deadline import BenchTimeout, Deadline

ADMIN_TOKEN_FILE = "admin-token"  # studio9.bootstrap.ADMIN_TOKEN_FILE
MODEL = "bench-model"
POLL_S = 0.2
AIM_TRAIN, AIM_P50_MS, AIM_THROUGHPUT = 0.85, 5.0, 0.7
UVICORN_FLAGS = ("--no-access-log", "--log-level", "warning", "--lifespan", "on", "--no-server-header")
#: Progress messages of ml.train that open its later steps (studio9/ml/train_job.py, training.py).
REFIT, OUTPUTS = "refit ", "writing outputs"


class JobFailed(Exception):
    """A job of the benchmark ended failed or cancelled."""


def _expect(response: httpx.Response, *statuses: int) -> Any:
    if response.status_code not in statuses:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    return response.json() if response.content else None


def _wait_job(api: httpx.Client, job_id: str, deadline: Deadline, what: str) -> dict[str, Any]:
    """The job once completed; ``JobFailed`` when it failed or was cancelled."""
    while True:
        deadline.left(what)
        job: dict[str, Any] = _expect(api.get(f"/api/v1/jobs/{job_id}"), 200)
        if job["status"] == "completed":
            return job
        if job["status"] in ("failed", "cancelled"):
            raise JobFailed(f"{what}: the job {job['status']}: {job.get('error')}")
        time.sleep(POLL_S)


def _at(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


@contextlib.contextmanager
def _studio9(workdir: Path, deadline: Deadline) -> Iterator[tuple[httpx.Client, Path]]:
    data_dir, log_path, port = workdir / "data", workdir / "serve.log", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env.update(STUDIO9_DATA_DIR=str(data_dir), STUDIO9_LOG_LEVEL="warning", STUDIO9_SHUTDOWN_TIMEOUT="5")
    base = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "studio9", "serve", "--host", HOST, "--port", str(port)]
    with child(cmd, env, log_path) as proc:
        wait_ready(f"{base}/health", proc, log_path, deadline)
        token = (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120.0) as api:
            yield api, data_dir


@contextlib.contextmanager
def _bare(workdir: Path, model_file: Path, deadline: Deadline) -> Iterator[str]:
    log_path, port = workdir / "bare.log", free_port()
    env = {**os.environ, ml_data.MODEL_FILE_ENV: str(model_file)}
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.ml_data:bare_app"]
    with child([*cmd, "--host", HOST, "--port", str(port), *UVICORN_FLAGS], env, log_path) as proc:
        wait_ready(f"http://{HOST}:{port}/schema", proc, log_path, deadline)
        yield f"http://{HOST}:{port}/predict"


def _import(api: httpx.Client, csv: Path, data_dir: Path, deadline: Deadline) -> tuple[str, list[Path]]:
    started = time.perf_counter()
    uploaded = _expect(api.post("/api/v1/files", params={"name": "bench.csv"}, content=csv.read_bytes()), 201)
    upload_s = time.perf_counter() - started
    created = _expect(api.post("/api/v1/tables", json={"name": "bench", "file": uploaded["id"]}), 202)
    job = _wait_job(api, created["job"]["id"], deadline, "importing the table")
    table_id = created["table"]["id"]
    content = _expect(api.get(f"/api/v1/assets/{table_id}"), 200)["version"]["content"]
    print(
        f"import: upload_s={upload_s:.1f} import_s={time.perf_counter() - started:.1f}"
        f" (job {_at(job['completed_at']) - _at(job['started_at']):.1f} s) rows={content['row_count']}"
        "  (not counted below)",
        flush=True,
    )
    return table_id, [data_dir / "blobs" / key for key in content["parts"]]


def _bracket(beats: list[dict[str, Any]], started: float, marker: str) -> tuple[float, float] | None:
    """When the step opened by ``marker`` began, as seconds after ``started``: between the last
    heartbeat before the first one showing it (or a later step) and that one."""
    later = (REFIT, OUTPUTS) if marker == REFIT else (OUTPUTS,)
    before = started
    for beat in beats:  # oldest first
        if any(m in (beat["message"] or "") for m in later):
            return before - started, _at(beat["at"]) - started
        before = _at(beat["at"])
    return None


def _phases(api: httpx.Client, job: dict[str, Any]) -> tuple[str, tuple[float, float] | None]:
    """The job's steps as text (seconds, bracketed by its heartbeats), and its search and refit's."""
    beats = _expect(api.get(f"/api/v1/jobs/{job['id']}/heartbeats", params={"limit": 1000}), 200)["items"]
    beats.reverse()
    started, done = _at(job["started_at"]), _at(job["completed_at"])
    refit, outputs = _bracket(beats, started, REFIT), _bracket(beats, started, OUTPUTS)
    if refit is None or outputs is None:
        return f"steps too short for its {len(beats)} heartbeats", None
    run = done - started
    text = (
        f"search+refit {refit[0]:.0f}-{refit[1]:.0f} s, metrics+importance"
        f" {max(0.0, outputs[0] - refit[1]):.0f}-{outputs[1] - refit[0]:.0f} s,"
        f" outputs {run - outputs[1]:.0f}-{run - outputs[0]:.0f} s; from {len(beats)} heartbeats"
    )
    return text, refit


def _train_job(api: httpx.Client, params: dict[str, Any], deadline: Deadline, what: str) -> dict[str, Any]:
    submitted = _expect(api.post("/api/v1/jobs", json={"type": "ml.train", "params": params}), 201, 202)
    return _wait_job(api, submitted["id"], deadline, what)


def measure_train(api: httpx.Client, table_id: str, parts: list[Path], args: Any, deadline: Deadline) -> None:
    search = {"method": args.search, "n_candidates": args.candidates, "cv_folds": args.folds}
    print(f"train: algorithm={args.algorithm} search={json.dumps(search)} seed={args.seed}", flush=True)
    deadline.left("training in scikit-learn")
    extras = args.workdir if args.raw_extras else None
    raw = ml_data.raw_train(parts, search, args.algorithm, args.seed, extras=extras)
    raw_s = sum(raw.seconds.values())
    steps = ", ".join(f"{k} {v:.1f}" for k, v in raw.seconds.items())
    print(
        f"  raw_sklearn  seconds={raw_s:.1f} ({steps}) candidates={len(raw.scores)}"
        f" best={raw.best + 1} cv_auc={[round(s, 4) for s in raw.scores]}",
        flush=True,
    )
    if raw.extras:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in raw.extras.items())
        print(f"  raw_extras   seconds={sum(raw.extras.values()):.1f} ({steps})", flush=True)
    params = {"table": table_id, "target": ml_data.TARGET, "algorithms": [args.algorithm], "search": search}
    params.update(seed=args.seed, model_name=MODEL)
    started = time.perf_counter()
    job = _train_job(api, params, deadline, "training through ml.train")
    studio9_s = time.perf_counter() - started
    stored = _at(job["completed_at"]) - _at(job["submitted_at"])
    board = _expect(api.get(f"/api/v1/assets/{job['result']['report']}"), 200)["version"]["content"]
    key = functools.partial(json.dumps, sort_keys=True)
    scores = {key(row["params"]): row["mean_score"] for row in board["leaderboard"]}
    diff = max(abs(scores[key(p)] - s) for p, s in zip(raw.params, raw.scores, strict=True))
    same = key(board["leaderboard"][0]["params"]) == key(raw.params[raw.best])
    holdout = job["result"]["metrics"].get("holdout", {}).get("roc_auc", math.nan)
    steps, search_refit = _phases(api, job)
    print(
        f"  studio9      seconds={studio9_s:.1f} stored_s={stored:.1f} ({steps})"
        f" same_best={'yes' if same else 'NO'} max_cv_auc_diff={diff:.1e} holdout_auc={holdout:.4f}",
        flush=True,
    )
    ratio = raw_s / studio9_s
    verdict = "met" if ratio >= AIM_TRAIN else "NOT met"
    print(f"  ratio={ratio:.3f}  (raw_sklearn / studio9 seconds; aim: >= {AIM_TRAIN}; {verdict})", flush=True)
    if raw.extras:
        both = (raw_s + sum(raw.extras.values())) / studio9_s
        print(f"  ratio_same_steps={both:.3f}  ((raw_sklearn + raw_extras) / studio9)", flush=True)
    if search_refit is not None and search_refit[0] > 0:
        low, high = raw_s / search_refit[1], raw_s / search_refit[0]
        print(
            f"  ratio_search_refit={low:.2f}-{high:.2f}  (raw_sklearn / the job's search and refit)",
            flush=True,
        )


def _quick_model(api: httpx.Client, table_id: str, args: Any, deadline: Deadline) -> str:
    """A model for the HTTP measurements when ``train`` is not run: defaults, no hold-out."""
    search = {"method": "none", "cv_folds": 2}
    params = {"table": table_id, "target": ml_data.TARGET, "algorithms": [args.algorithm], "search": search}
    params.update(validation={"holdout_fraction": 0}, seed=args.seed, model_name=MODEL)
    started = time.perf_counter()
    _train_job(api, params, deadline, "training the model for the HTTP measurements")
    took = time.perf_counter() - started
    return f"{args.algorithm} with its defaults (search none), trained for these measurements in {took:.0f} s"


def _agree(api: httpx.Client, bare_url: str, path: str, body: bytes) -> float:
    """The largest difference of a probability between the two answers to ``body``."""
    headers = {"Content-Type": "application/json"}
    ours = _expect(api.post(path, content=body, headers=headers), 200)["predictions"]
    theirs = _expect(httpx.post(bare_url, content=body, headers=headers, timeout=60.0), 200)["predictions"]
    if [p["label"] for p in ours] != [p["label"] for p in theirs]:
        raise RuntimeError("Studio9 and the bare app answered different labels for the same rows")
    pairs = zip(ours, theirs, strict=True)
    return max(
        float(abs(p["probabilities"][c] - q["probabilities"][c]))
        for p, q in pairs
        for c in p["probabilities"]
    )


def measure_online(
    api: httpx.Client, urls: dict[str, str], rows: list[Any], args: Any, deadline: Deadline
) -> None:
    """One-row requests, sequential, the two targets taking turns request by request."""
    bodies = [json.dumps({"rows": [row]}).encode() for row in rows]
    headers = {"Content-Type": "application/json"}
    times: dict[str, list[float]] = {name: [] for name in urls}
    with httpx.Client(headers=headers, timeout=30.0) as bare:
        clients = {"bare_litestar": bare, "studio9": api}
        for i in range(args.warmup + args.requests):
            deadline.left("timing online predictions")
            for name, url in urls.items():
                started = time.perf_counter()
                response = clients[name].post(url, content=bodies[i % len(bodies)], headers=headers)
                took = time.perf_counter() - started
                _expect(response, 200)
                if i >= args.warmup:
                    times[name].append(took)
    print(
        f"online: rows_per_request=1 requests={args.requests} warmup={args.warmup} (sequential, taking turns)"
    )
    for name, values in times.items():
        print(
            f"  {name:<14} p50_ms={ml_data.pct_ms(values, 0.5):.2f} p99_ms={ml_data.pct_ms(values, 0.99):.2f}"
            f" mean_ms={statistics.fmean(values) * 1000:.2f}"
        )
    p50 = ml_data.pct_ms(times["studio9"], 0.5)
    ratio = p50 / ml_data.pct_ms(times["bare_litestar"], 0.5)
    verdict = "met" if p50 <= AIM_P50_MS else "NOT met"
    print(
        f"  ratio_p50={ratio:.3f}  (studio9 / bare_litestar; lower is faster)"
        f"  aim: studio9 p50_ms <= {AIM_P50_MS:g} {verdict} ({p50:.2f})",
        flush=True,
    )


def measure_throughput(
    urls: dict[str, str], headers: dict[str, str], table: Any, args: Any, deadline: Deadline
) -> None:
    """``--batch``-row requests from ``--clients`` connections; two rounds, the targets in turn."""
    bodies = [
        json.dumps({"rows": ml_data.json_rows(table, args.batch, offset=k * args.batch)}).encode()
        for k in range(8)
    ]
    heads = {"bare_litestar": {"Content-Type": "application/json"}, "studio9": headers}
    done: dict[str, list[Any]] = {name: [0, 0.0, []] for name in urls}
    for name, url in urls.items():  # warm-up
        asyncio.run(ml_data.load(url, heads[name], bodies, args.clients, min(2.0, args.duration / 2)))
    for _ in range(2):
        for name, url in urls.items():
            deadline.left("timing 100-row predictions")
            started = time.perf_counter()
            count, latencies = asyncio.run(
                ml_data.load(url, heads[name], bodies, args.clients, args.duration / 2)
            )
            done[name][0] += count
            done[name][1] += time.perf_counter() - started
            done[name][2].extend(latencies)
    print(f"throughput: rows_per_request={args.batch} clients={args.clients} seconds={args.duration:g}")
    rates = {}
    for name, (count, seconds, latencies) in done.items():
        rates[name] = count * args.batch / seconds
        print(
            f"  {name:<14} rows_per_s={rates[name]:.0f} requests={count}"
            f" p50_ms={ml_data.pct_ms(latencies, 0.5):.2f} p99_ms={ml_data.pct_ms(latencies, 0.99):.2f}"
        )
    ratio = rates["studio9"] / rates["bare_litestar"]
    verdict = "met" if ratio >= AIM_THROUGHPUT else "NOT met"
    print(
        f"  ratio={ratio:.3f}  (studio9 / bare_litestar rows/s; aim: >= {AIM_THROUGHPUT}; {verdict})",
        flush=True,
    )


def measure_http(
    api: httpx.Client, table_id: str, table: Any, trained: bool, args: Any, deadline: Deadline
) -> None:
    which = "the train step's model" if trained else _quick_model(api, table_id, args, deadline)
    model = _expect(api.get(f"/api/v1/models/{MODEL}"), 200)
    version = max(v["version"] for v in model["versions"])
    _expect(api.put(f"/api/v1/models/{MODEL}/aliases/champion", json={"version": version}), 200)
    export = api.get(f"/api/v1/models/{MODEL}/versions/{version}/export", params={"format": "skops"})
    if export.status_code != 200:
        raise RuntimeError(f"the skops export answered {export.status_code}: {export.text[:300]}")
    model_file = args.workdir / "model.skops"
    model_file.write_bytes(export.content)
    print(f"model: {MODEL} version {version}: {which}; the bare app serves its skops export", flush=True)
    path = f"/api/v1/models/{MODEL}/aliases/champion/predict"
    with _bare(args.workdir, model_file, deadline) as bare_url:
        body = json.dumps({"rows": ml_data.json_rows(table, args.batch)}).encode()
        print(f"  same answers: max_probability_diff={_agree(api, bare_url, path, body):.1e}", flush=True)
        urls = {"bare_litestar": bare_url, "studio9": str(api.base_url.join(path))}
        if "online" in args.only:
            measure_online(api, urls, ml_data.json_rows(table, 200), args, deadline)
        if "throughput" in args.only:
            measure_throughput(urls, dict(api.headers), table, args, deadline)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add = parser.add_argument
    add("--rows", type=int, default=200_000, help="rows of the generated table (default 200,000)")
    add("--cols", type=int, default=30, help="feature columns (default 30)")
    add("--quick", action="store_true", help="a smoke run: 20,000 rows, fewer requests, shorter loads")
    add("--only", action="append", choices=("train", "online", "throughput"), help="repeatable; default all")
    add("--algorithm", default="hist_gradient_boosting", help="the one algorithm searched")
    add("--search", default="random", choices=("none", "random", "halving"))
    add("--candidates", type=int, default=1, help="search.n_candidates, besides the defaults (default 1)")
    add("--folds", type=int, default=3, help="search.cv_folds (default 3)")
    add("--raw-extras", action="store_true", help="also time the job's later steps in scikit-learn")
    add("--requests", type=int, default=500, help="online: timed requests per target (default 500)")
    add("--warmup", type=int, default=50, help="online: warm-up requests per target (default 50)")
    add("--batch", type=int, default=100, help="throughput: rows per request (default 100)")
    add("--clients", type=int, default=4, help="throughput: concurrent connections (default 4)")
    add("--duration", type=float, default=20.0, help="throughput: seconds per target (default 20)")
    add("--seed", type=int, default=0)
    add("--deadline", type=float, default=1800.0, help="overall seconds (default 1800)")
    args = parser.parse_args()
    if args.rows < 1000 or args.requests < 1 or args.batch < 1 or args.clients < 1:
        parser.error("--rows must be at least 1000; --requests, --batch and --clients at least 1")
    if args.quick:
        args.rows, args.requests, args.duration = 20_000, 200, 6.0
    args.only = args.only or ["train", "online", "throughput"]
    return args


def run(args: argparse.Namespace) -> int:
    deadline = Deadline(time.monotonic() + args.deadline)
    with tempfile.TemporaryDirectory(prefix="studio9-ml-bench-") as tmp:
        args.workdir = Path(tmp)
        started = time.perf_counter()
        table = ml_data.generate(args.rows, args.cols, args.seed)
        csv = args.workdir / "bench.csv"
        size = ml_data.write_csv(table, csv)
        numbers, texts = ml_data.column_counts(args.cols)
        print(
            f"rows={args.rows} cols={args.cols} ({numbers} numbers, {texts} text, 1 timestamp)"
            f" csv_mb={size / 1e6:.1f} generated_in_s={time.perf_counter() - started:.1f}"
            f" cpus={os.cpu_count()}",
            flush=True,
        )
        try:
            with _studio9(args.workdir, deadline) as (api, data_dir):
                table_id, parts = _import(api, csv, data_dir, deadline)
                if "train" in args.only:
                    measure_train(api, table_id, parts, args, deadline)
                if "online" in args.only or "throughput" in args.only:
                    measure_http(api, table_id, table, "train" in args.only, args, deadline)
        except JobFailed as exc:
            print(f"failed: {exc}", file=sys.stderr)
            return 1
        except BenchTimeout as exc:
            print(f"deadline: {exc}", file=sys.stderr)
            return 2
    return 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped on SIGTERM too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
