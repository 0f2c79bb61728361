"""Search index: bulk indexing throughput and query latency of every SearchIndex adapter.

One corpus of job documents (``studio9.metadata.job_search.job_document`` over synthetic jobs: ~10
types, weighted statuses, 50 owners, params and messages drawn from a Zipf-like vocabulary
of 4,000 words, errors on failed jobs), built once from a fixed seed, is loaded into each
adapter in turn, opened by URL as production opens it:

* ``memory``: ``memory://``, the same-run baseline (every search scans every document).
* ``sqlite``: ``sql://`` on a fresh, migrated ``sqlite+aiosqlite`` file database (FTS5).
* ``postgresql``: ``sql://`` on a fresh database on 127.0.0.1:5432 (user postgres, trust),
  migrated, ``VACUUM ANALYZE``d after the load (so the planner knows the GIN index), dropped.
* ``opensearch``: ``opensearch://`` against an osmem-server started here (an in-memory
  stand-in: its figures say nothing about a real OpenSearch cluster).

Indexing: ``upsert`` in batches of 500, one after the other -> docs/s. Queries, 50 hits a
page: (a) one common word, (b) two words, (c) a word + a status filter, (d) an owner's
query for a rare word, (e) no text + a type filter (newest first), (f) the second page of
(a) by cursor. Each kind runs once per variant as warm-up, then ``--queries`` times,
interleaved; p50/p99 overall (and per kind with ``--verbose``), ratios against memory and
the aim (query p50 <= 50 ms on the SQL adapters). Run from the repository root:

    .venv/bin/python benchmarks/search.py [--docs 100000] [--queries 200] [--only sqlite] [--verbose]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.util
import itertools
import logging
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg

# Run as a script: its directory is on the path.
from deadline import BenchTimeout

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.ids import new_id
from studio9.jobs.domain import Heartbeat, Job, JobError, JobStatus
from studio9.logs import configure_logging
from studio9.metadata.domain import SearchDocument, SearchPage, SearchQuery, words
from studio9.metadata.job_search import job_document
from studio9.metadata.ports import SearchIndex

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/{}"  # trust auth, as on every dev and CI box
#: The scheme table with the OpenSearch adapter in it, whether or not bootstrap has it yet.
INDEXES = {**bootstrap.INDEXES, "opensearch": "adapters.search_index.opensearch:OpenSearchSearchIndex"}
ADAPTERS = ("memory", "sqlite", "postgresql", "opensearch")
KINDS = ("common", "two_words", "word_status", "owner_rare", "type_newest", "page2")
BATCH = 500
VARIANTS = 20  # distinct queries per kind, used in turn
VOCABULARY, OWNERS, SEED = 4000, 50, 9
AIM_SQL_P50_MS = 50.0
NOW = datetime(2026, 12, 1, tzinfo=UTC)
JOB_TYPES = {  # type -> weight
    "data.profile": 20, "data.ingest": 15, "data.validate": 10, "data.export": 5, "model.train": 15,
    "model.evaluate": 10, "model.predict": 12, "report.render": 6, "system.noop": 4, "system.sleep": 3,
}  # fmt: skip
STATUSES = {
    JobStatus.COMPLETED: 70, JobStatus.FAILED: 12, JobStatus.RUNNING: 5, JobStatus.QUEUED: 5,
    JobStatus.CANCELLED: 5, JobStatus.SUBMITTED: 3,
}  # fmt: skip
ERRORS = (
    ("handler_error", "KeyError: column '{0}' not found in {1}.csv"),
    ("handler_error", "ValueError: could not convert string '{0}' to float in column {1}"),
    ("timeout", "the job ran longer than its timeout of 3600 s while {0} {1}"),
    ("lost", "worker {0} stopped sending heartbeats during {1}"),
    ("start_timeout", "no worker started the job within 300 s ({0} queue {1})"),
)


def check(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise BenchTimeout(f"while {what}")


@dataclass
class Corpus:
    docs: list[SearchDocument]
    vocab: list[str]  # by frequency rank, most common first
    owners: list[str]


@dataclass
class Figure:
    loaded: int = 0
    load_s: float = 0.0
    rounds: int = 0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    extra: str = ""
    printed: bool = False

    @property
    def docs_per_s(self) -> float:
        return self.loaded / self.load_s if self.load_s else 0.0

    def p(self, fraction: float, kind: str | None = None) -> float:
        values = self.latencies[kind] if kind else list(itertools.chain(*self.latencies.values()))
        return pct_ms(values, fraction)


@dataclass
class Context:
    args: argparse.Namespace
    corpus: Corpus
    queries: dict[str, list[SearchQuery]]
    workdir: Path
    deadline: float  # time.monotonic()
    results: dict[str, Figure] = field(default_factory=dict)
    answers: dict[tuple[str, int], Any] = field(default_factory=dict)  # memory's, to check the others
    mismatches: int = 0


def pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


# -- corpus --------------------------------------------------------------------------------
def make_vocab(rng: random.Random, size: int) -> list[str]:
    syllables = [c + v for c in "bcdfgklmnprstvz" for v in "aeiou"] + ["ar", "en", "il", "on", "us"]
    found: dict[str, None] = {}
    while len(found) < size:
        found["".join(rng.choices(syllables, k=rng.randint(2, 4)))] = None
    return list(found)


def make_corpus(count: int, rng: random.Random) -> Corpus:
    vocab = make_vocab(rng, VOCABULARY)
    cum = list(itertools.accumulate(1 / (rank + 1) ** 1.05 for rank in range(len(vocab))))
    owners = [new_id(1_700_000_000_000 + i) for i in range(OWNERS)]
    owner_cum = list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(OWNERS)))
    types, type_w = list(JOB_TYPES), list(JOB_TYPES.values())
    statuses, status_w = list(STATUSES), list(STATUSES.values())

    def some(low: int, high: int) -> list[str]:
        return rng.choices(vocab, cum_weights=cum, k=rng.randint(low, high))

    start_ms = int((NOW - timedelta(days=30)).timestamp() * 1000)
    step_ms = 30 * 86_400_000 // max(count, 1)
    docs = []
    for i in range(count):
        submitted = start_ms + i * step_ms + rng.randrange(max(step_ms, 1))
        status = rng.choices(statuses, status_w)[0]
        w = some(2, 2)
        params = {
            "dataset": f"s3://lake/{w[0]}/{w[1]}.parquet",
            "columns": some(1, 6),
            "description": " ".join(some(4, 20)),
            "threshold": round(rng.random(), 2),
            "seed": rng.randrange(10_000),
        }
        ran = status not in (JobStatus.SUBMITTED, JobStatus.QUEUED)
        code, template = rng.choice(ERRORS)
        failed, completed = status is JobStatus.FAILED, status is JobStatus.COMPLETED
        job = Job(
            id=new_id(submitted),
            owner_id=rng.choices(owners, cum_weights=owner_cum)[0],
            type=rng.choices(types, type_w)[0],
            params=params,
            status=status,
            submitted_at=datetime.fromtimestamp(submitted / 1000, UTC),
            progress=1.0 if completed else round(rng.random(), 2) if ran else 0.0,
            message=f"step {rng.randint(1, 9)} of 10: " + " ".join(some(2, 6)) if ran else None,
            result={"rows": rng.randrange(10**6), "summary": " ".join(some(3, 8))} if completed else None,
            error=JobError(code=code, message=template.format(*some(2, 2))) if failed else None,
        )
        beats = [
            Heartbeat(job_id=job.id, at=NOW, attempt=1, progress=0.5, message=" ".join(some(2, 5)))
            for _ in range(rng.randint(0, 3) if ran else 0)
        ]
        docs.append(job_document(job, beats, NOW))
    return Corpus(docs, vocab, owners)


def make_queries(corpus: Corpus, rng: random.Random) -> dict[str, list[SearchQuery]]:
    """``VARIANTS`` queries of each kind but page2, whose cursors come from each adapter's answers."""
    v, types, owners = corpus.vocab, list(JOB_TYPES), corpus.owners
    makers: dict[str, Callable[[int], dict[str, Any]]] = {
        "common": lambda i: {"text": v[i]},  # the most frequent words: in 16-97 % of the documents
        "two_words": lambda i: {"text": f"{v[rng.randrange(50)]} {v[rng.randrange(20, 300)]}"},
        "word_status": lambda i: {"text": v[rng.randrange(50)], "filters": {"status": "failed"}},
        "owner_rare": lambda i: {"text": v[rng.randrange(1500, 3500)], "owner_id": rng.choice(owners)},
        "type_newest": lambda i: {"filters": {"type": types[i % len(types)]}},
    }
    return {k: [SearchQuery(kind="job", **make(i)) for i in range(VARIANTS)] for k, make in makers.items()}


