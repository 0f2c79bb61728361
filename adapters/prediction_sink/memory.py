"""Predictions in a dict: the in-process sink for tests, demos and the embedded box.

URL:      memory://
Features: staged loads swapped in atomically · nothing kept across restarts · single process
Extra:    none

A load stages every batch in a list (memory grows with the import: this sink holds everything
anyway) and swaps it in without yielding to the event loop, so no reader ever sees a half
import and a failed load changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any, Self

import msgspec

from studio9.backends import AdapterOptions
from studio9.predictions.domain import (
    DailyCount,
    ImportMeta,
    LoadResult,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    check_page,
)
from studio9.urls import AdapterURL

_OBJECT = msgspec.json.Decoder(dict[str, Any])


class MemoryPredictionSink:
    """``PredictionSink`` over dicts (see ``studio9.predictions.ports`` for the contract)."""

    def __init__(self) -> None:
        self._rows: dict[str, Prediction] = {}
        self._by_key: dict[str, list[str]] = {}  # import key -> prediction ids

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ensure_schema(self) -> None:
        return None

    async def load(self, batches: AsyncIterable[PredictionBatch], meta: ImportMeta) -> LoadResult:
        staged = [_prediction(meta, row) async for batch in batches for row in batch.rows()]
        # From here to the return there is no await: the swap is atomic for every reader.
        replaced = meta.key.value in self._by_key
        old = self._by_key.pop(meta.key.value, [])
        for prediction_id in old:
            del self._rows[prediction_id]
        self._rows.update((p.id, p) for p in staged)
        self._rows = dict(sorted(self._rows.items()))  # id order, for paging
        self._by_key[meta.key.value] = [p.id for p in staged]
        return LoadResult(rows=len(staged), replaced=replaced)

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        check_page(limit, cursor)
        found: list[Prediction] = []
        for prediction in self._matching(filters):
            if cursor is not None and prediction.id <= cursor:
                continue
            found.append(prediction)
            if len(found) > limit:
                break
        more = len(found) > limit
        items = tuple(found[:limit])
        return PredictionPage(items, items[-1].id if more else None)

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        counts: dict[tuple[Any, str], int] = {}
        for prediction in self._matching(filters):
            key = (prediction.created_at.date(), prediction.model_id)
            counts[key] = counts.get(key, 0) + 1
        return [DailyCount(day, model, count) for (day, model), count in sorted(counts.items())]

    def _matching(self, filters: PredictionFilter) -> Sequence[Prediction]:
        return [p for p in self._rows.values() if _matches(p, filters)]


def _matches(p: Prediction, f: PredictionFilter) -> bool:
    return (
        (f.model_id is None or p.model_id == f.model_id)
        and (f.stream_id is None or p.stream_id == f.stream_id)
        and (f.source_job_id is None or p.source_job_id == f.source_job_id)
        and (f.owner_id is None or p.owner_id == f.owner_id)
        and (f.time_from is None or p.created_at >= f.time_from)
        and (f.time_to is None or p.created_at < f.time_to)
    )


def _prediction(
    meta: ImportMeta, row: tuple[int, str, str, float | None, str | None, str | None]
) -> Prediction:
    source_row, item_key, label, confidence, probabilities, extra = row
    return Prediction(
        id=meta.prediction_id(source_row),
        import_id=meta.import_id,
        source_job_id=meta.source_job_id,
        model_id=meta.model_id,
        model_version=meta.model_version,
        stream_id=meta.stream_id,
        owner_id=meta.owner_id,
        created_at=meta.created_at,
        item_key=item_key,
        label=label,
        confidence=confidence,
        probabilities=None if probabilities is None else _OBJECT.decode(probabilities),
        extra=None if extra is None else _OBJECT.decode(extra),
    )
