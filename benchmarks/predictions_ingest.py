"""Prediction ingest: a prediction CSV imported through the sink against the database's own bulk load.

One CSV of ``--rows`` predictions (``item_key``, ``label``, ``confidence``, ``probabilities`` as a
JSON object, and ``camera``, an extra column), generated with pyarrow in a temporary directory,
is loaded four ways, each in a fresh subprocess of its own, the rounds interleaved:

* ``postgresql_raw``: psycopg ``COPY predictions_raw (item_key, label, confidence,
  probabilities, camera) FROM STDIN (FORMAT csv, HEADER true)`` of the file's bytes (1 MiB
  writes, one transaction) into a plain table of those columns (text, text, float8, text,
  text: no key, no JSON check).
* ``postgresql_sink``: ``PredictionService(sink).import_file`` on ``postgresql://…`` — the
  production path: SHA-256 of the file, pyarrow CSV reading, every check, ``PredictionSink.load``.
* ``sqlite_raw``: ``csv.reader`` rows ``executemany``'d into a plain table (``TEXT``,
  ``TEXT``, ``REAL``, ``TEXT``, ``TEXT``) in one transaction, on a fresh file with the
  sink's settings (``page_size`` 16 KiB, ``journal_mode=WAL``, ``synchronous=NORMAL``).
* ``sqlite_sink``: the same service on ``sqlite:///<fresh file>``.

Every PostgreSQL run gets a fresh scratch database (``studio9_bench_<hex>``, created from
``--postgres-url``, which must be able to ``CREATE DATABASE``; ``CHECKPOINT`` before each run,
so that no run pays for the WAL of the one before) and every SQLite run a fresh file; the
sink's tables are created before the clock starts. Time: the import call only (not the
interpreter, imports or table creation). Memory: the subprocess's peak RSS (``VmHWM``), which
includes the interpreter and the imported libraries (``start_rss_mb``: before the import).
Figures are medians over ``--repeat`` rounds. From the repository root:

    .venv/bin/python benchmarks/predictions_ingest.py [--rows 1000000] [--repeat 3] [--only sqlite]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Run as a script: its directory is on the path.
from deadline import BenchTimeout

REPO_ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(  # as tests/services.py: trust auth on every dev and CI box
    "STUDIO9_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TARGETS = ("postgresql_raw", "postgresql_sink", "sqlite_raw", "sqlite_sink")
AIM_RATIO = {"postgresql": 0.5, "sqlite": 0.8}
AIM_PEAK_MB = 200.0
CSV_SLICE = 200_000
LABELS = ("cat", "dog", "cow")


@dataclass
class Figure:
    seconds: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    start_mb: list[float] = field(default_factory=list)

    def rows_per_s(self, rows: int) -> float:
        return rows / statistics.median(self.seconds)

    def line(self, name: str, rows: int, verbose: bool) -> str:
        text = (
            f"{name:<16} rows_per_s={self.rows_per_s(rows):.0f} seconds={statistics.median(self.seconds):.2f}"
            f" peak_rss_mb={max(self.peak_mb):.0f} start_rss_mb={statistics.median(self.start_mb):.0f}"
        )
        return text + (f"  (runs: {' '.join(f'{s:.2f}' for s in self.seconds)} s)" if verbose else "")


# -- the children: one import each, figures as one JSON line on stdout -----------------------
def _rss_mb() -> float:
    """This process's peak RSS. ``VmHWM``, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``execve`` from the forking parent (here ~150 MB of pyarrow), the high-water mark restarts."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: KiB or bytes


