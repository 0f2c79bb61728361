"""The MLflow side of ``tracking.py``: the reference ``mlflow server`` (its own cached virtualenv)
and the client workload, which runs in spawned processes of the project venv (the real
``mlflow-skinny`` client), the same code against both servers.

Imported by module name (the benchmarks' directory is on the path, also in spawned children).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx
from children import HOST, free_port, log_tail

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier, Semaphore

    from deadline import Deadline

MLFLOW_VERSION = "3.17.2"
VENV_DIR = Path.home() / ".cache" / "studio9-bench" / f"mlflow-{MLFLOW_VERSION}"
READY_MARK = ".installed"  # written once pip succeeded: a half-built venv is rebuilt
MLFLOW_WORKERS = 4  # `mlflow server`'s default, given explicitly
#: Seconds a step between processes may take before the benchmark gives up on it (importing
#: mlflow in 8 processes on 2 busy cores takes ~20 s).
WAIT_S = 180.0
SEED_START_MS = 1_700_000_000_000
#: Search shapes: (filter, order_by) of ``MlflowClient().search_runs``.
SHAPES: dict[str, tuple[str, list[str]]] = {
    "newest": ("", ["attributes.start_time DESC"]),
    "metric": ("metrics.m0 > 0.5", ["metrics.m1 DESC"]),
    "param": ("params.p0 = 'v3'", []),
}


@attrs.frozen
class Target:
    """One server as the clients see it."""

    name: str
    uri: str
    token: str | None  # Studio9's admin token; never printed


# -- the reference server ------------------------------------------------------------------------


def ensure_venv(venv: Path, deadline: Deadline) -> Path:
    """The ``mlflow`` executable of a virtualenv with mlflow==MLFLOW_VERSION, built once."""
    mlflow = venv / "bin" / "mlflow"
    if (venv / READY_MARK).exists() and mlflow.exists():
        return mlflow
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {venv} (mlflow=={MLFLOW_VERSION}, once; about a minute)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=deadline.left("venv"))
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", f"mlflow=={MLFLOW_VERSION}"]
    subprocess.run(pip, check=True, timeout=deadline.left("pip install mlflow"), stdout=subprocess.DEVNULL)
    (venv / READY_MARK).write_text(MLFLOW_VERSION, encoding="utf-8")
    return mlflow


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the server's own process group (``mlflow server`` runs uvicorn as a child that
    would outlive it), then SIGKILL to what is left of the group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def mlflow_server(mlflow: Path, workdir: Path, deadline: Deadline) -> Iterator[tuple[str, int]]:
    """``mlflow server`` on SQLite with its defaults (4 uvicorn workers, access log on); its URL
    and pid once every worker has started."""
    port, log_path = free_port(), workdir / "mlflow.log"
    cmd = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{workdir / 'mlflow.db'}"]
    cmd += ["--artifacts-destination", str(workdir / "mlartifacts"), "--host", HOST, "--port", str(port)]
    cmd += ["--workers", str(MLFLOW_WORKERS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            # /health answers once the first worker is up; the others take ~20 s more.
            while log_path.read_text(errors="replace").count("Application startup complete") < MLFLOW_WORKERS:
                deadline.left("waiting for mlflow server's workers")
                if proc.poll() is not None:
                    raise RuntimeError(f"mlflow server exited with {proc.returncode}:\n{log_tail(log_path)}")
                time.sleep(0.5)
            url = f"http://{HOST}:{port}"
            if httpx.get(f"{url}/health", timeout=10.0).status_code != 200:
                raise RuntimeError(f"mlflow server's /health failed:\n{log_tail(log_path)}")
            yield url, proc.pid
        finally:
            _stop_group(proc)


def worker_restarts(workdir: Path) -> int:
    """Workers uvicorn's supervisor replaced so far (it kills one that misses a health check)."""
    return (workdir / "mlflow.log").read_text(errors="replace").count(" died")


def _stats() -> dict[int, list[str]]:
    """/proc/<pid>/stat of every process, the fields after the command name (ppid is [1])."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                found[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    return found


def _tree(pid: int, stats: dict[int, list[str]]) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(child for child, fields in stats.items() if int(fields[1]) == current)
    return tree


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) spent so far by ``pid`` and its living descendants."""
    stats = _stats()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(stats[p][11]) + int(stats[p][12]) for p in _tree(pid, stats) if p in stats) / ticks


