"""Studio9 inside another Python program: no HTTP server, the same services and backends.

    async with studio9.embedded.open_studio9(Settings.from_env()) as s9:
        s9.register(JobType(name="demo.square", handler=square, params=SquareParams))
        job = await s9.submit("demo.square", {"x": 7})
        done = await s9.wait(job.id)

``open_studio9`` migrates the database, opens every backend named by the settings, and runs
worker threads, the supervisor and the indexer in this process until the block exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from studio9.auth.domain import Principal
from studio9.bootstrap import Container, build, migrate
from studio9.config.settings import Settings
from studio9.jobs.domain import Job
from studio9.jobs.ports import JobType
from studio9.logs import configure_logging
from studio9.processes import running

__all__ = ["Embedded", "open_studio9"]


@attrs.frozen
class Embedded:
    """The handle an embedding program uses; ``container`` has every service."""

    container: Container
    principal: Principal

    def register(self, job_type: JobType) -> JobType:
        """Add a job type; workers of this process can run it from now on."""
        return self.container.jobs.registry.register(job_type)

    async def submit(self, type_name: str, params: Mapping[str, Any] | None = None, **options: Any) -> Job:
        """Submit a job as this program's service account (see ``JobService.submit``)."""
        return await self.container.jobs.submit(self.principal, type_name, params or {}, **options)

    async def wait(self, job_id: str, *, timeout: float = 60.0) -> Job:
        """The job once it is terminal. Raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            job = await self.container.jobs.get(self.principal, job_id)
            if job.is_terminal:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job.status.value} after {timeout:g}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)


@contextlib.asynccontextmanager
async def open_studio9(
    settings: Settings | None = None,
    *,
    user: str = "local",
    workers: bool = True,
    configure_logs: bool = True,
) -> AsyncIterator[Embedded]:
    """Migrate, open the backends, and (with ``workers``) run jobs in this process.

    ``configure_logs`` sends Studio9's log lines to standard error in the settings' format;
    pass False when the host program configures structlog itself.
    """
    settings = settings or Settings.from_env()
    if configure_logs:
        configure_logging(settings.log_level, settings.log_format)
    await asyncio.to_thread(migrate, settings)
    async with build(settings) as container, running(container, workers=workers, loops=workers):
        yield Embedded(container, await container.auth.local_principal(user))
