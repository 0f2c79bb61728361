"""Wire structs of the table read routes (``studio9.tables.api``): pages of rows, distinct values,
statistics. Plain msgspec, so a client can decode the answers with the same types."""

from typing import Any, Literal

import msgspec


class RowsOut(msgspec.Struct):
    """A page of rows; a page may be short and still have a ``next_cursor`` (a selective filter)."""

    columns: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None


class ValueCountOut(msgspec.Struct):
    value: Any
    count: int


class ValuesOut(msgspec.Struct):
    """The most frequent values; ``approximate``: counts are lower bounds (at most ``max_error`` low)."""

    column: str
    values: list[ValueCountOut]
    approximate: bool
    max_error: int


class StatsOut(msgspec.Struct):
    """Column statistics (the ``data.profile`` figures, 120-bin histograms) once ``done``."""

    status: Literal["pending", "done", "error"]
    rows: int | None
    columns: list[dict[str, Any]] | None
    error: str | None