def wait_idle(pid: int, deadline: Deadline, limit_s: float = 120.0) -> float:
    """Wait until the server's process tree uses under 10 % of a CPU over 2 s (mlflow's job runner
    and its 7 huey consumers import mlflow for ~30 s after the workers answer); seconds waited."""
    started = time.monotonic()
    before = tree_cpu_s(pid)
    while time.monotonic() - started < limit_s:
        deadline.left("waiting for the server to settle")
        time.sleep(2.0)
        now = tree_cpu_s(pid)
        if now - before < 0.2:
            break
        before = now
    return time.monotonic() - started


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """Resident memory of ``pid`` and its descendants (sum of VmRSS, sum of VmHWM), from /proc."""
    rss = hwm = 0.0
    for member in _tree(pid, _stats()):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) / 1024
    return rss, hwm


# -- the client workload (each function below is a spawned process's entry point) ----------------


def _client(target: Target) -> Any:
    """An ``MlflowClient`` for ``target``, configured the way a user's script is: environment."""
    for key in [k for k in os.environ if k.startswith("MLFLOW_")]:
        del os.environ[key]
    os.environ["MLFLOW_TRACKING_URI"] = target.uri
    if target.token:
        os.environ["MLFLOW_TRACKING_TOKEN"] = target.token
    from mlflow import MlflowClient

    return MlflowClient()


def _guarded(results: Queue[Any], work: Any, *args: Any) -> None:
    try:
        results.put(work(*args))
    except BaseException as exc:  # the parent reports it; a child must not die silently
        results.put({"error": f"{type(exc).__name__}: {str(exc)[:500]}"})
        raise


def create_runs(
    target: Target,
    experiment_id: str,
    shape: tuple[int, int],
    seconds: float,
    barrier: Barrier,
    results: Queue[Any],
) -> None:
    """Runs created and finished, one after the other, for ``seconds`` after the barrier:
    ``create_run`` → ``log_batch(params)`` → ``log_batch(metrics)`` → ``set_terminated``."""
    _guarded(results, _create_runs, target, experiment_id, shape, seconds, barrier)


def _create_runs(
    target: Target, experiment_id: str, shape: tuple[int, int], seconds: float, barrier: Barrier
) -> dict[str, Any]:
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    client = _client(target)
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - set_terminated prints each run's URL
    params = [Param(f"param_{i}", f"value-{i}") for i in range(shape[0])]

    def one_run() -> None:
        run_id = client.create_run(experiment_id).info.run_id
        client.log_batch(run_id, params=params)
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(f"metric_{i}", i / 7, now, 0) for i in range(shape[1])])
        client.set_terminated(run_id)

    one_run()  # warm-up: the connection, the server's caches
    barrier.wait(timeout=WAIT_S)
    started = time.monotonic()
    latencies: list[float] = []
    errors, first_error = 0, ""
    while time.monotonic() - started < seconds:
        begun = time.perf_counter()
        try:
            one_run()
        except MlflowException as exc:
            errors += 1
            first_error = first_error or str(exc)[:300]
            continue
        latencies.append(time.perf_counter() - begun)
    return {"runs": len(latencies), "started": started, "ended": time.monotonic(), "latencies": latencies,
            "errors": errors, "first_error": first_error}  # fmt: skip


def seed_runs(
    target: Target, experiment_id: str, indexes: range, shape: tuple[int, int], results: Queue[Any]
) -> None:
    """The search corpus through the REST API: per index one ``runs/create``, one ``runs/log-batch``
    (params and metrics together), one ``runs/update`` (the store's call: ``set_terminated`` adds a get)."""
    _guarded(results, _seed_runs, target, experiment_id, indexes, shape)


def _seed_runs(target: Target, experiment_id: str, indexes: range, shape: tuple[int, int]) -> dict[str, Any]:
    from mlflow.entities import Metric, Param, RunStatus

    client = _client(target)
    store = client._tracking_client.store  # update_run_info without the get that update_run makes
    for i in indexes:
        name, start, params, metrics = seed_values(i, shape)
        run_id = client.create_run(experiment_id, start_time=start, run_name=name).info.run_id
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, start, 0) for k, v in metrics],
            params=[Param(k, v) for k, v in params],
        )
        store.update_run_info(run_id, RunStatus.FINISHED, start + 500, None)
    return {"runs": len(indexes)}


def seed_values(
    i: int, shape: tuple[int, int]
) -> tuple[str, int, list[tuple[str, str]], list[tuple[str, float]]]:
    """Run ``i`` of the search corpus: name, start time (ms; distinct, so both servers order alike),
    params (``p0`` one of 10 values) and metrics (uniform in [0, 1)). Also run by mlflow's venv."""
    import random

    rng = random.Random(i)
    params = [("p0", f"v{i % 10}")] + [(f"p{k}", f"value-{rng.randrange(1000)}") for k in range(1, shape[0])]
    metrics = [(f"m{k}", rng.random()) for k in range(shape[1])]
    return f"run-{i:05d}", SEED_START_MS + i * 1000, params, metrics


