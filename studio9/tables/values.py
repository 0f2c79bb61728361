"""The table engine's value objects: column schemas, import options and results, pages of rows.

Shared by the import (``studio9.tables.importing``) and the reads (``studio9.tables.reading``),
and meant for the routes and jobs that call them: this module does not load pyarrow, so a
request can be validated (``ImportOptions``) without it.

Column types are ``string``, ``integer`` (int64), ``float`` (float64), ``boolean``, ``date``
(date32) and ``timestamp`` (microseconds; UTC when the source carried a zone). Variable types
are ``continuous`` and ``categorical`` (the rule is in ``studio9.tables.conversion``).

Column names (``column_names``): surrounding white space is dropped and control characters
become ``_``; an empty name becomes ``column_<position>``; a name equal to an earlier one,
ignoring case (SQL engines fold case), gets ``_2``, ``_3``… Any other character is allowed: a
name is data, never SQL text (``"; DROP TABLE`` is a fine name).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final, Literal, get_args

import attrs

from studio9.errors import InvalidInput, Studio9Error

__all__ = [
    "DEFAULT_NULLS",
    "ColumnSchema",
    "ColumnType",
    "DeclaredColumn",
    "DistinctValues",
    "ImportCancelled",
    "ImportFailed",
    "ImportLayout",
    "ImportOptions",
    "ImportResult",
    "RowsPage",
    "SourceFormat",
    "ValueCount",
    "VariableType",
    "column_names",
]

ColumnType = Literal["string", "integer", "float", "boolean", "date", "timestamp"]
VariableType = Literal["continuous", "categorical"]
SourceFormat = Literal["csv", "parquet", "jsonl"]
OnError = Literal["fail", "skip"]

COLUMN_TYPES: Final = frozenset(get_args(ColumnType))
VARIABLE_TYPES: Final = frozenset(get_args(VariableType))
#: Types whose values are ordered magnitudes, and so may be continuous.
ORDERED_TYPES: Final = frozenset({"integer", "float", "date", "timestamp"})
#: CSV cells read as null (in every column, strings included).
DEFAULT_NULLS: Final = ("", "NA", "N/A", "NULL", "null", "NaN", "nan")
MAX_NAME_LENGTH: Final = 255
MAX_COLUMNS: Final = 10_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ImportFailed(InvalidInput):
    """A row of the source cannot be imported; nothing was written. ``row`` counts data rows from
    1 (a CSV header is not a row); ``column`` is ``None`` when the row as a whole is at fault
    (a JSON line that is not an object)."""

    def __init__(self, row: int, column: str | None, reason: str) -> None:
        where = f"row {row}" if column is None else f"row {row}, column {column!r}"
        super().__init__(f"{where}: {reason}", row=row, column=column, reason=reason)
        self.row = row
        self.column = column
        self.reason = reason


class ImportCancelled(Studio9Error):
    """``cancelled()`` answered true during an import; nothing was written."""


def _sanitised(name: str) -> str:
    return _CONTROL.sub("_", unicodedata.normalize("NFC", name).strip())[:MAX_NAME_LENGTH]


def column_names(raw: Iterable[str]) -> list[str]:
    """Names fit for a table from a source's names (a header, JSON keys): see the module doc."""
    names: list[str] = []
    taken: set[str] = set()
    for position, name in enumerate(raw, start=1):
        base = _sanitised(name) or f"column_{position}"
        candidate, suffix = base, 1
        while candidate.casefold() in taken:
            suffix += 1
            candidate = f"{base[: MAX_NAME_LENGTH - len(str(suffix)) - 1]}_{suffix}"
        taken.add(candidate.casefold())
        names.append(candidate)
    if len(names) > MAX_COLUMNS:
        raise InvalidInput(f"the source has {len(names)} columns; at most {MAX_COLUMNS} are supported")
    return names


def _one_of(allowed: frozenset[str], field: str | None = None) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and value not in allowed:
            expected = ", ".join(sorted(allowed))
            name = field or attribute.name
            raise InvalidInput(f"{attribute.name} {value!r} is not one of {expected}", field=name)

    return check


@attrs.frozen(kw_only=True)
class DeclaredColumn:
    """A column as the caller declares it: its type and variable type override inference."""

    name: str
    type: ColumnType | None = attrs.field(default=None, validator=_one_of(COLUMN_TYPES, "columns"))
    variable_type: VariableType | None = attrs.field(
        default=None, validator=_one_of(VARIABLE_TYPES, "columns")
    )

    def __attrs_post_init__(self) -> None:
        if not self.name or self.name != _sanitised(self.name):
            raise InvalidInput(
                f"column name {self.name!r} must be non-empty, without surrounding white space or "
                f"control characters, and at most {MAX_NAME_LENGTH} characters",
                field="columns",
            )
        if self.variable_type == "continuous" and self.type is not None and self.type not in ORDERED_TYPES:
            raise InvalidInput(
                f"column {self.name!r}: a {self.type} column cannot be continuous", field="columns"
            )


