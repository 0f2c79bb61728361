"""How the SQLite and PostgreSQL sinks key a stored prediction: one integer per row.

``key = import_no * 2**32 + row``: ``import_no`` numbers the sink's imports (a sequence on
PostgreSQL, the next free number on SQLite) and ``row`` is the source row (1-based), so an
import's rows are one key range, in row order, and deleting or paging an import reads that
range. The public id (``<import id>-<row, 10 digits>``, ``ImportMeta.prediction_id``) is
rebuilt from the import's row on the way out. Keyed by that 37-byte text instead, a
1,000,000-row load cost PostgreSQL 1.26 s of CPU and 237 MB of WAL (now 1.03 s, 171 MB) and
SQLite's inserts 1.40 s of CPU and 148 MB of WAL (now 1.03 s, 99 MB): see ``benchmarks/README.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from studio9.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["MAX_ROW", "cursor_row", "key_range", "prediction_id", "row_keys"]

ROW_BITS: Final = 32
MAX_ROW: Final = (1 << ROW_BITS) - 1


def row_keys(import_no: int, source_rows: pa.Array) -> pa.Array:
    """The keys (int64) of the rows numbered ``source_rows`` in import ``import_no``."""
    # Here, not at the top: the sinks import this module at start-up, loads are what need Arrow.
    import pyarrow.compute as pc

    from studio9.predictions.arrow import ARROW_POOL as POOL

    if len(source_rows) and pc.max(source_rows).as_py() > MAX_ROW:
        raise InvalidInput(f"an import holds at most {MAX_ROW} rows")
    return pc.add(source_rows, import_no << ROW_BITS, memory_pool=POOL)


def key_range(import_no: int, after_row: int = 0) -> tuple[int, int]:
    """Bounds (both exclusive) of the keys of ``import_no``'s rows after ``after_row``."""
    base = import_no << ROW_BITS
    return base + min(after_row, MAX_ROW), base + MAX_ROW + 1


def prediction_id(import_id: str, key: int) -> str:
    """The public id of the row stored under ``key`` by import ``import_id``."""
    return f"{import_id}-{key & MAX_ROW:010d}"


def cursor_row(cursor: str | None, import_id: str) -> int:
    """The row a page cursor (a prediction id) stands on in ``import_id``; 0 (before the first
    row) when it belongs to an earlier import or there is none."""
    if not cursor:
        return 0
    cursor_import, _, row = cursor.rpartition("-")
    return int(row) if cursor_import == import_id else 0
