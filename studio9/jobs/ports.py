"""What the job core needs from storage, the broker and search, and what a job handler gets.

Adapters: ``adapters/job_store/`` (``memory.py``, ``sqlite.py``, ``postgresql.py``, ``sql.py``),
``adapters/worker_registry/``; the queue is the broker's (``adapters/job_broker/``);
job search is the metadata context's (``studio9.metadata.job_search``).
Contract: ``tests/contract/test_job_store.py``, ``tests/contract/test_worker_registry.py``.

Job types are the other way round: a context hands the job core a ``JobType`` (a name, a
handler, a params schema and the limits the runtime enforces), and the runtime gives the
handler a ``JobContext`` (``studio9.jobs.context.RunContext``). A handler is a plain function
(run in a worker thread) or a coroutine function (run on the event loop); it receives the
context and its decoded params, and returns a JSON-able summary (or None). Params are validated
against the type's msgspec schema at submit time, so a job never reaches a worker with params
it cannot use.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import msgspec

from studio9.auth.domain import Principal
from studio9.errors import InvalidInput
from studio9.jobs.domain import Claim, Heartbeat, Job, JobEvent, JobStatus, RetryableError

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class JobQuery:
    """A page of jobs, newest first. ``owner_id`` None means every owner (admins)."""

    owner_id: str | None = None
    type: str | None = None
    status: JobStatus | None = None
    ids: Sequence[str] | None = None
    limit: int = 50
    #: Only jobs older than this id (the previous page's last id).
    before: str | None = None


@attrs.frozen(kw_only=True)
class DueCriteria:
    """Which jobs a supervisor sweep looks at; cut-offs are computed by the service's policy."""

    now: datetime
    #: Queued jobs last dispatched before this (or never) are re-sent or timed out.
    redeliver_before: datetime
    #: Running jobs whose cancel was requested before this are cancelled regardless.
    cancel_before: datetime
    limit: int = 200


class JobStore(Protocol):
    """Jobs, changed by compare-and-set on their ``version``; each change's events go with it."""

    async def add(self, job: Job, events: Sequence[JobEvent]) -> None:
        """Store a new job, its first events and an outbox entry in one transaction.
        Raises JobExists, writing nothing, when a job of that id is stored already."""

    async def get(self, job_id: str) -> Job:
        """Raises JobNotFound."""

    async def save(
        self,
        job: Job,
        *,
        expected_version: int,
        events: Sequence[JobEvent] = (),
        heartbeat: Heartbeat | None = None,
    ) -> Job | None:
        """Write ``job`` if the stored version is still ``expected_version``.

        The stored job gets ``version = expected_version + 1``; ``events``, ``heartbeat`` and an
        outbox entry are written in the same transaction. Returns the stored job, or None when
        another writer got there first (nothing is written then).
        """

    async def claim(self, job_id: str, claim: Claim) -> Job | None:
        """Apply ``claim`` to the job in one write, without reading it first.

        The stored job is ``claim.apply(job)`` with ``version + 1``; the event and an outbox
        entry go in the same transaction. Returns it, or None when the claim does not apply or
        there is no such job (nothing is written then; the caller reads the job to see why).
        """

    async def list(self, query: JobQuery) -> Sequence[Job]:
        """Jobs matching ``query``, ordered by id, newest first."""

    async def due(self, criteria: DueCriteria) -> Sequence[Job]:
        """Jobs a supervisor sweep must look at: queued and not dispatched since the cut-off
        (and not held back by ``not_before``); running with an expired lease, a passed deadline or
        an overdue cancel; terminal and not cleaned yet. Oldest first."""

    async def counts(self) -> Mapping[JobStatus, int]:
        """How many jobs are in each status."""


class JobHistory(Protocol):
    """Read side of a job's event and heartbeat rows."""

    async def events(self, job_id: str) -> Sequence[JobEvent]:
        """Oldest first."""

    async def heartbeats(self, job_id: str, *, limit: int = 100) -> Sequence[Heartbeat]:
        """Newest first."""

    async def heartbeats_for(
        self, job_ids: Sequence[str], *, limit_each: int
    ) -> Mapping[str, Sequence[Heartbeat]]:
        """The newest ``limit_each`` heartbeats of each job, newest first; jobs without any are left out."""


class JobQueue(Protocol):
    """Delivers job ids to workers. Delivery is at-least-once and may be lossy (memory://):
    the supervisor re-sends what SQL says is still queued."""

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        """Send one job id; raises BackendUnavailable when the broker refuses."""


@attrs.frozen(kw_only=True)
class WorkerInfo:
    """A process that runs jobs, as it last announced itself."""

    id: str
    host: str
    pid: int
    threads: int
    started_at: datetime
    seen_at: datetime


class WorkerRegistry(Protocol):
    """Which worker processes are alive (they announce themselves every heartbeat)."""

    async def announce(self, worker: WorkerInfo) -> None:
        """Insert or refresh the worker's row."""

    async def live(self, *, seen_after: datetime) -> Sequence[WorkerInfo]:
        """Workers seen after ``seen_after``, by host then id."""

    async def forget(self, worker_id: str) -> None:
        """Remove the worker (graceful stop). Idempotent."""


