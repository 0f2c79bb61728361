"""The runtime's side of what a job handler sees (``studio9.jobs.ports.JobContext``): a run's context.

Handlers may be plain functions (run in a worker thread) or coroutine functions. Every
method here is safe to call from either; the ``*_sync`` ones are for plain functions.
``report`` is also where a cancelled or timed-out job stops: it raises JobInterrupted.
Besides the handler's methods, a ``RunContext`` holds what the runtime reads back (the latest
progress, the outputs written, whether temporary blobs were) and how it interrupts the handler.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
import structlog

from studio9.errors import InvalidInput
from studio9.jobs.domain import JobInterrupted
from studio9.jobs.ports import JobBlobs, JobInputs

T = TypeVar("T")

OUTPUT_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"


def job_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/"


@attrs.define
class Progress:
    """The latest progress a handler reported; the runtime's heartbeat stores it."""

    fraction: float = 0.0
    eta_seconds: float | None = None
    message: str | None = None


@attrs.define(kw_only=True)
class RunContext:
    """One run's ``JobContext`` (a handler sees only that Protocol), and the runtime's handle on it."""

    job_id: str
    owner_id: str
    attempt: int
    params: Any
    log: Any
    blobs: JobBlobs
    inputs: JobInputs
    scratch: Path
    progress: Progress = attrs.field(factory=Progress)
    outputs: list[str] = attrs.field(factory=list)
    used_temp: bool = False
    _interrupted: threading.Event = attrs.field(factory=threading.Event)
    _reason: str = "cancelled"

    # -- progress and cancellation -----------------------------------------------------------

    def report(self, progress: float, eta: float | None = None, message: str | None = None) -> None:
        """Record progress (0..1), an ETA in seconds and a short message.

        Raises:
            JobInterrupted: the job was cancelled or ran out of time; let it propagate.
        """
        self.progress = Progress(
            fraction=min(1.0, max(0.0, float(progress))),
            eta_seconds=eta,
            message=message[:500] if message else None,
        )
        self.check_interrupted()

    def check_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise JobInterrupted(self._reason)

    @property
    def interrupted(self) -> bool:
        return self._interrupted.is_set()

    def interrupt(self, reason: str) -> None:
        """Called by the runtime: the handler stops at its next ``report``."""
        if not self._interrupted.is_set():
            self._reason = reason
            self._interrupted.set()

    # -- storage -------------------------------------------------------------------------------

    async def put_output(self, name: str, data: bytes | AsyncIterable[bytes]) -> int:
        """Store a named output (kept after the job ends; downloadable)."""
        size = await self.blobs.put(self._output_key(name), _chunks(data))
        if name not in self.outputs:
            self.outputs.append(name)
        return size

    async def put_temp(self, name: str, data: bytes | AsyncIterable[bytes]) -> int:
        """Store a temporary blob, deleted by the resource cleaner once the job is terminal."""
        self.used_temp = True
        return await self.blobs.put(f"{job_prefix(self.job_id)}temp/{_checked(name)}", _chunks(data))

    def input_path(self, file_id: str) -> AbstractAsyncContextManager[Path]:
        """A local path to read one of the owner's uploaded files."""
        return self.inputs.local_path(self.owner_id, file_id)

    @contextlib.asynccontextmanager
    async def input_file(self, file_id: str) -> AsyncIterator[Path]:
        """A local path to one of the owner's uploaded files under the name it was uploaded with
        (a link in the scratch directory), so that its extension and name show where it matters:
        format detection, error messages."""
        name = await self.inputs.file_name(self.owner_id, file_id)
        async with self.input_path(file_id) as path:
            folder = self.scratch / "inputs" / file_id
            await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
            link = folder / name
            await anyio.Path(link).unlink(missing_ok=True)
            await anyio.Path(link).symlink_to(path)
            yield link

    async def in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking work (parsing, numerics) off the event loop; cancellation applies at ``report``."""
        return await anyio.to_thread.run_sync(function, *args, abandon_on_cancel=True)

    def put_output_sync(self, name: str, data: bytes) -> int:
        """``put_output`` for plain-function handlers (which run in a worker thread)."""
        return anyio.from_thread.run(self.put_output, name, data)

    def _output_key(self, name: str) -> str:
        return f"{job_prefix(self.job_id)}outputs/{_checked(name)}"


def output_key(job_id: str, name: str) -> str:
    return f"{job_prefix(job_id)}outputs/{_checked(name)}"


def _checked(name: str) -> str:
    if not re.fullmatch(OUTPUT_NAME, name):
        raise InvalidInput(f"output name {name!r} must match {OUTPUT_NAME}", field="name")
    return name


async def _chunks(data: bytes | AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        yield data
        return
    async for chunk in data:
        yield chunk


def bound_logger(job_id: str, job_type: str, attempt: int) -> Any:
    return structlog.get_logger("studio9.jobs.handler").bind(
        job_id=job_id, job_type=job_type, attempt=attempt
    )
