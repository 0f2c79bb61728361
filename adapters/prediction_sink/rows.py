"""What the SQLite and PostgreSQL sinks read alike: the filter clause over ``prediction_imports``
and a stored row (with its import's attributes) as a ``Prediction``. They differ only in the
placeholder, the "true" literal, and how times and JSON come back, which callers pass in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from adapters.prediction_sink.keys import prediction_id
from studio9.predictions.domain import Prediction, PredictionFilter


def where_clause(
    f: PredictionFilter,
    *,
    after: str | None,
    placeholder: str,
    true: str,
    time: Callable[[datetime], Any],
) -> tuple[str, list[Any]]:
    """A WHERE clause on ``prediction_imports`` (always one: callers may append ``AND …``)."""
    clauses, params = [true], []
    for column, operator, value in (
        ("model_id", "=", f.model_id),
        ("stream_id", "=", f.stream_id),
        ("source_job_id", "=", f.source_job_id),
        ("owner_id", "=", f.owner_id),
        ("created_at", ">=", f.time_from and time(f.time_from)),
        ("created_at", "<", f.time_to and time(f.time_to)),
        ("import_id", ">=", after or None),
    ):
        if value is not None:
            clauses.append(f"{column} {operator} {placeholder}")
            params.append(value)
    return " WHERE " + " AND ".join(clauses), params


def prediction_from(
    attributes: Sequence[Any],
    row: Sequence[Any],
    *,
    created_at: Callable[[Any], datetime],
    doc: Callable[[Any], Any],
) -> Prediction:
    """A stored row with its import's attributes (the sinks' ``_IMPORT_COLUMNS`` order)."""
    import_id, _, source_job_id, model_id, model_version, stream_id, owner_id, created = attributes
    key, item_key, label, confidence, probabilities, extra = row
    return Prediction(
        id=prediction_id(import_id, key),
        import_id=import_id,
        source_job_id=source_job_id,
        model_id=model_id,
        model_version=model_version,
        stream_id=stream_id,
        owner_id=owner_id,
        created_at=created_at(created),
        item_key=item_key,
        label=label,
        confidence=confidence,
        probabilities=None if probabilities is None else doc(probabilities),
        extra=None if extra is None else doc(extra),
    )