def child_postgresql_raw(csv_path: Path, url: str) -> tuple[int, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE predictions_raw (item_key text, label text, confidence double precision,"
            " probabilities text, camera text)"
        )
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            with (
                cur.copy(
                    "COPY predictions_raw (item_key, label, confidence, probabilities, camera)"
                    " FROM STDIN (FORMAT csv, HEADER true)"
                ) as copy,
                csv_path.open("rb") as source,
            ):
                while block := source.read(1 << 20):
                    copy.write(block)
            rows = cur.rowcount
        return rows, time.perf_counter() - started


def child_sqlite_raw(csv_path: Path, db_path: Path, page_size: int) -> tuple[int, float]:
    import csv
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    # The sink's settings (adapters/prediction_sink/sqlite.py).
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE predictions_raw (item_key TEXT, label TEXT, confidence REAL, probabilities TEXT,"
        " camera TEXT)"
    )
    started = time.perf_counter()
    with csv_path.open(newline="", encoding="utf-8") as source:
        reader = csv.reader(source)
        next(reader)  # the header
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO predictions_raw VALUES (?, ?, ?, ?, ?)", reader)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    rows = conn.execute("SELECT count(*) FROM predictions_raw").fetchone()[0]
    conn.close()
    return rows, elapsed


def child_sink(csv_path: Path, url: str) -> tuple[int, float]:
    import asyncio

    from studio9 import bootstrap
    from studio9.backends import AdapterOptions
    from studio9.logs import configure_logging
    from studio9.predictions import PredictionService

    configure_logging("warning", stream=sys.stderr)  # the import's info line is not a figure

    async def run() -> tuple[int, float]:
        options = AdapterOptions(data_dir=csv_path.parent)  # the defaults, as STUDIO9_* leaves them
        async with bootstrap.open_adapter(
            bootstrap.SINKS, url, setting="STUDIO9_SINK_URL", options=options
        ) as sink:
            await sink.ensure_schema()
            started = time.perf_counter()
            result = await PredictionService(sink).import_file(
                csv_path, model_id="bench-model", owner_id="bench", source_job_id="bench-job"
            )
            return result.rows, time.perf_counter() - started

    return asyncio.run(run())


def child(target: str, csv_path: Path, where: str, page_size: int) -> None:
    start_mb = _rss_mb()
    runs: dict[str, Callable[[], tuple[int, float]]] = {
        "postgresql_raw": lambda: child_postgresql_raw(csv_path, where),
        "sqlite_raw": lambda: child_sqlite_raw(csv_path, Path(where), page_size),
        "postgresql_sink": lambda: child_sink(csv_path, where),
        "sqlite_sink": lambda: child_sink(csv_path, f"sqlite:///{where}"),
    }
    if target.endswith("_sink"):  # the libraries' own memory is the start's, not the import's
        import importlib

        for module in (
            "pyarrow.csv",
            "studio9.bootstrap",
            "studio9.predictions",
            "studio9.predictions.importer",  # imported by the first import, not with the package
            "adapters.prediction_sink.pgcopy",  # likewise, by the PostgreSQL sink's first load
            f"adapters.prediction_sink.{target[:-5]}",
        ):
            importlib.import_module(module)
        start_mb = _rss_mb()
    rows, seconds = runs[target]()
    print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": _rss_mb(), "start_mb": start_mb}))


# -- the parent ------------------------------------------------------------------------------
def write_csv(path: Path, rows: int) -> None:
    """``rows`` predictions, written by pyarrow a slice at a time (every string quoted)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    labels = pa.array(LABELS)
    writer: Any = None
    for start in range(0, rows, CSV_SLICE):
        index = np.arange(start, min(rows, start + CSV_SLICE))
        confidence = pa.array(np.random.default_rng(start).random(len(index)))
        label = pc.take(labels, pa.array(index % len(LABELS)))
        table = pa.table(
            {
                "item_key": pc.binary_join_element_wise(
                    "images/2026/03/01/item-", pa.array(index).cast(pa.string()), ".jpg", ""
                ),
                "label": label,
                "confidence": confidence,
                "probabilities": pc.binary_join_element_wise(
                    '{"', label, '": ', confidence.cast(pa.string()), "}", ""
                ),
                "camera": pc.binary_join_element_wise("cam-", pa.array(index % 7).cast(pa.string()), ""),
            }
        )
        writer = writer or pcsv.CSVWriter(str(path), table.schema)
        writer.write_table(table)
    writer.close()


def postgres(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


def postgres_unavailable(url: str) -> str | None:
    import psycopg

    try:
        postgres(url, "SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def _sink_page_size() -> int:
    from adapters.prediction_sink.sqlite import PAGE_SIZE

    return PAGE_SIZE


def run_target(target: str, csv_path: Path, workdir: Path, args: argparse.Namespace, deadline: float) -> Any:
    """One run of ``target`` on a fresh database; its JSON figures."""
    scratch = None
    if target.startswith("postgresql"):
        scratch = f"studio9_bench_{uuid.uuid4().hex[:12]}"
        postgres(args.postgres_url, f'CREATE DATABASE "{scratch}"')
        where = args.postgres_url.rpartition("/")[0] + f"/{scratch}"
        postgres(args.postgres_url, "CHECKPOINT")
    else:
        where = str(workdir / f"{target}-{uuid.uuid4().hex[:8]}.db")
    try:
        left = deadline - time.monotonic()
        if left <= 0:
            raise BenchTimeout(f"before {target}")
        command = [sys.executable, __file__, "--child", target, str(csv_path), where, str(_sink_page_size())]
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=left, check=False, cwd=REPO_ROOT
            )
        except subprocess.TimeoutExpired:
            raise BenchTimeout(f"during {target}") from None
        if done.returncode != 0:
            raise RuntimeError(f"{target} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if scratch is not None:
            postgres(args.postgres_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        else:
            for suffix in ("", "-wal", "-shm"):
                Path(where + suffix).unlink(missing_ok=True)


def report(results: dict[str, Figure], args: argparse.Namespace) -> None:
    for name, figure in results.items():
        if figure.seconds:
            print(figure.line(name, args.rows, args.verbose), flush=True)
    for backend, aim in AIM_RATIO.items():
        raw, sink = results.get(f"{backend}_raw"), results.get(f"{backend}_sink")
        if raw and sink and raw.seconds and sink.seconds:
            ratio = sink.rows_per_s(args.rows) / raw.rows_per_s(args.rows)
            what = "raw COPY" if backend == "postgresql" else "raw executemany"
            print(f"ratio_{backend}={ratio:.3f}  (sink / {what}, rows/s)")
            peak = max(sink.peak_mb)
            print(
                f"aim {backend}: ratio >= {aim:g} {'met' if ratio >= aim else 'NOT met'} ({ratio:.3f});"
                f" peak_rss_mb < {AIM_PEAK_MB:g} {'met' if peak < AIM_PEAK_MB else 'NOT met'} ({peak:.0f})"
            )


def run(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.deadline
    only = args.only or ["postgresql", "sqlite"]
    targets = [t for t in TARGETS if t.split("_")[0] in only]
    if "postgresql" in only and (reason := postgres_unavailable(args.postgres_url)) is not None:
        print(f"postgresql skipped: {reason}", flush=True)
        targets = [t for t in targets if not t.startswith("postgresql")]
    results = {target: Figure() for target in targets}
    with tempfile.TemporaryDirectory(prefix="studio9-ingest-bench-") as tmp:
        csv_path = Path(tmp) / "predictions.csv"
        started = time.perf_counter()
        write_csv(csv_path, args.rows)
        print(
            f"rows={args.rows} csv_mb={csv_path.stat().st_size / 1e6:.1f} repeat={args.repeat}"
            f" cpus={os.cpu_count()} load_avg={os.getloadavg()[0]:.1f}"
            f" csv_s={time.perf_counter() - started:.1f}",
            flush=True,
        )
        try:
            for round_ in range(args.repeat):
                for target in targets:  # interleaved: drift on a shared box hits every target alike
                    found = run_target(target, csv_path, Path(tmp), args, deadline)
                    if found["rows"] != args.rows:
                        raise RuntimeError(f"{target} stored {found['rows']} rows, not {args.rows}")
                    figure = results[target]
                    figure.seconds.append(found["seconds"])
                    figure.peak_mb.append(found["peak_mb"])
                    figure.start_mb.append(found["start_mb"])
                    if args.verbose:
                        print(f"  round {round_ + 1} {target}: {found}", file=sys.stderr, flush=True)
        except BenchTimeout as exc:
            report(results, args)
            print(f"predictions_ingest: --deadline {args.deadline:g}s passed {exc}", file=sys.stderr)
            return 2
        except RuntimeError as exc:
            report(results, args)
            print(f"predictions_ingest: {exc}", file=sys.stderr)
            return 1
    report(results, args)
    print(f"load_avg={os.getloadavg()[0]:.1f}  (1 min, at the end: the sinks need two cores, raw loads one)")
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the CSV (default 1000000)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians (default 3)")
    parser.add_argument("--only", action="append", choices=("postgresql", "sqlite"), help="repeatable")
    parser.add_argument(
        "--postgres-url",
        default=POSTGRES_ADMIN_URL,
        help="a database to CREATE DATABASE from (default $STUDIO9_TEST_POSTGRES_URL or postgres@127.0.0.1)",
    )
    parser.add_argument("--deadline", type=float, default=900.0, help="overall limit in s (default 900)")
    parser.add_argument("--verbose", action="store_true", help="every run's figures, on stderr")
    args = parser.parse_args()
    if min(args.rows, args.repeat) < 1 or args.deadline <= 0:
        parser.error("--rows, --repeat and --deadline must be positive")
    return args


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so scratch databases are dropped too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
