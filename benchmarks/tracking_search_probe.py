"""Probe: ``TrackingStore.search_runs`` latency over one experiment of many runs (issue 16's aim:
a page of 100 of 10,000 runs, p50 <= 15 ms end to end over HTTP).

Seeds ``--runs`` runs straight through the store (each with 20 params, 100 metric keys of one
point, 5 tags by default; ``p1`` is one of x/y/z, metrics uniform in [0, 1)), then times each query
shape ``--repeat`` times and prints p50/p99 in ms. The experiment is a catalog asset added through
the catalog store, as the contract suite does. ``--encode`` also times the page's encoding as the
MLflow face answers it (``mlflow_face.encode.run_json``, msgspec): the part of the HTTP answer
that grows with the page. On PostgreSQL the tables are analyzed first (autovacuum's job).

    .venv/bin/python benchmarks/tracking_search_probe.py --url sqlite+aiosqlite:////tmp/probe.db
    .venv/bin/python benchmarks/tracking_search_probe.py --url ... --experiment <id>   # reuse a seed
    .venv/bin/python benchmarks/tracking_search_probe.py --url ... --profile           # cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import pstats
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.catalog.domain import Asset, AssetKind
from studio9.config import Settings
from studio9.ids import new_id
from studio9.tracking.domain import Metric, Param, Run, RunRecord, RunTag, new_run_id
from studio9.tracking.mlflow_face.encode import run_json
from studio9.tracking.search import parse_filter, parse_order_by

T0 = 1_777_000_000_000
#: (filter, order_by): benchmarks/tracking.py's three shapes (``p1`` one of 3 values here, of 10
#: there), then the brief's filter ordered both ways, and a metric order alone.
SHAPES: dict[str, tuple[str | None, list[str]]] = {
    "newest": (None, ["attributes.start_time DESC"]),
    "metric": ("metrics.m1 > 0.5", ["metrics.m2 DESC"]),
    "param": ("params.p1 = 'x'", []),
    "filter_by_metric": ("metrics.m1 < 0.5 and params.p1 = 'x'", ["metrics.m2 DESC"]),
    "filter_by_start": ("metrics.m1 < 0.5 and params.p1 = 'x'", ["attributes.start_time DESC"]),
    "by_metric": (None, ["metrics.m1 DESC"]),
}


async def seed(database: Any, runs: int, n_params: int, n_metrics: int) -> str:
    now = datetime.now(UTC)
    asset = Asset(
        id=new_id(int(now.timestamp() * 1000)),
        kind=AssetKind.EXPERIMENT,
        owner_id="probe",
        name=f"probe {now.isoformat()}",
        latest_version=0,
        created_at=now,
        updated_at=now,
    )
    await database.catalog.add(asset, None)
    store = database.tracking
    rng = random.Random(7)
    started = time.perf_counter()
    for n in range(runs):
        run = Run(
            id=new_run_id(),
            experiment_id=asset.id,
            name=f"run-{n}",
            owner_id="probe",
            user_name="probe",
            start_time=T0 + n * 1000,
            artifact_uri=f"mlflow-artifacts:/{asset.id}/{n}/artifacts",
        )
        await store.create_run(run, [RunTag("mlflow.user", "probe")])
        params = [Param("p1", rng.choice("xyz"))] + [
            Param(f"p{i}", f"value-{i}-{n % 17}") for i in range(2, n_params + 1)
        ]
        metrics = [Metric(f"m{i}", rng.random(), T0 + n, 0) for i in range(1, n_metrics + 1)]
        tags = [RunTag(f"t{i}", f"tag-{i}") for i in range(1, 5)]
        await store.log_batch(run.id, metrics=metrics, params=params, tags=tags)
        if n and n % 1000 == 0:
            print(f"seeded {n} runs ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return asset.id


def _encode(page: tuple[RunRecord, ...]) -> bytes:
    """The page as the MLflow face answers ``runs/search``."""
    return msgspec.json.encode({"runs": [run_json(r) for r in page]})


async def measure(store: Any, experiment: str, repeat: int, encode: bool) -> None:
    for name, (text, order) in SHAPES.items():
        comparisons, order_by = parse_filter(text), parse_order_by(order)
        timings: list[float] = []
        cpu: list[float] = []  # this process's CPU time (its threads too): steadier on a busy machine
        for _ in range(repeat + 3):
            started, started_cpu = time.perf_counter(), time.process_time()
            page, _token = await store.search_runs([experiment], comparisons, order_by, max_results=100)
            if encode:
                _encode(page)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        timings, cpu = sorted(timings[3:]), cpu[3:]  # the first calls warm the caches
        p99 = timings[min(len(timings) - 1, int(len(timings) * 0.99))]
        print(
            f"{name:22} runs={len(page):3} p50_ms={statistics.median(timings):7.2f} p99_ms={p99:7.2f}"
            f" cpu_p50_ms={statistics.median(cpu):7.2f}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--url", required=True, help="the system-of-record URL (sqlite+aiosqlite://, postgresql+psycopg://)"
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--params", type=int, default=20, help="params per seeded run")
    parser.add_argument("--metrics", type=int, default=100, help="metric keys per seeded run")
    parser.add_argument("--experiment", help="an experiment seeded before: skip the seeding")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--encode", action="store_true", help="also encode each page as JSON")
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile of the queries")
    args = parser.parse_args()
    data_dir = Path("/tmp/tracking-search-probe")
    bootstrap.migrate(Settings(database_url=args.url, data_dir=data_dir))
    async with bootstrap.open_adapter(
        bootstrap.DATABASES,
        args.url,
        setting="STUDIO9_DATABASE_URL",
        options=AdapterOptions(data_dir=data_dir),
    ) as database:
        experiment = args.experiment or await seed(database, args.runs, args.params, args.metrics)
        print(f"experiment={experiment}")
        if database.engine.dialect.name == "postgresql":  # what autovacuum does in production
            autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
            async with autocommit.connect() as connection:
                await connection.execute(sa.text("VACUUM ANALYZE"))
        gc.collect()
        gc.freeze()  # as ``studio9 serve`` does once started
        if args.profile:
            profile = cProfile.Profile()
            profile.enable()
            await measure(database.tracking, experiment, args.repeat, args.encode)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        else:
            await measure(database.tracking, experiment, args.repeat, args.encode)


if __name__ == "__main__":
    asyncio.run(main())
