"""The ``http`` measurement of ``tables.py``: deep ``/rows`` pages and SQL previews through a real
``studio9 serve``, beside the engine and raw DuckDB on the very files the server stores.

A fresh server (``python -m studio9 serve`` on a free loopback port, a new data directory, the
embedded defaults: SQLite, ``file://`` blobs, in-process workers; any ``STUDIO9_*`` variable of
this environment is ignored) gets the table the way a user gives it one: the Parquet file is
uploaded (``POST /api/v1/files``) and imported (``POST /api/v1/tables`` ``format=parquet``, the
``tables.import`` job), with the first admin's token from ``<data dir>/admin-token``. The
imported parts are then read from the blob directory by the baselines of this process.

* rows: ``GET /api/v1/tables/{id}/rows?limit=100&cursor=…`` at the same deep cursors as the
  ``rows`` measurement (made with ``paging.encode_cursor`` over the stored parts), one request at
  a time on a keep-alive connection; each page must start at its cursor's row and carry a next
  cursor. Beside it: ``studio9.tables.reading.read_rows`` on the same parts and cursors here.
* sql: ``POST /api/v1/sql/preview`` (the table named by id) against raw DuckDB, one open
  connection with a view over the stored parts, taking turns ``--sql-gap-ms`` apart.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
from children import HOST, child, free_port, wait_ready
from deadline import Deadline

ADMIN_TOKEN_FILE = "admin-token"  # studio9.bootstrap.ADMIN_TOKEN_FILE
CHUNK = 1 << 20
POLL_S = 0.5


def measure_http(
    args: Any,
    source: Path,
    workdir: Path,
    deadline: Deadline,
    *,
    queries: dict[str, str],
    page: int,
    aims: tuple[float, float],
) -> None:
    """Import ``source`` into a fresh server, then time ``/rows`` and ``/sql/preview`` (module doc)."""
    data_dir, log_path, port = workdir / "http-data", workdir / "serve.log", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env.update(STUDIO9_DATA_DIR=str(data_dir), STUDIO9_LOG_LEVEL="warning", STUDIO9_SHUTDOWN_TIMEOUT="5")
    base = f"http://{HOST}:{port}"
    cmd = [sys.executable, "-m", "studio9", "serve", "--host", HOST, "--port", str(port)]
    with child(cmd, env, log_path) as proc:
        wait_ready(f"{base}/health", proc, log_path, deadline)
        token = (data_dir / ADMIN_TOKEN_FILE).read_text(encoding="utf-8").strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=headers, timeout=120.0) as client:
            table_id, parts = _import(client, source, data_dir / "blobs", deadline)
            _rows(client, table_id, parts, args, deadline, page, aims[0])
            _sql(client, table_id, parts, args, deadline, queries, page, aims[1])


def _import(client: httpx.Client, source: Path, blobs: Path, deadline: Deadline) -> tuple[str, list[Path]]:
    started = time.perf_counter()
    size = source.stat().st_size

    def chunks() -> Iterator[bytes]:
        with source.open("rb") as body:
            yield from iter(lambda: body.read(CHUNK), b"")

    uploaded = client.post(
        "/api/v1/files",
        params={"name": "bench.parquet"},
        content=chunks(),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
    )
    _expect(uploaded, 201)
    upload_s = time.perf_counter() - started
    created = client.post(
        "/api/v1/tables", json={"name": "bench", "file": uploaded.json()["id"], "format": "parquet"}
    )
    _expect(created, 202)
    table_id, job_id = created.json()["table"]["id"], created.json()["job"]["id"]
    while True:
        deadline.left("importing the table through HTTP")
        job = _expect(client.get(f"/api/v1/jobs/{job_id}"), 200).json()
        if job["status"] == "completed":
            break
        if job["status"] in ("failed", "cancelled"):
            raise RuntimeError(f"the import job {job['status']}: {job.get('error')}")
        time.sleep(POLL_S)
    asset = _expect(client.get(f"/api/v1/assets/{table_id}"), 200).json()
    parts = [blobs / key for key in asset["version"]["content"]["parts"]]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise RuntimeError(f"the stored parts are not where file:// blobs keep them: {missing}")
    print(
        f"http: table_rows={asset['version']['content']['row_count']} parts={len(parts)}"
        f" upload_s={upload_s:.1f} imported_in_s={time.perf_counter() - started:.1f}",
        flush=True,
    )
    return table_id, parts


def _rows(
    client: httpx.Client,
    table_id: str,
    parts: list[Path],
    args: Any,
    deadline: Deadline,
    page: int,
    aim_ms: float,
) -> None:
    from studio9.tables.paging import Cursor, encode_cursor
    from studio9.tables.parts import TableParts
    from studio9.tables.reading import read_rows

    first = args.rows - args.rows // 10
    step = max(1, (args.rows - page - first) // args.pages)
    positions = [first + i * step for i in range(args.pages)]
    with TableParts(parts) as table:
        cursors = [encode_cursor(Cursor(p), None, None, table) for p in positions]
    path = f"/api/v1/tables/{table_id}/rows"

    def over_http(cursor: str) -> dict[str, Any]:
        body: dict[str, Any] = _expect(client.get(path, params={"limit": page, "cursor": cursor}), 200).json()
        return body

    over_http(cursors[0])  # warm-up: the connection, the catalog, the footers in the page cache
    read_rows(parts, limit=page, cursor=cursors[0])
    times: dict[str, list[float]] = {"http": [], "engine": []}
    for position, cursor in zip(positions, cursors, strict=True):
        deadline.left("reading pages through HTTP")
        started = time.perf_counter()
        body = over_http(cursor)
        times["http"].append(time.perf_counter() - started)
        started = time.perf_counter()
        read_rows(parts, limit=page, cursor=cursor)
        times["engine"].append(time.perf_counter() - started)
        ids = [row["id"] for row in body["rows"]]
        if ids != list(range(position, position + page)) or body["next_cursor"] is None:
            raise RuntimeError(f"GET {path} at position {position} did not answer the rows expected")
    p50 = _pct_ms(times["http"], 0.5)
    verdict = "met" if p50 <= aim_ms else "NOT met"
    print(
        f"  rows        pages={args.pages} limit={page} from position >= {first}"
        f" http_p50_ms={p50:.2f} http_p99_ms={_pct_ms(times['http'], 0.99):.2f}"
        f" engine_p50_ms={_pct_ms(times['engine'], 0.5):.2f}"
        f"  (GET /rows; aim: p50 <= {aim_ms:g}; {verdict})",
        flush=True,
    )


def _sql(
    client: httpx.Client,
    table_id: str,
    parts: list[Path],
    args: Any,
    deadline: Deadline,
    queries: dict[str, str],
    page: int,
    aim_ratio: float,
) -> None:
    import duckdb

    con = duckdb.connect(":memory:", config={"threads": args.threads})
    try:
        con.read_parquet([str(p) for p in parts]).create_view(table_id)
        for name, template in queries.items():
            sql = template.format(t=table_id)

            def raw(sql: str = sql) -> int:
                return len(con.execute(sql).fetchmany(page + 1)[:page])

            def over_http(sql: str = sql) -> int:
                answer = client.post("/api/v1/sql/preview", json={"sql": sql, "limit": page})
                return len(_expect(answer, 200).json()["rows"])

            raw_s, http_s = _medians_s((raw, over_http), args.sql_runs, deadline, args.sql_gap_ms / 1000)
            if raw() != over_http():
                raise RuntimeError(f"{name}: the preview and DuckDB returned different row counts")
            ratio = raw_s / http_s
            print(
                f"  sql {name:<11} raw_duckdb_ms={raw_s * 1000:.2f} http_preview_ms={http_s * 1000:.2f}"
                f"  ratio={ratio:.3f}  (raw_duckdb / POST /sql/preview; aim: >= {aim_ratio};"
                f" {'met' if ratio >= aim_ratio else 'NOT met'})",
                flush=True,
            )
    finally:
        con.close()


def _medians_s(
    calls: tuple[Callable[[], int], ...], runs: int, deadline: Deadline, gap_s: float
) -> list[float]:
    """The median seconds of each call; the calls take turns, ``gap_s`` apart (as in tables.py)."""
    for call in calls:
        call()  # warm-up
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(runs):
        for call, times in zip(calls, samples, strict=True):
            deadline.left("running SQL previews through HTTP")
            time.sleep(gap_s)
            started = time.perf_counter()
            call()
            times.append(time.perf_counter() - started)
    return [statistics.median(times) for times in samples]


def _pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path} answered {response.status_code}"
            f" (expected {status}): {response.text[:300]}"
        )
    return response


__all__ = ["measure_http"]
