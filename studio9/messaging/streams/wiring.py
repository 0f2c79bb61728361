"""Streams wired from settings: the service and this process's runner (called by the composition root)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from studio9.auth.domain import UserNotFound
from studio9.auth.ports import UserStore
from studio9.config.settings import Settings
from studio9.messaging.streams.ports import JobSubmitter, StreamSource
from studio9.messaging.streams.runner import StreamRunner
from studio9.messaging.streams.service import StreamService


def build_streams(
    settings: Settings,
    database: Any,
    jobs: JobSubmitter,
    *,
    open_source: Callable[..., StreamSource],
) -> tuple[StreamService, StreamRunner]:
    """Settings in the database's config store, runtime in its stream tables, jobs through ``jobs``
    (the job service: its registry names the known job types); ``open_source(url, timeout=…)``.

    The runner reuses the job core's timings: a stream's lease lasts ``STUDIO9_LEASE_TIMEOUT``,
    idle streams cycle every ``STUDIO9_HEARTBEAT_INTERVAL`` (at most 1 s) and unserved streams
    are looked for every ``STUDIO9_SWEEP_INTERVAL``.
    """
    service = StreamService(
        database.config_settings,
        database.stream_states,
        database.stream_backlog,
        jobs,
        open_source=functools.partial(open_source, timeout=settings.backend_timeout),
        known_job_type=lambda name: any(t.name == name for t in jobs.registry),
        owner_exists=functools.partial(_user_exists, database.users),
    )
    runner = StreamRunner(
        service,
        lease_seconds=settings.lease_timeout,
        tick=min(1.0, settings.heartbeat_interval),
        discover_every=settings.sweep_interval,
    )
    service.on_change = runner.wake
    return service, runner


async def _user_exists(users: UserStore, user_id: str) -> bool:
    """Whether the user exists (a stream whose owner was deleted must not submit jobs)."""
    try:
        await users.get(user_id)
    except UserNotFound:
        return False
    return True
