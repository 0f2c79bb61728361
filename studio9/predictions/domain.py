"""Predictions, imports and the questions asked of them: the value objects every sink shares.

A prediction is one row of a model's output (``item_key`` → ``label``, a ``confidence``,
``probabilities`` and any ``extra`` columns), stamped with the import that brought it in.
An import is identified by its ``ImportKey`` — the source job and the file's SHA-256 — and a
sink keeps exactly one copy of each key: importing the same file for the same source job
again (re-delivery, retry, rerun) replaces the earlier rows instead of adding to them.

Batches travel from the importer to a sink as ``PredictionBatch``: a pyarrow RecordBatch of
``BATCH_SCHEMA`` (a struct of columns, already validated; ``studio9.predictions.arrow``), so that
each adapter can pick its fastest path — CSV for PostgreSQL ``COPY``, Parquet for Redshift,
tuples for SQLite. This module does not import pyarrow: every process imports it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Final

import attrs

from studio9.errors import InvalidInput

if TYPE_CHECKING:
    import pyarrow as pa

#: Longest ``item_key`` / ``label``, in UTF-8 bytes (Redshift VARCHAR lengths are bytes).
MAX_TEXT_BYTES: Final = 1024
#: Longest ``probabilities`` / ``extra`` JSON text, in UTF-8 bytes (Redshift's VARCHAR(65535)).
MAX_JSON_BYTES: Final = 65_535
#: Most rows one ``query`` page may ask for.
MAX_PAGE: Final = 10_000
#: Identifiers (model, stream, owner, job, import): no quotes, no backslashes, no spaces, so
#: they are safe in any SQL dialect's literal (Redshift's batch API takes no parameters).
IDENTIFIER: Final = r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}"
FILE_KEY: Final = r"[A-Za-z0-9][A-Za-z0-9._/+=-]{0,511}"
#: Import ids are letters and digits only, so that ``<import id>-`` prefixes exactly the ids of
#: that import's predictions and nothing else (sinks delete and page by that id range).
IMPORT_ID: Final = r"[A-Za-z0-9]{1,64}"

_IDENTIFIER = re.compile(IDENTIFIER)
_CURSOR = re.compile(IMPORT_ID + r"-[0-9]{10}")
_FILE_KEY = re.compile(FILE_KEY)


class MalformedPredictions(InvalidInput):
    """A row of the file cannot be imported; the import loaded nothing."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"row {row}: {reason}", row=row, reason=reason)
        self.row = row
        self.reason = reason