# -- adapters ------------------------------------------------------------------------------
AfterLoad = Callable[[], Awaitable[str]]


def postgres(database: str, statement: str) -> None:
    with psycopg.connect(POSTGRES_URL.format(database), autocommit=True) as conn:
        conn.execute(statement)


@contextlib.asynccontextmanager
async def opened(name: str, workdir: Path) -> AsyncIterator[tuple[SearchIndex, AfterLoad | None]]:
    """The adapter ``name`` on a fresh backend; everything it made is removed on the way out."""
    url, options, after_load = "memory://", AdapterOptions(timeout=30.0, data_dir=workdir), None
    async with contextlib.AsyncExitStack() as stack:
        if name == "opensearch":
            from osmem_server import OsmemServer  # type: ignore[import-untyped]

            server = await asyncio.to_thread(OsmemServer.start, japanese=False)
            stack.callback(server.close)
            address = server.url.split("://", 1)[1].rstrip("/")
            url = f"opensearch://{address}/?index=studio9-bench-{uuid.uuid4().hex[:8]}"
        elif name in ("sqlite", "postgresql"):
            database_url = f"sqlite+aiosqlite:///{workdir}/search.db"
            if name == "postgresql":
                db = f"studio9_bench_{uuid.uuid4().hex[:12]}"
                await asyncio.to_thread(postgres, "postgres", f'CREATE DATABASE "{db}"')
                stack.callback(postgres, "postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                database_url = POSTGRES_URL.format(db).replace("postgresql://", "postgresql+psycopg://")

                async def after_load() -> str:  # part of the load: the GIN index is unused without it
                    started = time.perf_counter()
                    await asyncio.to_thread(postgres, db, "VACUUM ANALYZE search_documents, search_fts")
                    return f" vacuum_analyze_s={time.perf_counter() - started:.1f}"

            await asyncio.to_thread(bootstrap.migrate, Settings(database_url=database_url, data_dir=workdir))
            database = await stack.enter_async_context(
                bootstrap.open_adapter(
                    bootstrap.DATABASES, database_url, setting="STUDIO9_DATABASE_URL", options=options
                )
            )
            url, options = "sql://", attrs.evolve(options, database=database)
        index = await stack.enter_async_context(
            bootstrap.open_adapter(INDEXES, url, setting="STUDIO9_INDEX_URL", options=options)
        )
        if name == "opensearch":
            await index.ensure_schema()  # as `studio9 migrate` does
        yield index, after_load


def unavailable(name: str) -> str | None:
    """Why adapter ``name`` cannot run here, or None."""
    for module in ("opensearchpy", "osmem_server", "adapters.search_index.opensearch"):
        if name == "opensearch" and importlib.util.find_spec(module) is None:  # parents first
            return f"{module} is not importable (yet)"
    return None


# -- measuring -----------------------------------------------------------------------------
async def timed(index: SearchIndex, query: SearchQuery) -> tuple[float, SearchPage]:
    started = time.perf_counter()
    page = await index.search(query)
    return time.perf_counter() - started, page


def answer_key(kind: str, page: SearchPage) -> Any:
    """What every adapter must agree on: ids without text (id order), else how many hits."""
    return [hit.id for hit in page.items] if kind == "type_newest" else len(page.items)


async def measure(name: str, fig: Figure, ctx: Context) -> None:
    """Load the corpus into ``name``, then time the queries, filling in ``fig`` as it goes."""
    docs = ctx.corpus.docs
    async with opened(name, ctx.workdir / name) as (index, after_load):
        started = time.perf_counter()
        for start in range(0, len(docs), BATCH):
            check(ctx.deadline, f"loading {name}")
            await index.upsert(docs[start : start + BATCH])
            fig.loaded, fig.load_s = min(start + BATCH, len(docs)), time.perf_counter() - started
        if after_load is not None:
            fig.extra = await after_load()
        if ctx.args.verbose:
            print(f"{name}: loaded {fig.loaded} docs at {fig.docs_per_s:.0f}/s", file=sys.stderr, flush=True)
        runs = {**ctx.queries, "page2": []}
        for kind in KINDS:  # warm-up: every variant once, checked against the baseline's answers
            for i, query in enumerate(runs[kind]):
                check(ctx.deadline, f"warming up {name}")
                _, page = await timed(index, query)
                if kind == "common" and page.next_cursor is not None:
                    runs["page2"].append(attrs.evolve(query, cursor=page.next_cursor))
                if ctx.answers.setdefault((kind, i), answer_key(kind, page)) != answer_key(kind, page):
                    ctx.mismatches += 1
                    print(f"search: {name} {kind} #{i} differs from the first adapter run", file=sys.stderr)
        for i in range(ctx.args.queries):
            check(ctx.deadline, f"querying {name}")
            for kind in KINDS:  # interleaved, so that drift on a shared box hits every kind alike
                if runs[kind]:
                    elapsed, _ = await timed(index, runs[kind][i % len(runs[kind])])
                    fig.latencies[kind].append(elapsed)
            fig.rounds = i + 1


# -- main ----------------------------------------------------------------------------------
def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=100_000, help="documents (default 100000)")
    parser.add_argument("--queries", type=int, default=200, help="timed runs per query kind (default 200)")
    parser.add_argument("--only", action="append", choices=ADAPTERS, help="only this adapter (repeatable)")
    parser.add_argument("--deadline", type=float, default=900.0, help="overall limit in s (default 900)")
    parser.add_argument("--verbose", action="store_true", help="per-kind figures, progress on stderr")
    args = parser.parse_args()
    if min(args.docs, args.queries) < 1 or args.deadline <= 0:
        parser.error("--docs, --queries and --deadline must be positive")
    return args


