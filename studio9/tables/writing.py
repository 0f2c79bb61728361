"""The import's writers: typed batches into zstd Parquet part files, and ``rejected.csv``.

``PartWriter`` buffers batches into row groups of exactly ``ImportLayout.row_group_rows`` rows
(the last may be shorter) and starts a new part file, ``part-00000.parquet``,
``part-00001.parquet``…, every ``part_rows`` rows; memory is one row group. An empty table still
gets one part, holding the schema. ``RejectsWriter`` writes one CSV line per rejected row:
``row,column,reason,text``.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from studio9.tables.chunks import BadRow
from studio9.tables.values import ImportLayout

__all__ = ["REJECTED_FILE", "WRITE_OPTIONS", "PartWriter", "RejectsWriter"]

REJECTED_FILE: Final = "rejected.csv"
#: zstd, and a page index so that readers (DuckDB, pyarrow) can skip pages as well as row groups.
WRITE_OPTIONS: Final[dict[str, Any]] = {"compression": "zstd", "write_page_index": True}


class RejectsWriter:
    """``rejected.csv``: one line per rejected row (row number, column, reason, source text)."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["row", "column", "reason", "text"])

    def write(self, row: BadRow) -> None:
        self._csv.writerow([row.row, row.column or "", row.reason, row.text])

    def close(self) -> None:
        self._file.close()


class PartWriter:
    """Buffers batches into row groups of ``row_group_rows`` and rolls part files."""

    def __init__(self, directory: Path, schema: pa.Schema, layout: ImportLayout) -> None:
        self._directory = directory
        self._schema = schema
        self._layout = layout
        self._buffer: list[pa.RecordBatch] = []
        self._buffered = 0
        self._writer: Any = None
        self._part_rows = 0
        self.paths: list[Path] = []

    def add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._buffer.append(batch)
            self._buffered += batch.num_rows
        while self._buffered >= self._layout.row_group_rows:
            self._flush(self._layout.row_group_rows)

    def close(self) -> list[Path]:
        if self._buffered or not self.paths:  # an empty table still has one (empty) part
            self._flush(self._buffered)
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.paths

    def _flush(self, rows: int) -> None:
        table = pa.Table.from_batches(self._buffer, schema=self._schema)
        if self._writer is None:
            path = self._directory / f"part-{len(self.paths):05d}.parquet"
            self._writer = pq.ParquetWriter(path, self._schema, **WRITE_OPTIONS)
            self.paths.append(path)
        self._writer.write_table(table.slice(0, rows), row_group_size=max(1, rows))
        rest = table.slice(rows)
        self._buffer, self._buffered = rest.to_batches(), rest.num_rows
        self._part_rows += rows
        if self._part_rows >= self._layout.part_rows:
            self._writer.close()
            self._writer, self._part_rows = None, 0