#: Run by the mlflow venv's python after ``seed_values``' source: the rows ``create_run``,
#: ``log_batch`` and ``update_run_info`` of ``SqlAlchemyStore`` write, added through its own
#: session and models 500 runs a transaction (those calls one by one: ~10 runs/s here).
_STORE_SEED = """
import sys, uuid
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
db, experiment_id, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
shape = (int(sys.argv[4]), int(sys.argv[5]))
store = SqlAlchemyStore(db, "unused")
location = store.get_experiment(experiment_id).artifact_location
for first in range(0, total, 500):
    with store.ManagedSessionMaker(read_only=False) as session:
        for i in range(first, min(total, first + 500)):
            name, start, params, metrics = seed_values(i, shape)
            run_id = uuid.uuid4().hex
            session.add(SqlRun(name=name, artifact_uri=f"{location}/{run_id}/artifacts", run_uuid=run_id,
                experiment_id=int(experiment_id), source_type="UNKNOWN", source_name="", entry_point_name="",
                user_id="unknown", status="FINISHED", start_time=start, end_time=start + 500,
                deleted_time=None, source_version="", lifecycle_stage="active"))
            session.flush()
            session.add(SqlTag(key="mlflow.runName", value=name, run_uuid=run_id))
            session.add_all(SqlParam(key=k, value=v, run_uuid=run_id) for k, v in params)
            for model in (SqlMetric, SqlLatestMetric):
                session.add_all(model(key=k, value=v, timestamp=start, step=0, is_nan=False, run_uuid=run_id)
                                for k, v in metrics)
"""


def store_seed(
    python: Path, db_uri: str, experiment_id: str, total: int, shape: tuple[int, int], timeout: float
) -> None:
    """Seed the search corpus straight into mlflow's database through its ``SqlAlchemyStore``."""
    import inspect

    script = f"SEED_START_MS = {SEED_START_MS}\n" + inspect.getsource(seed_values) + _STORE_SEED
    args = [str(python), "-c", script, db_uri, experiment_id, str(total), *map(str, shape)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"seeding mlflow's store failed:\n{done.stderr[-2000:]}")


def search(
    target: Target, experiment_id: str, rounds: int, warmup: int, turn: Semaphore, next_turn: Semaphore,
    results: Queue[Any],
) -> None:  # fmt: skip
    """Each round, every shape once through ``MlflowClient().search_runs`` (max_results=100), then
    the same body as a bare ``POST runs/search`` (``requests``: the server's time without the
    client's parsing). Rounds take turns with the other target's process (``turn``/``next_turn``)."""
    _guarded(results, _search, target, experiment_id, rounds, warmup, turn, next_turn)


def _search(
    target: Target, experiment_id: str, rounds: int, warmup: int, turn: Semaphore, next_turn: Semaphore
) -> dict[str, Any]:
    import requests

    client = _client(target)
    session = requests.Session()
    if target.token:
        session.headers["Authorization"] = f"Bearer {target.token}"
    url = f"{target.uri}/api/2.0/mlflow/runs/search"
    times: dict[str, dict[str, list[float]]] = {s: {"client": [], "http": []} for s in SHAPES}
    answers: dict[str, list[str]] = {}
    for round_ in range(warmup + rounds):
        if not turn.acquire(timeout=WAIT_S):
            raise TimeoutError("the other target's search process did not hand over its turn")
        try:
            for name, (filter_string, order_by) in SHAPES.items():
                begun = time.perf_counter()
                runs = client.search_runs([experiment_id], filter_string, order_by=order_by, max_results=100)
                took = time.perf_counter() - begun
                body: dict[str, Any] = {"experiment_ids": [experiment_id], "filter": filter_string}
                body.update(run_view_type="ACTIVE_ONLY", max_results=100, order_by=order_by)
                begun = time.perf_counter()
                response = session.post(url, json=body, timeout=60)
                raw = time.perf_counter() - begun
                if response.status_code != 200 or len(response.json().get("runs", [])) != len(runs):
                    raise RuntimeError(f"runs/search {name}: {response.status_code} {response.text[:300]}")
                answers.setdefault(name, [run.info.run_name for run in runs])
                if round_ >= warmup:
                    times[name]["client"].append(took)
                    times[name]["http"].append(raw)
        finally:
            next_turn.release()
    return {"target": target.name, "times": times, "answers": answers}
