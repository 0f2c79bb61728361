"""Group commit: job changes that arrive together are committed together.

Alone, each job change (one statement, ``postgresql_statements``) is its own transaction: a round trip, a
commit and a WAL flush. Under load many changes wait at once (a submitter's concurrent
requests, a worker's threads), so ``GroupCommit.write`` queues the statement and a flusher
sends everything queued as one pipeline: the statements back to back, then one Sync. The
statements of a pipeline up to its Sync are one implicit transaction, committed at the
Sync (no BEGIN or COMMIT round trips). A change that finds no flusher busy goes at once,
alone: an idle system waits for nothing, and batches form only while earlier ones are in
the database.

A batch runs its statements in key order (the job id; a stable sort, so two changes of one
job keep the order they came in): every batch of every process locks job rows in the same
order, so two batches never wait for each other in a cycle. When a statement fails (a
duplicate job id, say) PostgreSQL rolls the whole batch back; each change is then run again
on its own, so that every caller gets the answer it would have had alone. A lost connection
fails the whole batch with ``BackendUnavailable``, as it would have failed each change.

Measured with ``benchmarks/jobs_cloud.py --workers 2``, a run before and one after, the same
morning: PostgreSQL's CPU per job 1.89 → 1.47 ms, the submitting client's 1.10 → 1.00 ms.
(Sending a batch as ONE statement, its rows as a JSON document, was tried too: the client's
CPU fell further, but PostgreSQL's rose more than that; see benchmarks/README.md.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Final, Protocol

import psycopg
import sqlalchemy as sa

from adapters.sql.pg_raw import Compiled, PgRunner, unavailable
from studio9.errors import BackendUnavailable

#: Most statements in one transaction: enough to share the commit, few enough that a batch
#: holds its row locks briefly and a failed one is cheap to replay.
MAX_BATCH: Final = 32
#: Batches in the database at once: one fills while another commits.
MAX_FLUSHERS: Final = 2

Row = tuple[Any, ...] | None


class _Write:
    __slots__ = ("compiled", "future", "key", "params")

    def __init__(self, compiled: Compiled, params: dict[str, Any], key: str, future: asyncio.Future[Row]):
        self.compiled, self.params, self.key, self.future = compiled, params, key, future


class CommitTogether(Protocol):
    """What sends a batch of two or more writes as one transaction and answers their rows in
    order: ``commit_together`` below, or a test's stand-in that loses the database."""

    async def __call__(self, runner: PgRunner, batch: list[_Write]) -> list[Row]: ...


class GroupCommit:
    """Runs single-statement writes, committing those that arrive together in one transaction."""

    def __init__(self, runner: PgRunner, *, together: CommitTogether | None = None) -> None:
        self._runner = runner
        self._together: CommitTogether = together or commit_together
        self._queued: list[_Write] = []
        self._flushers = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, statement: sa.ClauseElement, params: Mapping[str, Any], *, key: str) -> Row:
        """Run ``statement`` (a write that returns at most one row) with the next batch.

        Raises:
            BackendUnavailable: the database could not be reached.
            psycopg.Error: the statement failed (run on its own, it changed nothing).
        """
        compiled = self._runner.compiled(statement)
        future: asyncio.Future[Row] = asyncio.get_running_loop().create_future()
        self._queued.append(_Write(compiled, compiled.params(params), key, future))
        if self._flushers < MAX_FLUSHERS:
            self._flushers += 1
            task = asyncio.create_task(self._flush())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def aclose(self) -> None:
        """Wait for the batches in flight: their callers are waiting for them."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _flush(self) -> None:
        try:
            while batch := self._next_batch():
                await self._run(batch)
        finally:
            self._flushers -= 1

    def _next_batch(self) -> list[_Write]:
        waiting = [w for w in self._queued if not w.future.done()]  # skip callers that gave up
        batch, self._queued = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
        return sorted(batch, key=lambda write: write.key)

    async def _run(self, batch: list[_Write]) -> None:
        try:
            rows = await (self._together(self._runner, batch) if len(batch) > 1 else self._alone(batch[0]))
        except asyncio.CancelledError:
            _fail(batch, asyncio.CancelledError())
            raise
        except Exception as exc:
            if len(batch) == 1 or isinstance(exc, BackendUnavailable):
                _fail(batch, exc)
                return
            for write in batch:  # rolled back as a whole: each again alone, for its own answer
                await self._run([write])
            return
        for write, row in zip(batch, rows, strict=True):
            if not write.future.done():
                write.future.set_result(row)

    async def _alone(self, write: _Write) -> list[Row]:
        async with self._runner.connection() as conn:
            with unavailable():
                cursor = await conn.execute(write.compiled.sql, write.params)
                return [await cursor.fetchone()]


async def commit_together(runner: PgRunner, batch: list[_Write]) -> list[Row]:
    """Send ``batch`` as one pipeline: its statements are one transaction, committed at the Sync."""
    async with runner.connection() as conn:
        try:
            with unavailable():
                async with conn.pipeline() as pipeline:
                    cursors = []
                    for write in batch:
                        cursor = conn.cursor()
                        await cursor.execute(write.compiled.sql, write.params)
                        cursors.append(cursor)
                    await pipeline.sync()
                    return [await cursor.fetchone() for cursor in cursors]
        except psycopg.Error:
            # psycopg counts as prepared the statements a failed pipeline never got to:
            # a new connection rather than a stale statement cache.
            await conn.close()
            raise


def _fail(batch: list[_Write], exc: BaseException) -> None:
    for write in batch:
        if not write.future.done():
            write.future.set_exception(exc)
