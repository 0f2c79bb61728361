"""Prediction sinks (``studio9.predictions.ports.PredictionSink``), chosen by ``STUDIO9_SINK_URL``:
``memory://``, ``sqlite:///…`` (edge default), ``postgresql://…`` and ``redshift://…``."""
