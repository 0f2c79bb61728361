"""Prediction sinks (``studio9.predictions.ports.PredictionSink``). ``STUDIO9_SINK_URL``.

``SCHEMES`` maps each URL scheme to the adapter class that serves it, imported only when a URL
names it (the edge install has no cloud SDK).
"""

from typing import Final

__all__ = ["SCHEMES"]

SCHEMES: Final = {
    "memory": "adapters.prediction_sink.memory:MemoryPredictionSink",
    "sqlite": "adapters.prediction_sink.sqlite:SqlitePredictionSink",
    "postgresql": "adapters.prediction_sink.postgresql:PostgresPredictionSink",
    "postgres": "adapters.prediction_sink.postgresql:PostgresPredictionSink",
    "postgresql+psycopg": "adapters.prediction_sink.postgresql:PostgresPredictionSink",
    "redshift": "adapters.prediction_sink.redshift:RedshiftPredictionSink",
}
