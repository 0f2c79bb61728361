"""Predictions (the original PEGASUS): the prediction sink port and idempotent, streamed imports.

A prediction file (CSV or Parquet) is imported by ``PredictionService.import_file``: read a
chunk at a time, checked, staged in the sink and swapped in in one transaction, so that
importing the same file for the same source job again leaves exactly one copy.

The names that need pyarrow (the schemas, the importer) are re-exported lazily, on first
access: importing this package, as every process does, does not load pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from studio9.predictions.domain import (
    DailyCount,
    ImportKey,
    ImportMeta,
    ImportResult,
    LoadResult,
    MalformedPredictions,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    RejectedRow,
)
from studio9.predictions.ports import PredictionSink
from studio9.predictions.service import PredictionService, file_sha256, rejected_csv

if TYPE_CHECKING:
    from studio9.predictions.arrow import BATCH_SCHEMA, EXPORT_SCHEMA
    from studio9.predictions.importer import FileFormat, OnError, import_predictions

__all__ = [
    "BATCH_SCHEMA",
    "EXPORT_SCHEMA",
    "DailyCount",
    "FileFormat",
    "ImportKey",
    "ImportMeta",
    "ImportResult",
    "LoadResult",
    "MalformedPredictions",
    "OnError",
    "Prediction",
    "PredictionBatch",
    "PredictionFilter",
    "PredictionPage",
    "PredictionService",
    "PredictionSink",
    "RejectedRow",
    "file_sha256",
    "import_predictions",
    "rejected_csv",
]

_LAZY = {
    "BATCH_SCHEMA": "studio9.predictions.arrow",
    "EXPORT_SCHEMA": "studio9.predictions.arrow",
    "FileFormat": "studio9.predictions.importer",
    "OnError": "studio9.predictions.importer",
    "import_predictions": "studio9.predictions.importer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
