"""``JobQueue`` over a Dramatiq actor: sends job ids, never payloads."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import dramatiq
import dramatiq.errors

from studio9.errors import BackendUnavailable


class DramatiqJobQueue:
    """Enqueue through ``actor``. ``blocking`` brokers (RabbitMQ, SQS) are called from a
    thread so that a slow broker never stalls the event loop; the in-process one is not."""

    def __init__(self, actor: dramatiq.Actor[Any, Any], *, blocking: bool) -> None:
        self._actor = actor
        self._blocking = blocking

    async def enqueue(self, job_id: str, *, delay_seconds: float = 0.0) -> None:
        delay = int(delay_seconds * 1000) or None
        try:
            if self._blocking:
                await anyio.to_thread.run_sync(self._send, job_id, delay)
            else:
                self._send(job_id, delay)
        except (dramatiq.errors.DramatiqError, OSError) as exc:
            raise BackendUnavailable(f"broker refused job {job_id}: {type(exc).__name__}") from exc

    def _send(self, job_id: str, delay: int | None) -> None:
        self._actor.send_with_options(args=(job_id,), delay=delay)
