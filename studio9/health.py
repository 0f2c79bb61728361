"""Backend health: ping every backend at once, each under the same deadline."""

from __future__ import annotations

import time
from collections.abc import Mapping

import anyio
import attrs

from studio9.backends import Backend
from studio9.errors import BackendUnavailable
from studio9.urls import redact


@attrs.frozen(kw_only=True)
class BackendHealth:
    name: str
    up: bool
    latency_ms: float
    error: str | None = None


async def check_backends(backends: Mapping[str, Backend], *, timeout: float) -> list[BackendHealth]:
    """One result per backend, in the order given; never raises for a backend that is down."""
    results: dict[str, BackendHealth] = {}

    async def check(name: str, backend: Backend) -> None:
        started = time.perf_counter()
        error: str | None = None
        try:
            with anyio.fail_after(timeout):
                await backend.ping()
        except TimeoutError:
            error = f"no answer within {timeout:g}s"
        except BackendUnavailable as exc:
            error = redact(exc.message)
        results[name] = BackendHealth(
            name=name,
            up=error is None,
            error=error,
            latency_ms=round((time.perf_counter() - started) * 1000, 2),
        )

    async with anyio.create_task_group() as group:
        for name, backend in backends.items():
            group.start_soon(check, name, backend)
    return [results[name] for name in backends]