def report(ctx: Context) -> None:
    for name, fig in ctx.results.items():
        if not fig.printed:  # cut short by the deadline
            print(line(name, fig, ctx.args), flush=True)
    timed_ = {name: fig for name, fig in ctx.results.items() if fig.rounds}  # with query figures
    memory = timed_.get("memory")
    for name, fig in timed_.items():
        if name != "memory" and memory is not None:
            print(
                f"ratio_{name}  index={fig.docs_per_s / memory.docs_per_s:.3f}"
                f" query_p50={fig.p(0.5) / memory.p(0.5):.3f} query_p99={fig.p(0.99) / memory.p(0.99):.3f}"
                "  (vs memory; index: higher is faster, query: lower is faster)"
            )
    for name in ("sqlite", "postgresql"):
        if name in timed_:
            p50 = timed_[name].p(0.5)
            met = "met" if p50 <= AIM_SQL_P50_MS else "NOT met"
            print(f"aim {name}: query_p50_ms <= {AIM_SQL_P50_MS:g} {met} ({p50:.2f})")


def line(name: str, fig: Figure, args: argparse.Namespace) -> str:
    fig.printed = True
    text = (
        f"{name:<10} index_docs_per_s={fig.docs_per_s:.1f} query_p50_ms={fig.p(0.5):.2f}"
        f" query_p99_ms={fig.p(0.99):.2f}{fig.extra}"
    )
    if fig.loaded < args.docs:
        text += f"  (deadline: {fig.loaded} of {args.docs} docs loaded, no queries)"
    elif fig.rounds < args.queries:
        text += f"  (deadline: {fig.rounds} of {args.queries} query rounds)"
    for kind in KINDS if args.verbose and fig.rounds else ():
        text += f"\n{name:<10}   {kind:<12} p50_ms={fig.p(0.5, kind):.2f} p99_ms={fig.p(0.99, kind):.2f}"
    return text


