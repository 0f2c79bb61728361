"""Service-level routes: liveness (public), identity (public) and status (authenticated)."""

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency

from studio9 import __version__
from studio9.auth import Principal
from studio9.errors import BackendUnavailable
from studio9.health import check_backends
from studio9.jobs.domain import JobStatus
from studio9.jobs.ports import JobQuery
from studio9.urls import AdapterURL
from studio9.web.responses import also


class BackendOut(msgspec.Struct, omit_defaults=True):
    status: str
    latency_ms: float
    error: str | None = None
    url: str | None = None


class HealthOut(msgspec.Struct):
    status: str
    backends: dict[str, BackendOut]


class AboutOut(msgspec.Struct):
    name: str
    version: str
    build: str
    api: str


class WorkerOut(msgspec.Struct):
    id: str
    host: str
    pid: int
    threads: int
    running: int
    started_at: datetime
    seen_at: datetime


class StatusOut(msgspec.Struct):
    version: str
    build: str
    uptime_seconds: float
    backends: dict[str, BackendOut]
    jobs: dict[str, int]
    queues: dict[str, int]
    workers: list[WorkerOut]


def _container(request: Request[Any, Any, Any]) -> Any:
    return request.app.state.container


@get(
    "/health",
    operation_id="GetHealth",
    tags=["system"],
    responses=also(503, HealthOut, "A backend does not answer: `backends` says which."),
)
async def health(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    """200 when every backend answers, 503 when one does not. No token needed."""
    container = _container(request)
    checks = await check_backends(container.backends, timeout=container.settings.backend_timeout)
    healthy = all(c.up for c in checks)
    body = HealthOut(
        status="ok" if healthy else "degraded",
        # Public route: say which backend is down, not where it lives or why.
        backends={
            c.name: BackendOut(status="up" if c.up else "down", latency_ms=c.latency_ms) for c in checks
        },
    )
    return Response(body, status_code=200 if healthy else 503)


@get("/about", operation_id="GetAbout", tags=["system"])
async def about(request: Request[Any, Any, Any]) -> AboutOut:
    """Name, version and build of this server. No token needed."""
    return AboutOut(name="studio9", version=__version__, build=_container(request).settings.build, api="v1")


@get("/status", operation_id="GetStatus", tags=["system"])
async def status(request: Request[Any, Any, Any], principal: NamedDependency[Principal]) -> StatusOut:
    """Uptime; each backend's state, (password-redacted) URL and error; jobs per status; live workers."""
    container = _container(request)
    checks = await check_backends(container.backends, timeout=container.settings.backend_timeout)
    urls = container.settings.public()
    counts = await container.jobs.store.counts()
    seen_after = datetime.now(UTC) - timedelta(seconds=container.settings.lease_timeout)
    workers = await container.workers.live(seen_after=seen_after)
    running = Counter(
        job.lease_owner
        for job in await container.jobs.store.list(JobQuery(status=JobStatus.RUNNING, limit=_RUNNING_SHOWN))
    )
    try:
        queues = await container.broker.queue_depths()
    except BackendUnavailable:
        queues = {}
    return StatusOut(
        version=__version__,
        build=container.settings.build,
        uptime_seconds=round(time.monotonic() - container.started_at, 3),
        backends={
            c.name: BackendOut(
                status="up" if c.up else "down",
                latency_ms=c.latency_ms,
                error=c.error,
                url=str(AdapterURL.parse(urls[_URL_FIELD[c.name]])),
            )
            for c in checks
        },
        jobs={status.value: count for status, count in counts.items()},
        queues=queues,
        workers=[
            WorkerOut(
                id=w.id,
                host=w.host,
                pid=w.pid,
                threads=w.threads,
                running=running[w.id],
                started_at=w.started_at,
                seen_at=w.seen_at,
            )
            for w in workers
        ],
    )


# /status counts the running jobs of each worker from at most this many running jobs.
_RUNNING_SHOWN = 5000

_URL_FIELD = {
    "database": "database_url",
    "broker": "broker_url",
    "index": "index_url",
    "blobs": "blob_url",
    "sink": "sink_url",
    "events": "events_url",
}
