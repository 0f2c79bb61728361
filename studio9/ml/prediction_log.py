"""Scored online rows on their way to the prediction sink: later, in batches, never in the way.

``add`` appends to an in-memory buffer and returns at once; a background task
(``run``, started by the process that serves HTTP) writes what is buffered every
``interval`` seconds, or sooner once ``batch_rows`` rows wait, as one prediction set per model
version (``PredictionRecorder.record``). The buffer is bounded (``max_rows``): when the sink
cannot keep up, the oldest rows are dropped and counted in the log, because an answer to a
caller matters more than its copy for drift analysis. What is buffered at shutdown is written
by ``flush``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import msgspec
import structlog

from studio9.ids import new_id
from studio9.ml.content import ModelContent
from studio9.predictions.domain import ScoredRow
from studio9.predictions.ports import PredictionRecorder

log = structlog.get_logger()

BATCH_ROWS: Final = 1_000
MAX_ROWS: Final = 100_000


@attrs.define
class PredictionLog:
    recorder: PredictionRecorder | None
    interval: float = 1.0
    batch_rows: int = BATCH_ROWS
    max_rows: int = MAX_ROWS
    _pending: collections.deque[tuple[str, str, int, ScoredRow]] = attrs.field(
        factory=collections.deque, init=False
    )
    _wake: asyncio.Event = attrs.field(factory=asyncio.Event, init=False)
    dropped: int = attrs.field(default=0, init=False)

    def add(
        self,
        owner_id: str,
        model_id: str,
        version: int,
        content: ModelContent,
        answers: Sequence[Mapping[str, Any]],
    ) -> None:
        if self.recorder is None:
            return
        for answer in answers:
            self._pending.append((owner_id, model_id, version, scored_row(answer)))
        while len(self._pending) > self.max_rows:
            self._pending.popleft()
            self.dropped += 1
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    async def run(self) -> None:
        """Write what is buffered, every ``interval`` seconds, until cancelled (then once more)."""
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
                await self.flush()
        finally:
            await asyncio.shield(self.flush())

    async def flush(self) -> int:
        """Write every buffered row now; returns how many were written."""
        if self.recorder is None or not self._pending:
            return 0
        taken = list(self._pending)
        self._pending.clear()
        groups: dict[tuple[str, str, int], list[ScoredRow]] = collections.defaultdict(list)
        for owner_id, model_id, version, row in taken:
            groups[(owner_id, model_id, version)].append(row)
        written = 0
        for (owner_id, model_id, version), rows in groups.items():
            try:
                result = await self.recorder.record(
                    rows,
                    owner_id=owner_id,
                    model_id=model_id,
                    model_version=str(version),
                    set_key=f"online:{new_id()}",
                )
                written += result.rows
            except Exception:
                log.warning("online_predictions_not_logged", model_id=model_id, rows=len(rows), exc_info=True)
        if self.dropped:
            log.warning("online_predictions_dropped", rows=self.dropped)
            self.dropped = 0
        return written


def scored_row(answer: Mapping[str, Any]) -> ScoredRow:
    """An online answer (``{label, probabilities}`` or ``{value}``) as a row of the sink."""
    if "value" in answer:
        return ScoredRow(item_key="online", label=msgspec.json.encode(answer["value"]).decode())
    probabilities = answer.get("probabilities") or {}
    label = str(answer.get("label"))
    return ScoredRow(
        item_key="online",
        label=label,
        confidence=probabilities.get(label),
        probabilities=probabilities,
    )
