"""HTTP routes of message streams: ``/api/v1/streams``, owner-scoped (admins see all)."""

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, get, patch, post
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from studio9.auth.domain import Principal
from studio9.messaging.streams.domain import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_WAIT,
    HTTP_SOURCE,
    MAX_BATCH_SIZE,
    MAX_WAIT,
    STREAM_ID,
    StreamMode,
)
from studio9.messaging.streams.service import BatchView, StreamService, StreamView
from studio9.urls import redact, redact_values
from studio9.web.paging import keyset_page
from studio9.web.responses import problems

BatchSize = Annotated[int, msgspec.Meta(ge=1, le=MAX_BATCH_SIZE)]
MaxWait = Annotated[float, msgspec.Meta(ge=0, le=MAX_WAIT)]
Name = Annotated[str, msgspec.Meta(max_length=200)]
JobType = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Source = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
ParamName = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class StreamIn(msgspec.Struct, forbid_unknown_fields=True):
    job_type: JobType
    source: Source = HTTP_SOURCE
    name: Name = ""
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    batch_size: BatchSize = DEFAULT_BATCH_SIZE
    max_wait: MaxWait = DEFAULT_MAX_WAIT
    mode: StreamMode = StreamMode.BATCH
    item_param: ParamName = "items"


class StreamPatch(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Only the fields given change."""

    job_type: JobType | msgspec.UnsetType = msgspec.UNSET
    source: Source | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    params: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    batch_size: BatchSize | msgspec.UnsetType = msgspec.UNSET
    max_wait: MaxWait | msgspec.UnsetType = msgspec.UNSET
    mode: StreamMode | msgspec.UnsetType = msgspec.UNSET
    item_param: ParamName | msgspec.UnsetType = msgspec.UNSET


class CountersOut(msgspec.Struct):
    received: int
    duplicates: int
    batched: int
    pending: int
    jobs_submitted: int
    failed: int


class StreamOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str
    source: str
    job_type: str
    params: dict[str, Any]
    batch_size: int
    max_wait: float
    mode: str
    item_param: str
    paused: bool
    counters: CountersOut
    #: The runner serving the stream (host/pid/…), and until when its lease lasts.
    runner: str | None
    runner_lease_until: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, view: StreamView) -> "StreamOut":
        spec, state = view.spec, view.state
        return cls(
            id=spec.id,
            name=spec.name,
            owner_id=spec.owner_id,
            source=redact(spec.source),
            job_type=spec.job_type,
            params=redact_values(dict(spec.params)),
            batch_size=spec.batch_size,
            max_wait=spec.max_wait,
            mode=spec.mode.value,
            item_param=spec.item_param,
            paused=state.paused,
            counters=CountersOut(
                received=state.received,
                duplicates=state.duplicates,
                batched=state.batched,
                pending=state.pending,
                jobs_submitted=state.jobs_submitted,
                failed=state.failed,
            ),
            runner=state.lease_owner,
            runner_lease_until=state.lease_expires_at,
            created_at=spec.created_at,
            updated_at=state.updated_at,
        )


class StreamPageOut(msgspec.Struct):
    items: list[StreamOut]
    next_cursor: str | None


class PushOut(msgspec.Struct):
    accepted: int
    duplicates: int


class BatchOut(msgspec.Struct):
    batch_id: str
    job_id: str
    status: str
    items: int
    created_at: datetime
    submitted_at: datetime | None
    error: str | None

    @classmethod
    def from_domain(cls, view: BatchView) -> "BatchOut":
        batch = view.batch
        return cls(
            batch_id=batch.id,
            job_id=batch.job_id,
            # Once submitted, the job's status: queued, running, completed, failed, cancelled.
            status=view.job_status or batch.status.value,
            items=batch.item_count,
            created_at=batch.created_at,
            submitted_at=batch.submitted_at,
            error=batch.error,
        )


class BatchPageOut(msgspec.Struct):
    items: list[BatchOut]
    next_cursor: str | None


class StreamController(Controller):
    path = "/streams"
    tags = ["streams"]

    @post("/", operation_id="CreateStream", status_code=201, responses=problems(409))
    async def create(
        self,
        data: JSONBody[StreamIn],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> StreamOut:
        """Create a stream owned by the caller: items from ``source`` become ``job_type`` jobs."""
        view = await stream_service.create(principal, msgspec.structs.asdict(data))
        return StreamOut.from_domain(view)

    @get("/", operation_id="ListStreams")
    async def list_streams(
        self,
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> StreamPageOut:
        """The caller's streams (an admin's: every one), oldest first."""
        page, next_cursor = await keyset_page(
            lambda size, after: stream_service.list(principal, limit=size, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda view: view.spec.id,
            pattern=STREAM_ID.pattern,
        )
        return StreamPageOut([StreamOut.from_domain(v) for v in page], next_cursor=next_cursor)

    @get("/{stream_id:str}", operation_id="GetStream")
    async def get_stream(
        self,
        stream_id: FromPath[str],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> StreamOut:
        """One stream, with its counters and the runner serving it."""
        return StreamOut.from_domain(await stream_service.get(principal, stream_id))

    @patch("/{stream_id:str}", operation_id="UpdateStream", responses=problems(412))
    async def update(
        self,
        stream_id: FromPath[str],
        data: JSONBody[StreamPatch],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> StreamOut:
        """Change some settings; the runner uses them from its next cycle."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        return StreamOut.from_domain(await stream_service.update(principal, stream_id, changes))

    @delete_route("/{stream_id:str}", operation_id="DeleteStream", status_code=204)
    async def delete_stream(
        self,
        stream_id: FromPath[str],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> None:
        """Delete the stream with its pending items and batch records (its jobs stay)."""
        await stream_service.delete(principal, stream_id)

    @post("/{stream_id:str}/pause", operation_id="PauseStream", status_code=200)
    async def pause(
        self,
        stream_id: FromPath[str],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> StreamOut:
        """Stop making jobs (and reading the queue); pushed items are still kept."""
        return StreamOut.from_domain(await stream_service.set_paused(principal, stream_id, True))

    @post("/{stream_id:str}/resume", operation_id="ResumeStream", status_code=200)
    async def resume(
        self,
        stream_id: FromPath[str],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> StreamOut:
        """Make jobs again."""
        return StreamOut.from_domain(await stream_service.set_paused(principal, stream_id, False))

    @post("/{stream_id:str}/items", operation_id="PushStreamItems", status_code=202, responses=problems(409))
    async def push(
        self,
        stream_id: FromPath[str],
        data: JSONBody[list[Any]],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
    ) -> PushOut:
        """Add items (a JSON list of objects; ``key`` de-duplicates, else a hash of the item)."""
        added = await stream_service.push(principal, stream_id, data)
        return PushOut(accepted=added.accepted, duplicates=added.duplicates)

    @get("/{stream_id:str}/jobs", operation_id="ListStreamJobs")
    async def jobs(
        self,
        stream_id: FromPath[str],
        principal: NamedDependency[Principal],
        stream_service: NamedDependency[StreamService],
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> BatchPageOut:
        """The stream's batches and the job each became, newest first."""
        page, next_cursor = await keyset_page(
            lambda size, before: stream_service.batches(principal, stream_id, limit=size, before=before),
            limit=limit,
            cursor=cursor,
            key=lambda view: view.batch.id,
        )
        return BatchPageOut([BatchOut.from_domain(b) for b in page], next_cursor=next_cursor)
