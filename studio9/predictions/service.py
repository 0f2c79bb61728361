"""Prediction use cases: import a file, page through predictions, export them, count them per day.

The ``predictions.import`` job type calls ``import_file``; the HTTP routes call ``query``,
``export`` and ``daily_counts``. Owner scoping is the caller's: pass ``owner_id`` in the
filter for anyone who may only see their own predictions.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import anyio.to_thread
import attrs
import msgspec

from studio9.errors import InvalidInput
from studio9.ids import new_id
from studio9.predictions.domain import (
    DailyCount,
    ImportKey,
    ImportMeta,
    ImportResult,
    LoadResult,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    RejectedRow,
    ScoredRow,
)
from studio9.predictions.ports import PredictionSink

if TYPE_CHECKING:
    import pyarrow as pa

    from studio9.predictions.importer import FileFormat, OnError

EXPORT_PAGE: Final = 5_000
_JSON = msgspec.json.Encoder()


@attrs.frozen
class PredictionService:
    """The predictions context, over one sink."""

    sink: PredictionSink
    #: Rows per query of an export (about what it holds in memory); tests make it small.
    export_page: int = attrs.field(default=EXPORT_PAGE, kw_only=True)

    async def import_file(
        self,
        path: Path,
        *,
        model_id: str,
        owner_id: str,
        source_job_id: str | None = None,
        model_version: str | None = None,
        stream_id: str | None = None,
        file_format: FileFormat | None = None,
        on_error: OnError = "fail",
        on_progress: Callable[[float], None] | None = None,
        created_at: datetime | None = None,
    ) -> ImportResult:
        """Import ``path``; the import key is ``(owner, model, source_job_id or "", SHA-256 of the file)``.

        See ``importer.import_predictions`` for the file format, errors and progress.
        """
        # The importer (pyarrow, numpy) loads with the first import, not with the process.
        from studio9.predictions.importer import import_predictions

        digest = await anyio.to_thread.run_sync(file_sha256, path)
        meta = ImportMeta(
            import_id=new_id(),
            key=ImportKey(
                owner_id=owner_id, model_id=model_id, source_job_id=source_job_id or "", file_digest=digest
            ),
            model_id=model_id,
            owner_id=owner_id,
            created_at=created_at or datetime.now(UTC),
            model_version=model_version,
            stream_id=stream_id,
        )
        return await import_predictions(
            self.sink, path, meta, file_format=file_format, on_error=on_error, on_progress=on_progress
        )

    async def record(
        self,
        rows: Sequence[ScoredRow],
        *,
        owner_id: str,
        model_id: str,
        model_version: str | None,
        set_key: str,
        source_job_id: str | None = None,
        created_at: datetime | None = None,
    ) -> LoadResult:
        """Store ``rows`` as one prediction set (``PredictionRecorder``); its import key's digest
        is the SHA-256 of ``set_key``, so the same key replaces the earlier set."""
        meta = ImportMeta(
            import_id=new_id(),
            key=ImportKey(
                owner_id=owner_id,
                model_id=model_id,
                source_job_id=source_job_id or "",
                file_digest=hashlib.sha256(set_key.encode()).hexdigest(),
            ),
            model_id=model_id,
            owner_id=owner_id,
            created_at=created_at or datetime.now(UTC),
            model_version=model_version,
        )
        batches = await anyio.to_thread.run_sync(_scored_batches, rows)

        async def stream() -> AsyncIterator[PredictionBatch]:
            for batch in batches:
                yield batch

        return await self.sink.load(stream(), meta)

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        """One page of predictions in id order; see ``PredictionSink.query``."""
        return await self.sink.query(filters, limit=limit, cursor=cursor)

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        """Predictions per UTC day and model; see ``PredictionSink.daily_counts``."""
        return await self.sink.daily_counts(filters)

    async def export(
        self, filters: PredictionFilter, file_format: Literal["csv", "parquet"]
    ) -> AsyncIterator[bytes]:
        """Every matching prediction as a CSV (with a header) or Parquet file, a page at a time.

        Memory is about one page (``export_page`` rows), whatever the total.
        """
        if file_format not in ("csv", "parquet"):
            raise InvalidInput(f"format must be 'csv' or 'parquet', not {file_format!r}", field="format")
        import pyarrow as pa  # with the first export, not with the process
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        from studio9.predictions.arrow import EXPORT_SCHEMA

        spool = _Spool()
        writer: Any = (
            pcsv.CSVWriter(spool, EXPORT_SCHEMA)
            if file_format == "csv"
            else pq.ParquetWriter(pa.PythonFile(spool, mode="w"), EXPORT_SCHEMA)
        )
        cursor: str | None = None
        try:
            while True:
                page = await self.sink.query(filters, limit=self.export_page, cursor=cursor)
                if page.items:
                    writer.write_table(_table(page.items))
                    yield spool.drain()
                if (cursor := page.next_cursor) is None:
                    break
        finally:
            writer.close()
        if tail := spool.drain():
            yield tail


def _scored_batches(rows: Sequence[ScoredRow], size: int = 50_000) -> list[PredictionBatch]:
    import pyarrow as pa

    from studio9.predictions.arrow import BATCH_SCHEMA

    batches = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        columns = [
            list(range(start + 1, start + len(chunk) + 1)),
            [row.item_key for row in chunk],
            [row.label for row in chunk],
            [row.confidence for row in chunk],
            [_json(row.probabilities) for row in chunk],
            [_json(row.extra) for row in chunk],
        ]
        batches.append(PredictionBatch(pa.RecordBatch.from_arrays(columns, schema=BATCH_SCHEMA)))
    return batches


def file_sha256(path: Path) -> str:
    """The file's SHA-256, hex: with the source job, what makes two imports the same."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def rejected_csv(rows: Sequence[RejectedRow]) -> bytes:
    """Rejected rows as CSV (``row,reason,values``, values a JSON object): the job's output file."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "reason", "values"])
    for rejected in rows:
        writer.writerow([rejected.row, rejected.reason, _json(rejected.values)])
    return buffer.getvalue().encode()


def _json(value: Any) -> str | None:
    """Compact JSON text, as the importer's ``checks.json_text`` writes it (one encoder, no pyarrow)."""
    return None if value is None else _JSON.encode(value).decode()


def _table(items: Sequence[Prediction]) -> pa.Table:
    import pyarrow as pa

    from studio9.predictions.arrow import EXPORT_SCHEMA

    columns: dict[str, list[Any]] = {name: [] for name in EXPORT_SCHEMA.names}
    for item in items:
        for name in EXPORT_SCHEMA.names:
            value = getattr(item, name)
            columns[name].append(_json(value) if name in ("probabilities", "extra") else value)
    return pa.table(columns, schema=EXPORT_SCHEMA)


class _Spool:
    """A write-only file that keeps what was written until ``drain``; its position only grows
    (the Parquet writer records offsets from it)."""

    closed = False

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0

    def write(self, data: bytes | memoryview) -> int:
        self._chunks.append(bytes(data))
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def drain(self) -> bytes:
        data, self._chunks = b"".join(self._chunks), []
        return data