async def bench(ctx: Context) -> None:
    for name in [a for a in ADAPTERS if a in (ctx.args.only or ADAPTERS)]:  # memory first: the baseline
        if (reason := unavailable(name)) is not None:
            print(f"{name:<10} skipped: {reason}", flush=True)
            continue
        (ctx.workdir / name).mkdir()
        ctx.results[name] = Figure()
        await measure(name, ctx.results[name], ctx)
        print(line(name, ctx.results[name], ctx.args), flush=True)


def run(args: argparse.Namespace) -> int:
    configure_logging("warning", stream=sys.stderr)  # the adapters' info lines are not figures
    logging.getLogger("opensearch").setLevel(logging.ERROR)  # the 404 of "is there an alias yet?"
    deadline = time.monotonic() + args.deadline
    started, rng = time.perf_counter(), random.Random(SEED)
    corpus = make_corpus(args.docs, rng)
    gc.collect()
    gc.freeze()  # the corpus is the harness's: keep it out of every adapter's garbage collections
    size = sum(len(words(d.text)) for d in corpus.docs) / len(corpus.docs)
    print(
        f"docs={args.docs} queries_per_kind={args.queries} batch={BATCH} vocabulary={VOCABULARY}"
        f" owners={OWNERS} avg_words_per_doc={size:.0f} corpus_s={time.perf_counter() - started:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="studio9-search-bench-") as tmp:
        ctx = Context(args, corpus, make_queries(corpus, rng), Path(tmp), deadline)
        try:
            asyncio.run(asyncio.wait_for(bench(ctx), deadline - time.monotonic()))
        except (BenchTimeout, TimeoutError) as exc:
            report(ctx)
            print(f"search: --deadline {args.deadline:g}s passed {exc}".rstrip(), file=sys.stderr)
            return 2
    report(ctx)
    return 1 if ctx.mismatches else 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so temporary databases are removed too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
