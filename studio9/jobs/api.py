"""HTTP routes of the job core (the original CORTEX job API), owner-scoped."""

import mimetypes
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter, SkipValidation
from litestar.response import Redirect, Stream

from studio9.auth.domain import Principal
from studio9.errors import NotFound
from studio9.files.ports import BlobStore, Presigner
from studio9.jobs.context import output_key
from studio9.jobs.domain import Heartbeat, Job, JobEvent, JobStatus
from studio9.jobs.ports import JobQuery, JobSearch
from studio9.jobs.service import JobService
from studio9.urls import redact_values
from studio9.web.paging import keyset_page
from studio9.web.responses import REDIRECT, also, problems


class SubmitIn(msgspec.Struct, forbid_unknown_fields=True):
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    params: dict[str, Any] = msgspec.field(default_factory=dict)
    priority: int = 0
    max_attempts: int | None = None


class ErrorOut(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any]


class JobOut(msgspec.Struct):
    id: str
    type: str
    owner_id: str
    status: str
    params: dict[str, Any]
    priority: int
    cancel_requested: bool
    attempt: int
    max_attempts: int
    submitted_at: datetime
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    progress: float
    eta_seconds: float | None
    message: str | None
    last_heartbeat_at: datetime | None
    result: dict[str, Any] | None
    outputs: list[str]
    error: ErrorOut | None

    @classmethod
    def from_domain(cls, job: Job) -> "JobOut":
        return cls(
            id=job.id,
            type=job.type,
            owner_id=job.owner_id,
            status=job.status.value,
            params=redact_values(dict(job.params)),
            priority=job.priority,
            cancel_requested=job.cancel_requested,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            submitted_at=job.submitted_at,
            queued_at=job.queued_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            progress=job.progress,
            eta_seconds=job.eta_seconds,
            message=job.message,
            last_heartbeat_at=job.last_heartbeat_at,
            result=redact_values(dict(job.result)) if job.result is not None else None,
            outputs=list(job.outputs),
            error=_error(job),
        )


class JobStatusOut(msgspec.Struct):
    id: str
    status: str
    progress: float
    eta_seconds: float | None
    message: str | None
    last_heartbeat_at: datetime | None
    cancel_requested: bool
    attempt: int
    error: ErrorOut | None


class JobPageOut(msgspec.Struct):
    items: list[JobOut]
    next_cursor: str | None


class EventOut(msgspec.Struct):
    at: datetime
    from_status: str | None
    to_status: str
    reason: str
    actor: str
    details: dict[str, Any]

    @classmethod
    def from_domain(cls, event: JobEvent) -> "EventOut":
        return cls(
            at=event.at,
            from_status=event.from_status.value if event.from_status else None,
            to_status=event.to_status.value,
            reason=event.reason,
            actor=event.actor,
            details=dict(event.details),
        )


class EventListOut(msgspec.Struct):
    items: list[EventOut]


class HeartbeatOut(msgspec.Struct):
    at: datetime
    attempt: int
    progress: float
    eta_seconds: float | None
    message: str | None

    @classmethod
    def from_domain(cls, beat: Heartbeat) -> "HeartbeatOut":
        return cls(
            at=beat.at,
            attempt=beat.attempt,
            progress=beat.progress,
            eta_seconds=beat.eta_seconds,
            message=beat.message,
        )


class HeartbeatListOut(msgspec.Struct):
    items: list[HeartbeatOut]


class OutputOut(msgspec.Struct):
    name: str
    size: int


class OutputListOut(msgspec.Struct):
    items: list[OutputOut]


class JobTypeOut(msgspec.Struct):
    name: str
    description: str
    timeout_seconds: float
    max_attempts: int
    params_schema: dict[str, Any]


class JobTypeListOut(msgspec.Struct):
    items: list[JobTypeOut]


def _error(job: Job) -> ErrorOut | None:
    if job.error is None:
        return None
    return ErrorOut(code=job.error.code, message=job.error.message, details=dict(job.error.details))


