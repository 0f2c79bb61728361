"""What the import's source readers yield: ``Chunk``s of rows, ``BadRow``s, and ``Retry``.

A chunk is a record batch of the source's columns under the table's column names, the data row
number of each of its rows, the rows that did not even parse, and the share of the file read
so far. ``Retry`` asks the import to read again: with a bigger CSV block (a row longer than the
block), or knowing JSON keys the first block lacked (with a sample of each key's values).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["MAX_BLOCK", "NO_ROWS", "BadRow", "Chunk", "Retry", "RowNumbers"]

#: The most a CSV block may grow to for one long row, and the longest JSON line.
MAX_BLOCK: Final = 64 << 20
RowNumbers = npt.NDArray[np.int64]
NO_ROWS: Final = np.empty(0, dtype=np.int64)


@attrs.frozen
class BadRow:
    """A source row the import cannot take: where, why, and its text (for ``rejected.csv``)."""

    row: int
    column: str | None
    reason: str
    text: str


@attrs.frozen
class Chunk:
    """Rows of the source. ``quoted``: columns that held JSON strings; ``lines``: each batch
    row's source text, when kept (JSON Lines)."""

    batch: pa.RecordBatch
    rows: RowNumbers
    invalid: list[BadRow]
    fraction: float
    quoted: frozenset[str] = frozenset()
    lines: list[str] | None = None

    def text(self, index: int, delimiter: str) -> str:
        """Row ``index`` of the batch as source text (CSV values are re-joined)."""
        if self.lines is not None:
            return self.lines[index]
        values = [_shown(column[index].as_py()) for column in self.batch.columns]
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="").writerow(values)
        return out.getvalue()


class Retry(Exception):
    """The pass must start again with a bigger block, or knowing more JSON keys."""

    def __init__(
        self,
        reason: str,
        *,
        block_size: int | None = None,
        keys: Sequence[str] = (),
        samples: Mapping[str, tuple[pa.Array, bool]] | None = None,
    ) -> None:
        super().__init__(reason)
        self.block_size = block_size
        self.keys = tuple(keys)
        #: Per new column (by table name): some of its values as text, and whether JSON strings.
        self.samples = dict(samples or {})


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)