def _pattern(pattern: re.Pattern[str]) -> Any:
    def check(_: Any, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and not pattern.fullmatch(value):
            raise InvalidInput(
                f"{attribute.name} {value!r} must match {pattern.pattern}", field=attribute.name
            )

    return check


def _aware(_: Any, attribute: attrs.Attribute[Any], value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise InvalidInput(f"{attribute.name} must carry a time zone", field=attribute.name)


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None and value.utcoffset() is not None else value


@attrs.frozen(kw_only=True)
class ImportKey:
    """What makes two imports the same: the owner, the model, the source job ("" for none) and
    the file's digest. Owner and model are part of it so that one user's import never replaces
    another's, nor one model's predictions another's, when the files happen to be equal."""

    owner_id: str = attrs.field(validator=_pattern(_IDENTIFIER))
    model_id: str = attrs.field(validator=_pattern(_IDENTIFIER))
    source_job_id: str = attrs.field(validator=_pattern(re.compile(f"(?:{IDENTIFIER})?")))
    file_digest: str = attrs.field(validator=_pattern(_FILE_KEY))

    @property
    def value(self) -> str:
        """``<owner>|<model>|<source job>|<digest>``, the column sinks delete by (``|`` is in
        none of the parts)."""
        return f"{self.owner_id}|{self.model_id}|{self.source_job_id}|{self.file_digest}"


@attrs.frozen(kw_only=True)
class ImportMeta:
    """Who and what one import is for; stamped on every row it loads."""

    import_id: str = attrs.field(validator=_pattern(re.compile(IMPORT_ID)))
    key: ImportKey
    model_id: str = attrs.field(validator=_pattern(_IDENTIFIER))
    owner_id: str = attrs.field(validator=_pattern(_IDENTIFIER))
    created_at: datetime = attrs.field(validator=_aware, converter=_utc)
    model_version: str | None = attrs.field(default=None, validator=_pattern(_IDENTIFIER))
    stream_id: str | None = attrs.field(default=None, validator=_pattern(_IDENTIFIER))

    def __attrs_post_init__(self) -> None:
        if (self.key.owner_id, self.key.model_id) != (self.owner_id, self.model_id):
            raise ValueError("an import's key must name the import's own owner and model")

    @property
    def source_job_id(self) -> str | None:
        return self.key.source_job_id or None

    def prediction_id(self, source_row: int) -> str:
        """The id of the prediction from ``source_row``: sorts by import, then by row."""
        return f"{self.import_id}-{source_row:010d}"


def cursor_import(cursor: str | None) -> str:
    """The import id a page cursor (a prediction id) belongs to; "" for no cursor."""
    return cursor.rsplit("-", 1)[0] if cursor else ""


def _batch_schema(_: Any, __: attrs.Attribute[Any], value: pa.RecordBatch) -> None:
    # Whoever built a batch has loaded pyarrow already: this import costs nothing more.
    from studio9.predictions.arrow import BATCH_SCHEMA

    if not value.schema.equals(BATCH_SCHEMA):
        raise ValueError(f"a PredictionBatch needs BATCH_SCHEMA, not {value.schema}")


@attrs.frozen
class PredictionBatch:
    """Validated rows on their way to a sink, as columns (``BATCH_SCHEMA``)."""

    data: pa.RecordBatch = attrs.field(validator=_batch_schema)

    @property
    def num_rows(self) -> int:
        return int(self.data.num_rows)

    def rows(self) -> Iterator[tuple[int, str, str, float | None, str | None, str | None]]:
        """The rows as ``(source_row, item_key, label, confidence, probabilities, extra)`` tuples."""
        return zip(*(column.to_pylist() for column in self.data.columns), strict=True)


@attrs.frozen
class LoadResult:
    """What a sink's ``load`` did: rows now stored for the key, and whether older ones went."""

    rows: int
    replaced: bool


@attrs.frozen(kw_only=True)
class ScoredRow:
    """One row a model scored, on its way to the sink as part of a prediction set
    (``PredictionService.record``): a label (the class, or the value as text for regression),
    the winning class's probability, every class's probability, and what else to keep."""

    item_key: str
    label: str
    confidence: float | None = None
    probabilities: Mapping[str, float] | None = None
    extra: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class Prediction:
    """One stored prediction."""

    id: str
    import_id: str
    source_job_id: str | None
    model_id: str
    model_version: str | None
    stream_id: str | None
    owner_id: str
    created_at: datetime
    item_key: str
    label: str
    confidence: float | None
    probabilities: Mapping[str, Any] | None
    extra: Mapping[str, Any] | None


@attrs.frozen(kw_only=True)
class PredictionFilter:
    """Which predictions a query or a count covers; ``None`` means any. ``time_from`` is
    inclusive and ``time_to`` exclusive, both on ``created_at``: a ``time_from`` at or after
    ``time_to`` covers nothing (the OpenAPI document cannot relate two parameters, so a
    generated client could not know to avoid it; an empty answer is what the range means)."""

    model_id: str | None = None
    stream_id: str | None = None
    source_job_id: str | None = None
    owner_id: str | None = None
    time_from: datetime | None = attrs.field(default=None, validator=_aware, converter=_utc)
    time_to: datetime | None = attrs.field(default=None, validator=_aware, converter=_utc)


def check_page(limit: int, cursor: str | None) -> None:
    """Raise InvalidInput unless ``limit`` is 1..MAX_PAGE and ``cursor`` looks like an id."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE}, not {limit}", field="limit")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise InvalidInput("cursor is not one this service handed out", field="cursor")


@attrs.frozen
class PredictionPage:
    """Predictions in id order (import, then row); ``next_cursor`` is None on the last page."""

    items: tuple[Prediction, ...]
    next_cursor: str | None


@attrs.frozen
class DailyCount:
    """How many predictions of ``model_id`` were created on ``day`` (UTC)."""

    day: date
    model_id: str
    count: int


@attrs.frozen
class RejectedRow:
    """A row ``on_error="skip"`` left out: its number, why, and its values as read."""

    row: int
    reason: str
    values: Mapping[str, Any]


@attrs.frozen(kw_only=True)
class ImportResult:
    """The outcome of one import."""

    import_id: str
    key: ImportKey
    rows: int
    replaced: bool
    rejected: tuple[RejectedRow, ...] = ()
