"""Tables: CSV import, deep ``/rows`` pages and SQL previews against raw pyarrow and DuckDB.

Four measurements, each beside its baseline measured in the same run, on generated data in a
fresh temporary directory (removed at the end, whatever happens):

* ``import``: a CSV of ``--csv-mb`` MB (ints, floats, strings, dates, timestamps) turned into
  zstd Parquet, each side in its own child process so that its peak RSS (``ru_maxrss``) is its
  own. Baseline ``raw_pyarrow``: ``pyarrow.csv.open_csv`` -> ``ParquetWriter`` batch by batch;
  ``studio9``: ``studio9.tables.importing.import_table`` (type inference, checks, part files).
  MB/s = CSV bytes / wall seconds of the child's import.
* ``rows``: a ``--rows``-row table written directly as Studio9 lays out imports (row groups of
  65,536 rows, parts of 64 groups, zstd). ``studio9.tables.reading.read_rows`` (the engine
  behind ``GET /api/v1/tables/{id}/rows``, not through HTTP) with ``limit=100`` at
  ``--pages`` cursors spread over the last tenth of the table; the cursors are made with
  ``paging.encode_cursor`` rather than walked to (a walk of 100-row pages would take ~10^5
  requests), and each page's ``next_cursor`` is checked. Baseline ``raw_pyarrow``: an open
  ``ParquetFile``, ``read_row_group`` -> ``slice`` -> ``to_pylist`` of the same rows.
* ``sql``: ``studio9.tables.sql.run_query`` as a preview runs it (limits of
  ``sql_limits``: 512 MB, ``--threads``; a locked DuckDB database per call, taken from a
  ``sql_databases.Databases`` pool that opened it ahead of demand) against ``raw_duckdb``, one
  open DuckDB connection with a view over ``read_parquet`` of the same parts, both with
  ``--threads`` threads; a ``LIMIT 100`` scan and a ``GROUP BY`` aggregate, the median of
  ``--sql-runs`` (20) runs each, taking turns (raw, fresh, Studio9, unpooled), each
  ``--sql-gap-ms`` (50) after the previous one, as previews typed by people are. ratio = raw
  seconds / Studio9 seconds. Also printed: ``raw_fresh_connection`` (raw DuckDB, a new
  connection per query), ``studio9_back_to_back`` (the pool's runs with no gap: each run then
  shares the CPU with the background opening of the next database) and ``studio9_unpooled``
  (each call opens and closes its own database, as before the pool; the derive job still does).
* ``http``: the ``--rows`` table written as one Parquet file, uploaded and imported through a
  real ``studio9 serve`` (``POST /api/v1/files``, ``POST /api/v1/tables``; see
  ``tables_http.py``); then ``GET /api/v1/tables/{id}/rows?limit=100&cursor=…`` at the cursors of
  ``rows`` (p50/p99, one request at a time) beside ``read_rows`` on the stored parts, and
  ``POST /api/v1/sql/preview`` of the ``sql`` queries beside raw DuckDB over the stored parts
  (ratio = raw seconds / HTTP seconds, runs ``--sql-gap-ms`` apart).

Run from the repository root:

    .venv/bin/python benchmarks/tables.py [--csv-mb 1024] [--rows 10000000] [--only import]
    .venv/bin/python benchmarks/tables.py --csv-mb 64 --rows 1000000        # quick look
    .venv/bin/python benchmarks/tables.py --only sql --only http            # previews and pages
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script: its directory is on the path.
from deadline import BenchTimeout, Deadline
from tables_data import PART_GROUPS, ROW_GROUP_ROWS, write_csv, write_table

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE = 100
AIM_IMPORT_RATIO, AIM_IMPORT_RSS_MB, AIM_ROWS_P50_MS, AIM_SQL_RATIO = 0.7, 400.0, 20.0, 0.8
SQL_TABLE = "bench/t"
SQL_MEMORY = "512MB"  # studio9.tables.sql_limits.PREVIEW_MEMORY
QUERIES = {
    "limit_scan": 'SELECT * FROM "{t}" LIMIT 100',
    "group_by": 'SELECT city, count(*) AS n, avg(price) AS price, sum(qty) AS qty FROM "{t}" GROUP BY city'
    " ORDER BY city",
}


# -- 1. import, in child processes -------------------------------------------------------------
def child_import(kind: str, csv_path: Path, out: Path) -> dict[str, Any]:
    """Run in the child: one import, then its figures (peak RSS of this process included)."""
    started = time.perf_counter()
    if kind == "raw":
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        reader = pcsv.open_csv(csv_path, read_options=pcsv.ReadOptions(block_size=1 << 20))
        rows = 0
        with pq.ParquetWriter(out, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
                rows += batch.num_rows
        written = out.stat().st_size
    else:
        from studio9.tables.importing import import_table
        from studio9.tables.values import ImportOptions

        result = import_table(csv_path, out, ImportOptions())
        rows, written = result.row_count, result.bytes_written
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": seconds, "rows": rows, "bytes_written": written, "rss_mb": rss_mb}


def run_import(kind: str, csv_path: Path, workdir: Path, deadline: Deadline) -> dict[str, Any]:
    out = workdir / f"import-{kind}" / ("out.parquet" if kind == "raw" else "table")
    out.parent.mkdir()
    cmd = [sys.executable, __file__, "--child", kind, "--csv-path", str(csv_path), "--out", str(out)]
    try:
        done = subprocess.run(
            cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=deadline.left(f"importing ({kind})")
        )
    except subprocess.TimeoutExpired:
        raise BenchTimeout(f"the {kind} import did not finish in time") from None
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} import failed:\n{done.stderr[-2000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure_import(args: argparse.Namespace, workdir: Path, deadline: Deadline) -> None:
    csv_path = workdir / "bench.csv"
    started = time.perf_counter()
    size = write_csv(csv_path, args.csv_mb)
    print(f"import: csv_mb={size / 1e6:.0f} generated_in_s={time.perf_counter() - started:.1f}", flush=True)
    figures = {}
    for kind, name in (("raw", "raw_pyarrow"), ("studio9", "studio9")):
        figure = figures[kind] = run_import(kind, csv_path, workdir, deadline)
        figure["mb_s"] = size / 1e6 / figure["seconds"]
        print(
            f"  {name:<12} mb_s={figure['mb_s']:.1f} seconds={figure['seconds']:.1f} rows={figure['rows']}"
            f" parquet_mb={figure['bytes_written'] / 1e6:.0f} peak_rss_mb={figure['rss_mb']:.0f}",
            flush=True,
        )
    csv_path.unlink()
    ratio, rss = figures["studio9"]["mb_s"] / figures["raw"]["mb_s"], figures["studio9"]["rss_mb"]
    ratio_aim, rss_aim = aim(ratio, AIM_IMPORT_RATIO), aim(rss, AIM_IMPORT_RSS_MB, at_most=True)
    print(
        f"  ratio={ratio:.3f}  (studio9 / raw_pyarrow MB/s; aim: >= {AIM_IMPORT_RATIO}; {ratio_aim})"
        f"  peak_rss_mb={rss:.0f} (aim: <= {AIM_IMPORT_RSS_MB:g}; {rss_aim})",
        flush=True,
    )


# -- 2. deep /rows pages -----------------------------------------------------------------------
def measure_rows(args: argparse.Namespace, parts: list[Path], deadline: Deadline) -> None:
    import pyarrow.parquet as pq

    from studio9.tables.paging import Cursor, encode_cursor
    from studio9.tables.parts import TableParts
    from studio9.tables.reading import read_rows

    first = args.rows - args.rows // 10
    step = max(1, (args.rows - PAGE - first) // args.pages)
    positions = [first + i * step for i in range(args.pages)]
    with TableParts(parts) as table:
        cursors = [encode_cursor(Cursor(p), None, None, table) for p in positions]
    files = [pq.ParquetFile(p) for p in parts]
    part_rows = ROW_GROUP_ROWS * PART_GROUPS

    def raw(position: int) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        while len(rows) < PAGE:  # a page may run on into the next row group (or part)
            part, within = divmod(position + len(rows), part_rows)
            group, offset = divmod(within, ROW_GROUP_ROWS)
            rows += files[part].read_row_group(group).slice(offset, PAGE - len(rows)).to_pylist()
        return rows

    times: dict[str, list[float]] = {"raw_pyarrow": [], "studio9": []}
    for position, cursor in zip(positions, cursors, strict=True):
        deadline.left("reading pages")
        started = time.perf_counter()
        expected = raw(position)
        times["raw_pyarrow"].append(time.perf_counter() - started)
        started = time.perf_counter()
        page = read_rows(parts, limit=PAGE, cursor=cursor)
        times["studio9"].append(time.perf_counter() - started)
        if [row["id"] for row in page.rows] != [row["id"] for row in expected] or page.next_cursor is None:
            raise RuntimeError(f"read_rows at position {position} did not return the rows expected")
    print(
        f"rows: table_rows={args.rows} pages={args.pages} limit={PAGE} from position >= {first}", flush=True
    )
    for name, values in times.items():
        print(f"  {name:<12} p50_ms={pct_ms(values, 0.5):.2f} p99_ms={pct_ms(values, 0.99):.2f}", flush=True)
    p50 = pct_ms(times["studio9"], 0.5)
    print(
        f"  p50_ms={p50:.2f}  (engine read_rows, not HTTP; aim: <= {AIM_ROWS_P50_MS:g};"
        f" {aim(p50, AIM_ROWS_P50_MS, at_most=True)})",
        flush=True,
    )


# -- 3. SQL previews ---------------------------------------------------------------------------
def measure_sql(args: argparse.Namespace, parts: list[Path], deadline: Deadline) -> None:
    import duckdb

    from studio9.tables.sql import TableSource, run_query
    from studio9.tables.sql_databases import Databases

    tables = {SQL_TABLE: TableSource(tuple(parts))}
    con = duckdb.connect(":memory:", config={"threads": args.threads})
    con.read_parquet([str(p) for p in parts]).create_view(SQL_TABLE)
    databases = Databases(memory_limit=SQL_MEMORY, threads=args.threads)  # as the service has
    gap_s = args.sql_gap_ms / 1000
    print(
        f"sql: table_rows={args.rows} runs={args.sql_runs} threads={args.threads}"
        f" runs_apart_ms={args.sql_gap_ms:g}",
        flush=True,
    )
    try:
        for name, template in QUERIES.items():
            sql = template.format(t=SQL_TABLE)

            def ours(sql: str = sql, pool: Databases | None = databases) -> int:
                result = run_query(
                    sql,
                    tables,
                    limit=PAGE,
                    timeout_s=60.0,
                    memory_limit=SQL_MEMORY,
                    threads=args.threads,
                    databases=pool,
                )
                return len(result.rows)

            def raw(sql: str = sql) -> int:
                return len(con.execute(sql).fetchmany(PAGE + 1)[:PAGE])

            def fresh(sql: str = sql) -> int:  # what a connection per query costs by itself
                with duckdb.connect(":memory:", config={"threads": args.threads}) as own:
                    own.read_parquet([str(p) for p in parts]).create_view(SQL_TABLE)
                    return len(own.execute(sql).fetchmany(PAGE + 1)[:PAGE])

            unpooled: Callable[[], int] = functools.partial(ours, pool=None)
            calls = {"raw": raw, "fresh": fresh, "ours": ours, "unpooled": unpooled}
            medians = medians_s(calls, args.sql_runs, deadline, name, gap_s)
            raw_s, fresh_s, ours_s, unpooled_s = (medians[k] for k in calls)
            packed_s = medians_s({"ours": ours}, args.sql_runs, deadline, name, 0.0)["ours"]
            if raw() != ours():
                raise RuntimeError(f"{name}: run_query and DuckDB returned different row counts")
            ratio = raw_s / ours_s
            print(
                f"  {name:<11} raw_duckdb_ms={raw_s * 1000:.2f} raw_fresh_connection_ms={fresh_s * 1000:.2f}"
                f" studio9_ms={ours_s * 1000:.2f} studio9_back_to_back_ms={packed_s * 1000:.2f}"
                f" studio9_unpooled_ms={unpooled_s * 1000:.2f}  ratio={ratio:.3f}"
                f"  (raw_duckdb / studio9; aim: >= {AIM_SQL_RATIO}; {aim(ratio, AIM_SQL_RATIO)})",
                flush=True,
            )
    finally:
        databases.close()
        con.close()


# -- 4. through HTTP ---------------------------------------------------------------------------
def measure_http(args: argparse.Namespace, workdir: Path, deadline: Deadline) -> None:
    """``tables_http``: the table as one Parquet file, uploaded and imported into a real server."""
    from tables_http import measure_http as over_http

    started = time.perf_counter()
    (source,) = write_table(workdir / "upload", args.rows, part_groups=1 << 40)
    print(f"http: source_rows={args.rows} written_in_s={time.perf_counter() - started:.1f}", flush=True)
    over_http(
        args,
        source,
        workdir,
        deadline,
        queries=QUERIES,
        page=PAGE,
        aims=(AIM_ROWS_P50_MS, AIM_SQL_RATIO),
    )


def medians_s(
    calls: dict[str, Callable[[], int]], runs: int, deadline: Deadline, what: str, gap_s: float
) -> dict[str, float]:
    """The median seconds of each call over ``runs`` rounds, after one warm-up each.

    The calls take turns, one of each per round, each ``gap_s`` after the previous one, so a
    change in the load of a shared machine falls on all of them alike.
    """
    for call in calls.values():
        call()  # warm-up: footers in the page cache, libraries loaded
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            deadline.left(f"running {what}")
            time.sleep(gap_s)
            started = time.perf_counter()
            call()
            samples[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


# -- main ----------------------------------------------------------------------------------
def pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


def aim(value: float, goal: float, *, at_most: bool = False) -> str:
    return "met" if (value <= goal if at_most else value >= goal) else "NOT met"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--csv-mb", type=int, default=1024, help="size of the generated CSV (default 1024)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows of the /rows + SQL table")
    parser.add_argument("--pages", type=int, default=200, help="deep pages read (default 200)")
    parser.add_argument("--sql-runs", type=int, default=20, help="runs of each SQL query (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads, both sides (default 2)")
    parser.add_argument(
        "--sql-gap-ms", type=float, default=50.0, help="pause before each SQL run, both sides (default 50)"
    )
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="overall limit in seconds (default 900)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=("import", "rows", "sql", "http"),
        help="run only these (repeatable)",
    )
    parser.add_argument("--child", choices=("raw", "studio9"), help=argparse.SUPPRESS)
    parser.add_argument("--csv-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if min(args.csv_mb, args.pages, args.sql_runs, args.threads) < 1 or args.deadline <= 0:
        parser.error("--csv-mb, --pages, --sql-runs, --threads and --deadline must be positive")
    if args.sql_gap_ms < 0:
        parser.error("--sql-gap-ms must be 0 or more")
    if args.rows < 10 * (PAGE + args.pages):
        parser.error(f"--rows must be at least {10 * (PAGE + args.pages)}")
    return args


def run(args: argparse.Namespace) -> int:
    deadline = Deadline(time.monotonic() + args.deadline)
    only = set(args.only or ("import", "rows", "sql", "http"))
    with tempfile.TemporaryDirectory(prefix="studio9-tables-bench-") as tmp:
        workdir = Path(tmp)
        try:
            if "import" in only:
                measure_import(args, workdir, deadline)
            if only & {"rows", "sql"}:
                started = time.perf_counter()
                parts = write_table(workdir / "table", args.rows)
                took = time.perf_counter() - started
                print(f"table: rows={args.rows} parts={len(parts)} written_in_s={took:.1f}", flush=True)
                if "rows" in only:
                    measure_rows(args, parts, deadline)
                if "sql" in only:
                    measure_sql(args, parts, deadline)
            if "http" in only:
                measure_http(args, workdir, deadline)
        except (BenchTimeout, TimeoutError) as exc:
            print(
                f"tables: gave up after --deadline {args.deadline:g}s: {str(exc) or 'out of time'}",
                file=sys.stderr,
            )
            return 2
    return 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temp dir is removed on SIGTERM too
    args = parse_args()
    if args.child:  # one import in this child process, figures as a JSON line on stdout
        print(json.dumps(child_import(args.child, args.csv_path, args.out)))
        return 0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