class JobController(Controller):
    path = "/jobs"
    tags = ["jobs"]

    @post("/", operation_id="CreateJob", status_code=201)
    async def submit(
        self,
        data: JSONBody[SubmitIn],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
    ) -> JobOut:
        """Submit a job: validated against its type's params schema, stored, then dispatched."""
        job = await job_service.submit(
            principal, data.type, data.params, priority=data.priority, max_attempts=data.max_attempts
        )
        return JobOut.from_domain(job)

    @get("/", operation_id="ListJobs")
    async def list_jobs(
        self,
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
        job_search: NamedDependency[SkipValidation[JobSearch]],
        type: FromQuery[str | None] = None,
        status: FromQuery[JobStatus | None] = None,
        owner: FromQuery[str | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=500)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=500)] = 50,
        cursor: FromQuery[str | None] = None,
    ) -> JobPageOut:
        """Jobs, newest first; ``q`` searches text (type, params, messages, errors, results)."""
        query = JobQuery(owner_id=owner, type=type, status=status, limit=limit, before=cursor)
        if q:
            jobs, next_cursor = await job_search.search(principal, q, query, cursor=cursor)
            return JobPageOut([JobOut.from_domain(j) for j in jobs], next_cursor=next_cursor)
        # Without ``q`` the cursor is an id: a search's cursor belongs with its ``q``.
        page, next_cursor = await keyset_page(
            lambda size, before: job_service.list(
                principal, JobQuery(owner_id=owner, type=type, status=status, limit=size, before=before)
            ),
            limit=limit,
            cursor=cursor,
            key=lambda job: job.id,
        )
        return JobPageOut([JobOut.from_domain(j) for j in page], next_cursor=next_cursor)

    @get("/{job_id:str}", operation_id="GetJob")
    async def get_job(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
    ) -> JobOut:
        """One job."""
        return JobOut.from_domain(await job_service.get(principal, job_id))

    @get("/{job_id:str}/status", operation_id="GetJobStatus")
    async def status(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
    ) -> JobStatusOut:
        """Status, progress, ETA, last heartbeat and error of one job."""
        job = await job_service.get(principal, job_id)
        return JobStatusOut(
            id=job.id,
            status=job.status.value,
            progress=job.progress,
            eta_seconds=job.eta_seconds,
            message=job.message,
            last_heartbeat_at=job.last_heartbeat_at,
            cancel_requested=job.cancel_requested,
            attempt=job.attempt,
            error=_error(job),
        )

    @delete(
        "/{job_id:str}",
        operation_id="CancelJob",
        status_code=200,
        responses=problems(409) | also(202, JobOut, "Running: asked to stop at its next heartbeat."),
    )
    async def cancel(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
    ) -> Response[JobOut]:
        """Cancel: 200 once cancelled, 202 while a running job is being stopped, 409 if already finished."""
        job = await job_service.cancel(principal, job_id)
        return Response(JobOut.from_domain(job), status_code=200 if job.is_terminal else 202)

    @get("/{job_id:str}/events", operation_id="ListJobEvents")
    async def events(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
    ) -> EventListOut:
        """Every state change and notable fact, oldest first."""
        return EventListOut([EventOut.from_domain(e) for e in await job_service.events(principal, job_id)])

    @get("/{job_id:str}/heartbeats", operation_id="ListJobHeartbeats")
    async def heartbeats(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> HeartbeatListOut:
        """Heartbeats, newest first."""
        beats = await job_service.heartbeats(principal, job_id, limit=limit)
        return HeartbeatListOut([HeartbeatOut.from_domain(b) for b in beats])

    @get("/{job_id:str}/outputs", operation_id="ListJobOutputs")
    async def outputs(
        self,
        job_id: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
        blob_store: NamedDependency[SkipValidation[BlobStore]],
    ) -> OutputListOut:
        """The job's named outputs (kept after the job ends)."""
        job = await job_service.get(principal, job_id)
        return OutputListOut(
            [
                OutputOut(name=name, size=await blob_store.size(output_key(job.id, name)))
                for name in job.outputs
            ]
        )

    @get(
        "/{job_id:str}/outputs/{name:str}",
        operation_id="DownloadJobOutput",
        responses=also(307, None, REDIRECT),
    )
    async def download_output(
        self,
        job_id: FromPath[str],
        name: FromPath[str],
        principal: NamedDependency[Principal],
        job_service: NamedDependency[JobService],
        blob_store: NamedDependency[SkipValidation[BlobStore]],
        presigner: NamedDependency[SkipValidation[Presigner | None]],
    ) -> Stream | Redirect:
        """Download one output: streamed, or a 307 redirect where the blob store can presign (S3)."""
        job = await job_service.get(principal, job_id)
        if name not in job.outputs:
            raise NotFound(f"job {job_id!r} has no output {name!r}")
        key = output_key(job.id, name)
        size = await blob_store.size(key)
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if presigner is not None:
            url = await presigner.presigned_url(key, filename=name, content_type=media_type)
            return Redirect(url, status_code=307, headers={"cache-control": "no-store"})
        return Stream(
            await blob_store.open(key),
            media_type=media_type,
            headers={"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{name}"'},
        )


@get("/job-types", operation_id="ListJobTypes", tags=["jobs"])
async def list_job_types(job_service: NamedDependency[JobService]) -> JobTypeListOut:
    """Every job type: name, description, limits and params JSON schema (with defaults)."""
    return JobTypeListOut(
        [
            JobTypeOut(
                name=t.name,
                description=t.description,
                timeout_seconds=t.timeout,
                max_attempts=t.max_attempts,
                params_schema=t.schema(),
            )
            for t in job_service.registry
        ]
    )