def _declared(value: Iterable[DeclaredColumn | dict[str, Any]]) -> tuple[DeclaredColumn, ...]:
    columns = tuple(c if isinstance(c, DeclaredColumn) else DeclaredColumn(**c) for c in value)
    seen: set[str] = set()
    for column in columns:
        if column.name.casefold() in seen:
            raise InvalidInput(f"column {column.name!r} is declared twice", field="columns")
        seen.add(column.name.casefold())
    return columns


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _delimiter(_: Any, __: attrs.Attribute[Any], value: str) -> None:
    if len(value) != 1 or value in '\r\n"' or (not value.isprintable() and value != "\t"):
        raise InvalidInput(f"delimiter {value!r} must be one printable character or a tab", field="delimiter")


def _encoding(_: Any, __: attrs.Attribute[Any], value: str) -> None:
    try:
        codecs.lookup(value)
    except LookupError:
        raise InvalidInput(f"unknown encoding {value!r}", field="encoding") from None


@attrs.frozen(kw_only=True)
class ImportOptions:
    """How to read a source file (``POST /api/v1/tables``'s options).

    ``format`` ``None`` detects it: Parquet's magic bytes, else ``.jsonl``/``.ndjson`` names are
    JSON Lines, else CSV. ``delimiter``, ``null_values``, ``encoding`` and ``header`` are for CSV
    (``encoding`` for JSON Lines too). ``columns``: with a header (and for Parquet and JSON
    Lines) each entry names a source column and fixes its type and/or variable type; without a
    header it must list every column, in order, and names them. ``on_error="skip"`` drops the
    rows that cannot be imported into ``rejected.csv`` instead of failing.
    """

    format: SourceFormat | None = attrs.field(
        default=None, validator=_one_of(frozenset(get_args(SourceFormat)))
    )
    delimiter: str = attrs.field(default=",", validator=_delimiter)
    null_values: tuple[str, ...] = attrs.field(default=DEFAULT_NULLS, converter=_strings)
    encoding: str = attrs.field(default="utf-8", validator=_encoding)
    header: bool = True
    columns: tuple[DeclaredColumn, ...] = attrs.field(default=(), converter=_declared)
    on_error: OnError = attrs.field(default="fail", validator=_one_of(frozenset(get_args(OnError))))

    def declared(self, name: str) -> DeclaredColumn | None:
        return next((c for c in self.columns if c.name.casefold() == name.casefold()), None)


@attrs.frozen(kw_only=True)
class ImportLayout:
    """How the import reads and writes (not the caller's business; tests make it small).

    ``block_size``: bytes of CSV / JSON Lines parsed at a time, and the first block is the
    type-inference sample. ``row_group_rows``: rows per Parquet row group (a page read decodes
    one row group: 65,536 keeps a deep page of a 10-million-row table under ~10 ms).
    ``part_rows``: rows per part file (a multiple of ``row_group_rows`` is best).
    """

    block_size: int = 1 << 20
    row_group_rows: int = 65_536
    part_rows: int = 64 * 65_536

    def __attrs_post_init__(self) -> None:
        if min(self.block_size, self.row_group_rows, self.part_rows) < 1:
            raise InvalidInput("block_size, row_group_rows and part_rows must be positive")


@attrs.frozen(kw_only=True)
class ColumnSchema:
    """One column of a table."""

    name: str
    type: ColumnType
    variable_type: VariableType
    display_name: str | None = None


@attrs.frozen(kw_only=True)
class ImportResult:
    """What an import wrote into its ``dest_dir``: the part files (``part-00000.parquet``…, in
    order), and ``rejected.csv`` in skip mode when some row was rejected. ``bytes_written`` is
    the size of the part files."""

    format: SourceFormat
    schema: tuple[ColumnSchema, ...]
    row_count: int
    rejected_count: int
    parts: tuple[Path, ...]
    rejected_file: Path | None
    bytes_written: int


@attrs.frozen(kw_only=True)
class RowsPage:
    """One page of rows (``columns`` → Python values) and the cursor of the next, if any. A page
    may hold fewer than ``limit`` rows and still have a next cursor (a filter matched few rows
    in the part of the table one page may scan)."""

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    next_cursor: str | None


@attrs.frozen
class ValueCount:
    value: Any
    count: int


@attrs.frozen(kw_only=True)
class DistinctValues:
    """A column's most frequent values, most frequent first. ``approximate``: past the exact
    limit, counts are Misra-Gries lower bounds (each at most ``max_error`` below the truth)."""

    column: str
    values: tuple[ValueCount, ...]
    approximate: bool
    max_error: int
