"""Library search on the SQL index: reader-filtered queries over a shared asset corpus.

The corpus: ``--docs`` asset documents (kind ``asset``, the asset kind in ``fields``, a name,
0-3 tags of 200, words of a 2,000-word vocabulary) owned evenly by 100 users, and
``--shares`` shares: 75 % to a user, 20 % to one of 20 groups (5-10 members each), 5 % to
an email. A document's reader keys are its owner's ``u:`` key and its shares' grantee keys;
a caller's are ``u:`` self, ``e:`` their email and ``g:`` their groups (the access spec's).

Queries (50 hits, the library's facets ``fields.asset_kind``, ``terms.tags``, ``owner_id``
unless said otherwise), each as a random caller, against the same query without the
reader filter (an administrator's):

* ``library``: scope=all, newest first, facets (the library's first page);
* ``hits``: the same without facets;
* ``shared``: scope=shared (``not_owner_id``), facets;
* ``text``: a common word, by relevance, facets;
* ``tag``: ``any_terms`` tags=<a tag>, by name, facets;
* ``updated``: order updated, second page by cursor, no facets.

Latency is sequential (one query at a time, the garbage collector frozen after the load):
p50 / p99, and throughput = queries per second of that sequential run. Backends as in
``benchmarks/search.py``: a fresh migrated SQLite file, and a fresh PostgreSQL database on
127.0.0.1:5432 (user postgres), VACUUM ANALYZEd.

    .venv/bin/python benchmarks/library.py [--docs 100000] [--shares 20000] [--queries 200]
        [--only sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import psycopg

from studio9 import bootstrap
from studio9.backends import AdapterOptions
from studio9.config import Settings
from studio9.ids import new_id
from studio9.metadata.domain import SearchDocument, SearchQuery
from studio9.metadata.ports import SearchIndex

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/{}"
FACETS = ("fields.asset_kind", "terms.tags", "owner_id")
KINDS = ("table", "model", "file", "notebook")
USERS, GROUPS, TAGS, VOCABULARY = 100, 20, 200, 2000


@attrs.frozen
class Corpus:
    docs: list[SearchDocument]
    users: list[str]
    keys: dict[str, frozenset[str]]  # user id -> reader keys
    vocab: list[str]
    tags: list[str]


def corpus(count: int, shares: int, seed: int = 9) -> Corpus:
    rng = random.Random(seed)
    users = [new_id(1_000_000 + i) for i in range(USERS)]
    groups = [new_id(2_000_000 + i) for i in range(GROUPS)]
    members = {g: rng.sample(users, rng.randint(5, 10)) for g in groups}
    keys = {u: {f"u:{u}", f"e:user{i}@example.org"} for i, u in enumerate(users)}
    for g, people in members.items():
        for u in people:
            keys[u].add(f"g:{g}")
    vocab = [f"w{i}" for i in range(VOCABULARY)]
    tags = [f"tag{i}" for i in range(TAGS)]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    owners = [users[i % USERS] for i in range(count)]
    readers: list[set[str]] = [{f"u:{o}"} for o in owners]
    for _ in range(shares):
        roll = rng.random()
        if roll < 0.75:
            grantee = f"u:{rng.choice(users)}"
        elif roll < 0.95:
            grantee = f"g:{rng.choice(groups)}"
        else:
            grantee = f"e:user{rng.randrange(USERS)}@example.org"
        readers[rng.randrange(count)].add(grantee)
    docs = []
    for i in range(count):
        name = " ".join(rng.choices(vocab[:300], k=2))
        text = " ".join([name, *rng.choices(vocab, weights=[1 / (r + 1) for r in range(VOCABULARY)], k=12)])
        docs.append(
            SearchDocument(
                id=new_id(3_000_000 + i),
                kind="asset",
                owner_id=owners[i],
                text=text,
                fields={"asset_kind": rng.choice(KINDS), "name": name},
                terms={"tags": rng.sample(tags, rng.randint(0, 3))},
                readers=readers[i],
                updated_at=base + timedelta(seconds=rng.randrange(10_000_000)),
                body={"name": name},
            )
        )
    return Corpus(docs, users, {u: frozenset(k) for u, k in keys.items()}, vocab, tags)


def queries(c: Corpus, kind: str, count: int, *, filtered: bool) -> list[tuple[str, SearchQuery]]:
    """``count`` queries of ``kind`` as random callers, with (or without) their reader keys."""
    rng = random.Random(kind)
    made = []
    for _ in range(count):
        user = rng.choice(c.users)
        common: dict[str, Any] = {"kind": "asset", "limit": 50, "readers": c.keys[user] if filtered else None}
        if kind == "library":
            made.append((kind, SearchQuery(**common, order="newest", facets=FACETS)))
        elif kind == "hits":
            made.append((kind, SearchQuery(**common, order="newest")))
        elif kind == "shared":
            made.append((kind, SearchQuery(**common, not_owner_id=user, facets=FACETS)))
        elif kind == "text":
            made.append((kind, SearchQuery(**common, text=c.vocab[rng.randrange(5)], facets=FACETS)))
        elif kind == "tag":
            tag = {"tags": rng.choice(c.tags)}
            made.append((kind, SearchQuery(**common, any_terms=tag, order="name", facets=FACETS)))
        else:
            made.append((kind, SearchQuery(**common, order="updated")))
    return made


KINDS_OF_QUERY = ("library", "hits", "shared", "text", "tag", "updated")


async def run(index: SearchIndex, query: SearchQuery) -> float:
    if query.order == "updated":  # the second page: fetch the first, time the next
        first = await index.search(query)
        query = attrs.evolve(query, cursor=first.next_cursor)
    started = time.perf_counter()
    await index.search(query)
    return (time.perf_counter() - started) * 1000


def postgres(database: str, statement: str) -> None:
    with psycopg.connect(POSTGRES_URL.format(database), autocommit=True) as conn:
        conn.execute(statement)


@contextlib.asynccontextmanager
async def opened(name: str, workdir: Path) -> AsyncIterator[tuple[SearchIndex, str]]:
    async with contextlib.AsyncExitStack() as stack:
        database_url = f"sqlite+aiosqlite:///{workdir}/library.db"
        db = ""
        if name == "postgresql":
            db = f"studio9_bench_{uuid.uuid4().hex[:12]}"
            await asyncio.to_thread(postgres, "postgres", f'CREATE DATABASE "{db}"')
            stack.callback(postgres, "postgres", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            database_url = POSTGRES_URL.format(db).replace("postgresql://", "postgresql+psycopg://")
        await asyncio.to_thread(bootstrap.migrate, Settings(database_url=database_url, data_dir=workdir))
        options = AdapterOptions(timeout=60.0, data_dir=workdir)
        database = await stack.enter_async_context(
            bootstrap.open_adapter(
                bootstrap.DATABASES, database_url, setting="STUDIO9_DATABASE_URL", options=options
            )
        )
        index = await stack.enter_async_context(
            bootstrap.open_adapter(
                bootstrap.INDEXES,
                "sql://",
                setting="STUDIO9_INDEX_URL",
                options=attrs.evolve(options, database=database),
            )
        )
        yield index, db


async def bench(name: str, c: Corpus, count: int) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        async with opened(name, Path(workdir)) as (index, db):
            started = time.perf_counter()
            for start in range(0, len(c.docs), 500):
                await index.upsert(c.docs[start : start + 500])
            load = time.perf_counter() - started
            if db:
                await asyncio.to_thread(
                    postgres, db, "VACUUM ANALYZE search_documents, search_fts, search_readers, search_terms"
                )
            elif hasattr(index, "database"):
                async with index.database.engine.begin() as conn:
                    await conn.exec_driver_sql("ANALYZE")
            # 100,000 documents are millions of objects: keep the collector from walking them
            # in the middle of a timed query.
            gc.collect()
            gc.freeze()
            print(f"{name}: loaded {len(c.docs)} docs in {load:.1f} s ({len(c.docs) / load:.0f} docs/s)")
            for kind in KINDS_OF_QUERY:
                figures = {}
                for filtered in (True, False):
                    batch = queries(c, kind, count, filtered=filtered)
                    for _, q in batch[:5]:
                        await run(index, q)  # warm-up
                    times = [await run(index, q) for _, q in batch]
                    times.sort()
                    figures[filtered] = (
                        statistics.median(times),
                        times[int(len(times) * 0.99) - 1],
                        1000 / statistics.mean(times),
                    )
                (p50, p99, qps), (ap50, ap99, aqps) = figures[True], figures[False]
                with_keys = f"readers: p50 {p50:6.1f} ms p99 {p99:6.1f} ms {qps:6.0f} q/s"
                without = f"no filter: p50 {ap50:6.1f} ms p99 {ap99:6.1f} ms {aqps:6.0f} q/s"
                print(f"  {kind:8} {with_keys} | {without} | ratio {qps / aqps:4.2f}x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--shares", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    c = corpus(args.docs, args.shares)
    readable = statistics.mean(sum(1 for d in c.docs if d.readers & c.keys[u]) for u in c.users[:10])
    print(f"corpus: {args.docs} docs, {args.shares} shares; a caller reads ~{readable:.0f} documents")
    for name in [args.only] if args.only else ["sqlite", "postgresql"]:
        await bench(name, c, args.queries)


if __name__ == "__main__":
    asyncio.run(main())
