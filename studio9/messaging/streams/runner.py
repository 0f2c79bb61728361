"""The stream runner: in every process, it serves the streams whose lease it holds.

Each stream is served by exactly one runner at a time: a lease row (owner + expiry) taken
with one conditional write and renewed every cycle; when a process dies its streams are
taken over after ``lease_seconds``. A cycle of a stream:

1. pull messages from its queue (sqs/amqp; ``http`` items arrive through the API), store
   their items in SQL (duplicates dropped by key), and only then acknowledge the messages;
2. form batches from SQL when ``batch_size`` items wait or the oldest waited ``max_wait``:
   each batch gets its job id when it is formed, in the same transaction;
3. submit each formed batch's job under that id, then mark the batch. A crash in between
   leaves the batch ``submitting``; the next cycle finds the job by its id and only marks it.

So no item is lost (a message leaves its queue only once stored) and none is doubled
(one key per stream, one job id per batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import time
from datetime import timedelta

import attrs
import structlog

from studio9.errors import InvalidInput, NotFound
from studio9.ids import new_id
from studio9.messaging.streams.domain import Batch, StreamMode, StreamSpec, job_params
from studio9.messaging.streams.ports import StreamSource
from studio9.messaging.streams.service import StreamService

log = structlog.get_logger()

#: Batches formed, and batches submitted, in one cycle at most (the next cycle goes on).
_CYCLE_LIMIT = 100
_MAX_BACKOFF = 30.0


def _runner_id() -> str:
    return f"{socket.gethostname()[:60]}/{os.getpid()}/{new_id()[-8:]}"


@attrs.define
class StreamRunner:
    service: StreamService
    #: Seconds a runner's hold on a stream lasts without renewal (renewed every cycle).
    lease_seconds: float = 30.0
    #: Seconds between cycles of an idle stream (and the longest wait on a queue).
    tick: float = 1.0
    #: Seconds between looks for streams nobody serves (new ones, or a dead runner's).
    discover_every: float = 5.0
    owner: str = attrs.field(factory=_runner_id)
    #: Give the leases back when ``run_forever`` ends (False: leave them to expire, as a crash would).
    release_on_exit: bool = True
    #: Set to look for streams now; the composition root hands its ``set`` to the service's ``on_change``.
    wakeup: asyncio.Event = attrs.field(factory=asyncio.Event)
    _tasks: dict[str, asyncio.Task[None]] = attrs.field(factory=dict, init=False)

    @property
    def serving(self) -> frozenset[str]:
        """Ids of the streams this runner serves now."""
        return frozenset(i for i, t in self._tasks.items() if not t.done())

    def wake(self) -> None:
        """Look for streams now (one was created or changed in this process)."""
        self.wakeup.set()

    async def run_forever(self) -> None:
        """Discover and serve streams until cancelled; then give their leases back."""
        self.wakeup.clear()  # changes made before it ran are found by the first discovery
        try:
            while True:
                try:
                    await self.discover()
                except Exception:
                    log.exception("stream_discovery_failed")
                jitter = random.uniform(0.8, 1.2)  # noqa: S311 - spreading replicas, not crypto
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wakeup.wait(), self.discover_every * jitter)
                self.wakeup.clear()
        finally:
            await self.stop(release=self.release_on_exit)

    async def discover(self) -> None:
        """Take the lease of every stream nobody serves, and serve it."""
        self._tasks = {i: t for i, t in self._tasks.items() if not t.done()}
        states = self.service.states
        for spec in await self.service.specs():
            if spec.id in self._tasks:
                continue
            now = self.service.clock()
            await states.ensure(spec.id, spec.owner_id, now)
            if await states.lease(spec.id, self.owner, now=now, until=now + self._lease()):
                log.info("stream_lease_taken", stream_id=spec.id, runner=self.owner)
                self._tasks[spec.id] = asyncio.create_task(self._serve(spec.id), name=f"stream-{spec.id}")

    async def stop(self, *, release: bool = True) -> None:
        """Stop serving; ``release`` gives the leases back so another runner takes over at once
        (False leaves them to expire, as a crash would)."""
        tasks, self._tasks = self._tasks, {}
        for task in tasks.values():
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if release:
            for stream_id in tasks:
                with contextlib.suppress(Exception):
                    await self.service.states.release(stream_id, self.owner)

    async def _serve(self, stream_id: str) -> None:
        source: StreamSource | None = None
        source_url: str | None = None
        failures = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    spec = await self.service.spec(stream_id)
                    if spec is None or not await self._renew(spec):
                        return
                    state = await self.service.states.get(stream_id)
                    received = 0
                    if state is not None and not state.paused:
                        if spec.pulls and spec.source != source_url:
                            if source is not None:
                                await source.aclose()
                            source, source_url = self._open(spec.source), spec.source
                        if source is not None and spec.pulls:
                            received = await self._pull(spec, source)
                        await self.run_cycle(spec)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    log.warning(
                        "stream_cycle_failed", stream_id=stream_id, error=repr(exc), failures=failures
                    )
                    await asyncio.sleep(min(self.tick * 2**failures, _MAX_BACKOFF))
                    continue
                if received == 0:
                    await asyncio.sleep(max(0.0, self.tick - (time.monotonic() - started)))
        finally:
            if source is not None:
                with contextlib.suppress(Exception):
                    await source.aclose()
            log.info("stream_served_no_more", stream_id=stream_id, runner=self.owner)

    async def run_cycle(self, spec: StreamSpec) -> int:
        """Form the batches that are due and submit every formed one; returns jobs submitted."""
        backlog = self.service.backlog
        now = self.service.clock()
        due_before = now - timedelta(seconds=spec.max_wait)
        for _ in range(_CYCLE_LIMIT):
            formed = await backlog.form(
                spec.id,
                limit=spec.batch_size,
                due_before=due_before,
                per_item=spec.mode is StreamMode.PER_ITEM,
                at=now,
            )
            if not formed:
                break
        batches = await backlog.open_batches(spec.id, limit=_CYCLE_LIMIT)
        if batches and await self.service.pause_if_orphaned(spec):
            return 0  # its owner was deleted: no job is submitted for a user who is gone
        submitted = 0
        for batch in batches:
            submitted += await self._submit(spec, batch)
        return submitted

    async def _submit(self, spec: StreamSpec, batch: Batch) -> int:
        """Submit the batch's job unless it exists already, then mark the batch (idempotent)."""
        jobs, backlog, owner = self.service.jobs, self.service.backlog, spec.owner()
        try:
            await jobs.get(owner, batch.job_id)
        except NotFound:
            try:
                await jobs.submit(owner, spec.job_type, job_params(spec, batch.items), job_id=batch.job_id)
            except InvalidInput as exc:  # the job can never be made from this batch: say why
                await backlog.finish(spec.id, batch.id, error=exc.message, at=self.service.clock())
                log.warning("stream_batch_refused", stream_id=spec.id, batch_id=batch.id, error=exc.message)
                return 0
        if await backlog.finish(spec.id, batch.id, error=None, at=self.service.clock()):
            log.info(
                "stream_batch_submitted",
                stream_id=spec.id,
                batch_id=batch.id,
                job_id=batch.job_id,
                items=batch.item_count,
            )
        return 1

    async def _pull(self, spec: StreamSpec, source: StreamSource) -> int:
        """Store one receive's items, then acknowledge its messages; returns how many messages."""
        deliveries = await source.receive(max_messages=spec.batch_size, wait_seconds=self.tick)
        items = [item for delivery in deliveries for item in delivery.items]
        if items:
            await self.service.backlog.add(spec.id, items, self.service.clock())
        if deliveries:
            await source.ack(deliveries)
        return len(deliveries)

    async def _renew(self, spec: StreamSpec) -> bool:
        now = self.service.clock()
        held = await self.service.states.lease(spec.id, self.owner, now=now, until=now + self._lease())
        if not held:
            log.warning("stream_lease_lost", stream_id=spec.id, runner=self.owner)
        return held

    def _open(self, url: str) -> StreamSource:
        if self.service.open_source is None:
            raise InvalidInput("no stream sources are available here", field="source")
        return self.service.open_source(url)

    def _lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)
