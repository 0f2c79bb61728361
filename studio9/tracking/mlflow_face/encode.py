"""Experiments, runs and metric points as MLflow's server answers them (``docs/mlflow-protocol.md``
§3.1, §3.2), built as plain dicts and lists for ``protocol.ok`` to encode with msgspec.

This is the hot path of ``runs/search`` (a page of 100 runs with 20 params and 100 metrics each
is some 12 000 small objects), so each shape is written out by hand: no ``attrs.asdict``, no
per-item helper calls where a literal does, and NaN/±inf handled only when a value is not finite.

What MLflow clients rely on:

- ``run_id`` and ``run_uuid`` both (2.x reads ``run_uuid``, 3.x ``run_id``);
- ``end_time`` (and ``start_time``) omitted while unknown: the client maps a missing one to None;
- ``lifecycle_stage`` always present (a missing one reads as deleted);
- ``data.metrics`` holds each key's latest point (the store keeps it), NaN and ±inf as strings;
- ids as strings, times as integer milliseconds.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from studio9.tracking.domain import DatasetInput, Experiment, Metric, Run, RunRecord
from studio9.tracking.mlflow_face.protocol import double

__all__ = ["dataset_input_json", "experiment_json", "metric_json", "run_info_json", "run_json"]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def experiment_json(experiment: Experiment) -> dict[str, Any]:
    """MLflow's ``Experiment``; Studio9 deletes experiments for good, so each one is active."""
    asset = experiment.asset
    return {
        "experiment_id": asset.id,
        "name": asset.name,
        "artifact_location": experiment.artifact_location,
        "lifecycle_stage": "active",
        "last_update_time": _ms(asset.updated_at),
        "creation_time": _ms(asset.created_at),
        "tags": [{"key": k, "value": v} for k, v in experiment.tags.items()],
    }


def run_info_json(run: Run) -> dict[str, Any]:
    """MLflow's ``RunInfo``: ``user_id`` is the user name the client gave (``Run.user_name``)."""
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "experiment_id": run.experiment_id,
        "run_name": run.name,
        "user_id": run.user_name,
        "status": run.status.value,
        "artifact_uri": run.artifact_uri,
        "lifecycle_stage": run.lifecycle_stage.value,
    }
    if run.start_time is not None:
        info["start_time"] = run.start_time
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def metric_json(metric: Metric) -> dict[str, Any]:
    """One metric point; ``model_id`` only when the point was recorded for a logged model."""
    value = metric.value
    found: dict[str, Any] = {
        "key": metric.key,
        "value": value if math.isfinite(value) else double(value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }
    if metric.model_id is not None:
        found["model_id"] = metric.model_id
    return found


def dataset_input_json(dataset: DatasetInput) -> dict[str, Any]:
    """MLflow's ``DatasetInput``: the dataset and the input's tags (``mlflow.data.context``)."""
    body: dict[str, Any] = {
        "name": dataset.name,
        "digest": dataset.digest,
        "source_type": dataset.source_type,
        "source": dataset.source,
    }
    if dataset.schema is not None:
        body["schema"] = dataset.schema
    if dataset.profile is not None:
        body["profile"] = dataset.profile
    return {"tags": [{"key": k, "value": v} for k, v in dataset.tags.items()], "dataset": body}


def run_json(record: RunRecord) -> dict[str, Any]:
    """MLflow's ``Run``: info, data (latest metric per key, params, tags), inputs and outputs
    (``{}`` when there are none, as MLflow's server answers)."""
    data = record.data
    isfinite = math.isfinite
    metrics = [
        {"key": m.key, "value": m.value, "timestamp": m.timestamp, "step": m.step}
        if isfinite(m.value) and m.model_id is None
        else metric_json(m)
        for m in data.metrics.values()
    ]
    return {
        "info": run_info_json(record.run),
        "data": {
            "metrics": metrics,
            "params": [{"key": k, "value": v} for k, v in data.params.items()],
            "tags": [{"key": k, "value": v} for k, v in data.tags.items()],
        },
        "inputs": (
            {"dataset_inputs": [dataset_input_json(d) for d in record.inputs]} if record.inputs else {}
        ),
        "outputs": (
            {"model_outputs": [{"model_id": o.model_id, "step": o.step} for o in record.outputs]}
            if record.outputs
            else {}
        ),
    }
