"""What a model version's ``content`` holds (the catalog keeps it; it never interprets it).

A registered model is a catalog asset of kind ``model``; each of its versions is an asset
version whose content is a ``ModelContent``: where the fitted pipeline is (a skops file in
the blob store), what it expects (the input schema) and answers (task, classes), how it was
made (algorithm, parameters, training table), and a summary of its metrics (the full report
is a ``report`` asset of its own). No heavy import here: the API reads it on every request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

import attrs

from studio9.errors import InvalidInput

MODEL_FILE: Final = "model.skops"


def model_prefix(asset_id: str) -> str:
    """Where every file of a model asset lives (deleted with it)."""
    return f"models/{asset_id}/"


def artifact_key(asset_id: str, job_or_upload_id: str) -> str:
    """The skops file a job (or an import) writes: its own key, so a stalled attempt never
    overwrites a file another version already names."""
    return f"{model_prefix(asset_id)}{job_or_upload_id}/{MODEL_FILE}"


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    """``data`` as the chunk stream ``BlobStore.put`` takes."""
    yield data


@attrs.frozen(kw_only=True)
class ModelContent:
    """A model version's content."""

    artifact: str
    task: str
    target: str | None
    features: tuple[str, ...]
    #: ``[{"name", "type", "nullable"}]``: what online prediction checks rows against.
    input_schema: tuple[Mapping[str, Any], ...]
    classes: tuple[Any, ...] | None = None
    algorithm: str | None = None
    params: Mapping[str, Any] = attrs.field(factory=dict)
    metrics: Mapping[str, Any] = attrs.field(factory=dict)
    report: str | None = None
    scored: Mapping[str, str] = attrs.field(factory=dict)
    training: Mapping[str, Any] = attrs.field(factory=dict)
    sklearn_version: str | None = None
    format: str = "skops"

    @property
    def output_schema(self) -> list[dict[str, Any]]:
        """What a prediction answers: a label and class probabilities, or a value."""
        if self.task == "regression":
            return [{"name": "value", "type": "float"}]
        return [
            {"name": "label", "type": "string"},
            {"name": "probabilities", "type": "object", "keys": [str(c) for c in self.classes or ()]},
        ]

    @classmethod
    def of(cls, content: Mapping[str, Any]) -> ModelContent:
        """Raises InvalidInput for content that is not a model version's."""
        try:
            classes = content.get("classes")
            return cls(
                artifact=str(content["artifact"]),
                task=str(content["task"]),
                target=content.get("target"),
                features=tuple(str(f) for f in content["features"]),
                input_schema=tuple(dict(c) for c in content["input_schema"]),
                classes=None if classes is None else tuple(classes),
                algorithm=content.get("algorithm"),
                params=dict(content.get("params") or {}),
                metrics=dict(content.get("metrics") or {}),
                report=content.get("report"),
                scored=dict(content.get("scored") or {}),
                training=dict(content.get("training") or {}),
                sklearn_version=content.get("sklearn_version"),
                format=str(content.get("format", "skops")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a model version's content ({exc})") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "artifact": self.artifact,
            "format": self.format,
            "task": self.task,
            "target": self.target,
            "features": list(self.features),
            "input_schema": [dict(c) for c in self.input_schema],
            "output_schema": self.output_schema,
            "classes": None if self.classes is None else list(self.classes),
            "algorithm": self.algorithm,
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "report": self.report,
            "scored": dict(self.scored),
            "training": dict(self.training),
            "sklearn_version": self.sklearn_version,
        }


def metric_summary(metrics: Mapping[str, Any], task: str) -> dict[str, Any]:
    """The headline numbers of a report's metrics (scalars only: curves stay in the report)."""
    keep: Sequence[str]
    if task == "regression":
        keep = ("rmse", "mae", "r2", "mape")
    else:
        keep = ("accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss", "ks")
    summary: dict[str, Any] = {}
    for split, values in metrics.items():
        if isinstance(values, Mapping):
            summary[split] = {k: values[k] for k in keep if k in values}
    return summary
