"""HTTP routes of the predictions context: page through, export and count stored predictions.

Owner-scoped like jobs and files: a non-admin always sees only their own predictions (an
``owner`` filter is overridden with the caller); an admin sees everyone's, or one owner's.
Predictions get in through the ``predictions.import`` job type, not through these routes.
"""

from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery, QueryParameter
from litestar.response import Stream

from studio9.auth.domain import Principal
from studio9.errors import InvalidInput
from studio9.predictions.domain import IDENTIFIER, DailyCount, Prediction, PredictionFilter
from studio9.predictions.service import PredictionService

#: Most predictions one page of ``GET /predictions`` may hold (exports are not limited).
MAX_HTTP_PAGE = 1000
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}

# Query parameters shared by every route. An id that could never match is a 422 naming the
# parameter, not an empty answer. ``from``/``to`` arrive as text and are parsed in ``_time``:
# Litestar would name its own errors after the Python parameter (``time_from``), not ``from``.
_Id = Annotated[str | None, QueryParameter(pattern=f"^(?:{IDENTIFIER})$")]
_TIME = "ISO 8601 with a time zone (2026-11-28T12:00:00Z), or a date (UTC midnight)"
_From = Annotated[str | None, QueryParameter(name="from", description=f"inclusive; {_TIME}")]
_To = Annotated[str | None, QueryParameter(name="to", description=f"exclusive; {_TIME}")]


class PredictionOut(msgspec.Struct):
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
    probabilities: dict[str, Any] | None
    extra: dict[str, Any] | None

    @classmethod
    def from_domain(cls, p: Prediction) -> "PredictionOut":
        return cls(
            id=p.id,
            import_id=p.import_id,
            source_job_id=p.source_job_id,
            model_id=p.model_id,
            model_version=p.model_version,
            stream_id=p.stream_id,
            owner_id=p.owner_id,
            created_at=p.created_at,
            item_key=p.item_key,
            label=p.label,
            confidence=p.confidence,
            probabilities=None if p.probabilities is None else dict(p.probabilities),
            extra=None if p.extra is None else dict(p.extra),
        )


class PredictionPageOut(msgspec.Struct):
    items: list[PredictionOut]
    next_cursor: str | None


class DailyCountOut(msgspec.Struct):
    day: date
    model_id: str
    count: int

    @classmethod
    def from_domain(cls, count: DailyCount) -> "DailyCountOut":
        return cls(day=count.day, model_id=count.model_id, count=count.count)


class DailyCountListOut(msgspec.Struct):
    items: list[DailyCountOut]


def _filters(
    principal: NamedDependency[Principal],
    model_id: _Id = None,
    stream_id: _Id = None,
    source_job_id: _Id = None,
    owner: _Id = None,
    time_from: _From = None,
    time_to: _To = None,
) -> PredictionFilter:
    """The filter of one request; raises InvalidInput (422) for bad or reversed times."""
    return PredictionFilter(
        model_id=model_id,
        stream_id=stream_id,
        source_job_id=source_job_id,
        owner_id=owner if principal.is_admin else principal.user_id,
        time_from=_time(time_from, "from"),
        time_to=_time(time_to, "to"),
    )


class PredictionController(Controller):
    path = "/predictions"
    tags = ["predictions"]
    # Every route takes the same filter query parameters: one dependency parses them.
    dependencies = {"filters": Provide(_filters, sync_to_thread=False)}

    @get("/", operation_id="ListPredictions")
    async def list_predictions(
        self,
        prediction_service: NamedDependency[PredictionService],
        filters: NamedDependency[PredictionFilter],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_HTTP_PAGE)] = 100,
        cursor: Annotated[str | None, QueryParameter(max_length=100)] = None,
    ) -> PredictionPageOut:
        """Predictions in import order (then row); pass ``next_cursor`` back as ``cursor``."""
        page = await prediction_service.query(filters, limit=limit, cursor=cursor)
        return PredictionPageOut([PredictionOut.from_domain(p) for p in page.items], page.next_cursor)

    @get("/export", operation_id="ExportPredictions")
    async def export(
        self,
        prediction_service: NamedDependency[PredictionService],
        filters: NamedDependency[PredictionFilter],
        format: FromQuery[Literal["csv", "parquet"]] = "csv",
    ) -> Stream:
        """Every matching prediction as one CSV (with a header) or Parquet file, streamed."""
        chunks = prediction_service.export(filters, format)
        # The first chunk is read before answering, so that a backend that is down is a 503
        # problem, not a 200 cut short; later pages stream as the client reads.
        first = await anext(chunks, b"")
        return Stream(
            _resumed(first, chunks),
            headers={
                # Lower-case names: Litestar only fills in a header it does not find as such.
                "content-type": MEDIA_TYPES[format],
                "content-disposition": f'attachment; filename="predictions.{format}"',
                "x-content-type-options": "nosniff",
            },
        )

    @get("/daily-counts", operation_id="CountPredictionsPerDay")
    async def daily_counts(
        self,
        prediction_service: NamedDependency[PredictionService],
        filters: NamedDependency[PredictionFilter],
    ) -> DailyCountListOut:
        """Matching predictions per UTC day and model, by day then model; empty days are absent."""
        counts = await prediction_service.daily_counts(filters)
        return DailyCountListOut([DailyCountOut.from_domain(c) for c in counts])


def provide_prediction_service(request: Request[Any, Any, Any]) -> PredictionService:
    """The ``prediction_service`` dependency: the container's PredictionService."""
    service: PredictionService = request.app.state.container.predictions
    return service


def _time(text: str | None, name: str) -> datetime | None:
    """``text`` as an aware datetime; a bare date is that day's UTC midnight (daily counts)."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{name} {text!r} is not an ISO 8601 time", field=name) from None
    if len(text) == 10:  # YYYY-MM-DD
        return moment.replace(tzinfo=UTC)
    if moment.utcoffset() is None:
        raise InvalidInput(f"{name} {text!r} needs a time zone, e.g. 'Z'", field=name)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999: before, or after, every prediction
        return (datetime.min if moment.year == 1 else datetime.max).replace(tzinfo=UTC)


async def _resumed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``first``, then the rest of the export; the export is closed however the response ends
    (a client that hangs up must not leave its writer and sink cursor open)."""
    try:
        if first:
            yield first
        async for chunk in rest:
            yield chunk
    finally:
        if isinstance(rest, AsyncGenerator):
            await rest.aclose()
