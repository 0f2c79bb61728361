"""Predictions (the original PEGASUS): the prediction sink port and idempotent, streamed imports.

A prediction file (CSV or Parquet) is imported by ``PredictionService.import_file``: read a
chunk at a time, checked, staged in the sink and swapped in in one transaction, so that
importing the same file for the same source job again leaves exactly one copy.
"""

from studio9.predictions.domain import (
    BATCH_SCHEMA,
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
from studio9.predictions.importer import FileFormat, OnError, import_predictions
from studio9.predictions.ports import PredictionSink
from studio9.predictions.service import EXPORT_SCHEMA, PredictionService, file_sha256, rejected_csv

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