class JobBlobs(Protocol):
    """The slice of the blob store the job runtime uses (satisfied by ``studio9.files.ports.BlobStore``)."""

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store a blob atomically; returns its size."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob under ``prefix``; returns how many. Idempotent."""


class JobInputs(Protocol):
    """Uploaded files as local paths, for handlers (satisfied by the files context)."""

    def local_path(self, owner_id: str | None, file_id: str) -> AbstractAsyncContextManager[Path]:
        """A readable local path of the owner's file. Raises NotFound for another owner's file."""

    async def file_name(self, owner_id: str | None, file_id: str) -> str:
        """The name the file was uploaded with (its extension tells its format). Raises NotFound."""


class JobSearch(Protocol):
    """Full-text search over jobs, scoped to what the caller may see (``GET /jobs?q=``)."""

    async def search(
        self, actor: Principal, text: str, query: JobQuery, *, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of the jobs whose text matches, by relevance, and the next page's cursor.
        Raises InvalidInput for a malformed cursor or query."""


class JobContext(Protocol):
    """What a job handler sees: its params, progress reporting, cancellation, storage, a logger.

    Handlers may be plain functions (run in a worker thread) or coroutine functions. Every
    method is safe to call from either; the ``*_sync`` ones are for plain functions.
    ``report`` is also where a cancelled or timed-out job stops: it raises JobInterrupted.
    """

    @property
    def job_id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def params(self) -> Any: ...
    @property
    def log(self) -> Any:
        """A structlog logger bound to the job's id, type and attempt."""

    @property
    def scratch(self) -> Path:
        """A local directory of the run's own (not created; deleted when the run ends)."""

    def report(self, progress: float, eta: float | None = None, message: str | None = None) -> None:
        """Record progress (0..1), an ETA in seconds and a short message.
        Raises JobInterrupted when the job was cancelled or ran out of time; let it propagate."""

    def check_interrupted(self) -> None:
        """Raise JobInterrupted when the job was cancelled or ran out of time."""

    async def put_output(self, name: str, data: bytes | AsyncIterable[bytes]) -> int:
        """Store a named output (kept after the job ends; downloadable); returns its size."""

    def put_output_sync(self, name: str, data: bytes) -> int:
        """``put_output`` for plain-function handlers (which run in a worker thread)."""

    async def put_temp(self, name: str, data: bytes | AsyncIterable[bytes]) -> int:
        """Store a temporary blob, deleted once the job is terminal; returns its size."""

    def input_path(self, file_id: str) -> AbstractAsyncContextManager[Path]:
        """A local path to read one of the owner's uploaded files."""

    def input_file(self, file_id: str) -> AbstractAsyncContextManager[Path]:
        """A local path to one of the owner's uploaded files, under the name it was uploaded with."""

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking work (parsing, numerics) off the event loop; cancellation applies at ``report``."""


Handler = Callable[[JobContext, Any], Any]


@attrs.frozen(kw_only=True)
class JobType:
    """A kind of job, as a context registers it with the job core (``JobTypeRegistry.register``)."""

    name: str
    handler: Handler
    params: type[msgspec.Struct]
    description: str = ""
    timeout: float = 3600.0
    max_attempts: int = 1
    #: Exceptions that make an attempt worth retrying (RetryableError always is).
    retry_on: tuple[type[BaseException], ...] = ()
    #: Whether an attempt whose worker died may simply run again. Set False for a handler with
    #: effects outside Studio9 that a second run would repeat (a payment, an e-mail): such a job
    #: fails ``lost`` instead, and someone decides.
    safe_to_rerun: bool = True

    def decode(self, params: Mapping[str, Any]) -> Any:
        """``params`` as the type's struct. Raises InvalidInput naming the field."""
        try:
            return msgspec.convert(dict(params), type=self.params, strict=False)
        except msgspec.ValidationError as exc:
            raise InvalidInput(f"invalid params for {self.name}: {exc}", field=_field_of(exc)) from None

    def is_retryable(self, error: BaseException) -> bool:
        return isinstance(error, (RetryableError, *self.retry_on))

    def schema(self) -> dict[str, Any]:
        """The params JSON schema, with defaults, for ``GET /job-types``."""
        schema: dict[str, Any] = msgspec.json.schema(self.params)
        return schema


_PATH = re.compile(r"at `\$\.?([^`]*)`")
_NAMED = re.compile(r"(?:missing required|contains unknown) field `([^`]+)`")


def _field_of(exc: msgspec.ValidationError) -> str:
    """``params.<path>`` of the offending field, from msgspec's message."""
    text = str(exc)
    path, named = _PATH.search(text), _NAMED.search(text)
    parts = [p for p in (path.group(1) if path else "", named.group(1) if named else "") if p]
    return ".".join(["params", *parts])
