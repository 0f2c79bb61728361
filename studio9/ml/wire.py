"""The model routes' JSON shapes (msgspec structs) and their builders from domain values."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

import msgspec

from studio9.catalog.domain import Asset
from studio9.ml.domain import ModelVersionInfo
from studio9.ml.service import ModelVersionView
from studio9.ml.serving import OnlineAnswer

Rows = Annotated[list[dict[str, Any]], msgspec.Meta(min_length=1, max_length=10_000)]


class AliasIn(msgspec.Struct, forbid_unknown_fields=True):
    version: Annotated[int, msgspec.Meta(ge=1)]


class VersionChangesIn(msgspec.Struct, forbid_unknown_fields=True):
    description: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    tags: dict[str, str] | None = None


class PredictIn(msgspec.Struct, forbid_unknown_fields=True):
    """The rows to score: objects of column name to value (columns the model does not use are
    ignored)."""

    rows: Rows


class ModelRefOut(msgspec.Struct):
    name: str
    version: int


class PredictOut(msgspec.Struct):
    """``predictions`` in row order: ``{"label", "probabilities": {class: p}}`` for a classifier,
    ``{"value"}`` for a regression model."""

    model: ModelRefOut
    predictions: list[dict[str, Any]]


class VersionSummaryOut(msgspec.Struct):
    version: int
    created_at: datetime
    description: str
    tags: dict[str, str]
    source: str
    run_id: str | None
    aliases: list[str]


class ModelOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str
    description: str
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    latest_version: int
    aliases: dict[str, int]
    versions: list[VersionSummaryOut]


class ModelListOut(msgspec.Struct):
    items: list[ModelOut]
    next_cursor: str | None


class ModelSummaryOut(msgspec.Struct):
    id: str
    name: str
    owner_id: str


class ModelVersionOut(msgspec.Struct):
    model: ModelSummaryOut
    version: int
    created_at: datetime
    description: str
    tags: dict[str, str]
    source: str
    run_id: str | None
    aliases: list[str]
    task: str
    target: str | None
    features: list[str]
    input_schema: list[dict[str, Any]]
    output_schema: list[dict[str, Any]]
    classes: list[Any] | None
    algorithm: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    #: The ``report`` asset with every metric, curve, the leaderboard and feature importance.
    report: str | None
    #: Scored tables by split (``train``, ``holdout``, ``out_of_time``): table ids.
    scored: dict[str, str]
    training: dict[str, Any]


def _summary(info: ModelVersionInfo, aliases: Mapping[str, int]) -> VersionSummaryOut:
    return VersionSummaryOut(
        version=info.version,
        created_at=info.created_at,
        description=info.description,
        tags=dict(info.tags),
        source=str(info.source),
        run_id=info.run_id,
        aliases=sorted(a for a, v in aliases.items() if v == info.version),
    )


def model_out(asset: Asset, versions: Sequence[ModelVersionInfo], aliases: Mapping[str, int]) -> ModelOut:
    return ModelOut(
        id=asset.id,
        name=asset.name,
        owner_id=asset.owner_id,
        description=asset.description,
        tags=list(asset.tags),
        created_at=asset.created_at,
        updated_at=asset.updated_at,
        latest_version=max((v.version for v in versions), default=asset.latest_version),
        aliases=dict(aliases),
        versions=[_summary(info, aliases) for info in versions],
    )


def version_out(view: ModelVersionView) -> ModelVersionOut:
    content = view.content
    return ModelVersionOut(
        model=ModelSummaryOut(id=view.asset.id, name=view.asset.name, owner_id=view.asset.owner_id),
        version=view.version.version,
        created_at=view.version.created_at,
        description=view.info.description,
        tags=dict(view.info.tags),
        source=str(view.info.source),
        run_id=view.info.run_id,
        aliases=sorted(view.aliases),
        task=content.task,
        target=content.target,
        features=list(content.features),
        input_schema=[dict(c) for c in content.input_schema],
        output_schema=content.output_schema,
        classes=None if content.classes is None else list(content.classes),
        algorithm=content.algorithm,
        params=dict(content.params),
        metrics=dict(content.metrics),
        report=content.report,
        scored=dict(content.scored),
        training=dict(content.training),
    )


def predict_out(answer: OnlineAnswer) -> PredictOut:
    return PredictOut(
        model=ModelRefOut(name=answer.name, version=answer.version), predictions=answer.predictions
    )
