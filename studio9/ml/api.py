"""HTTP routes of the model registry and online prediction, under ``/api/v1/models``.

``{name}`` is the caller's own model of that name, or the id of a model they may read (see
``studio9.ml.service``). Reading and predicting need read access to the model; moving an alias,
describing or deleting a version need write; deleting the model needs ownership. Training is
a job: ``POST /api/v1/jobs {"type": "ml.train", "params": {...}}``.
"""

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar import delete as delete_route
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from studio9.auth.domain import Principal
from studio9.ml.domain import ALIAS_PATTERN
from studio9.ml.imports import ModelImporter
from studio9.ml.service import ModelService
from studio9.ml.serving import OnlinePredictor
from studio9.ml.wire import (
    AliasIn,
    ModelListOut,
    ModelOut,
    ModelVersionOut,
    PredictIn,
    PredictOut,
    VersionChangesIn,
    model_out,
    predict_out,
    version_out,
)
from studio9.web.audit import audit_object
from studio9.web.paging import ID_CURSOR, keyset_page
from studio9.web.responses import problems

Limit = Annotated[int, QueryParameter(ge=1, le=500)]
Cursor = Annotated[str | None, QueryParameter(pattern=f"^(?:{ID_CURSOR})$")]
Alias = Annotated[str, msgspec.Meta(pattern=f"^(?:{ALIAS_PATTERN.pattern})$")]
Version = Annotated[int, msgspec.Meta(ge=1)]


class ModelController(Controller):
    path = "/models"
    tags = ["models"]

    @get("/", operation_id="ListModels")
    async def list_models(
        self,
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ModelListOut:
        """The caller's registered models, newest first (models shared with them are in the
        library: ``GET /api/v1/assets?kind=model&scope=shared``)."""
        items, next_cursor = await keyset_page(
            lambda limit, after: model_service.list(principal, limit=limit, after=after),
            limit=limit,
            cursor=cursor,
            key=lambda asset: asset.id,
        )
        aliases = await model_service.registry.aliases_of([a.id for a in items])
        return ModelListOut(
            items=[model_out(asset, (), aliases.get(asset.id, {})) for asset in items],
            next_cursor=next_cursor,
        )

    @post("/import", operation_id="ImportModel", status_code=201, responses=problems(409))
    async def import_model(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        model_importer: NamedDependency[ModelImporter],
        name: Annotated[str, QueryParameter(min_length=1, max_length=255, description="the model")],
    ) -> ModelVersionOut:
        """A new version of model ``name`` (created if need be) from a skops file sent as the
        body (``application/octet-stream``). A file holding types that are not trusted is
        refused with 422 listing them."""
        view = await model_importer.import_skops(principal, name, await request.body())
        return version_out(view)

    @get("/{name:str}", operation_id="GetModel")
    async def get_model(
        self,
        name: FromPath[str],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> ModelOut:
        """The model, its live versions and its aliases."""
        view = await model_service.show(principal, name)
        return model_out(view.asset, view.versions, view.aliases)

    @delete_route("/{name:str}", operation_id="DeleteModel", status_code=204, responses=problems(403, 409))
    async def delete_model(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> None:
        """Delete the model and every version (its owner; refused while it has aliases)."""
        audit_object(request, (await model_service.delete(principal, name)).id)

    @get("/{name:str}/versions/{version:int}", operation_id="GetModelVersion")
    async def get_version(
        self,
        name: FromPath[str],
        version: FromPath[Version],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> ModelVersionOut:
        """One version: its input and output schema, task, classes, metrics and aliases."""
        asset = await model_service.model(principal, name)
        return version_out(await model_service.version(principal, asset, version))

    @patch("/{name:str}/versions/{version:int}", operation_id="UpdateModelVersion", responses=problems(403))
    async def update_version(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        version: FromPath[Version],
        data: JSONBody[VersionChangesIn],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> ModelVersionOut:
        """Change a version's description or tags."""
        view = await model_service.update_version(
            principal, name, version, description=data.description, tags=data.tags
        )
        audit_object(request, view.asset.id)
        return version_out(view)

    @delete_route(
        "/{name:str}/versions/{version:int}",
        operation_id="DeleteModelVersion",
        status_code=204,
        responses=problems(403, 409),
    )
    async def delete_version(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        version: FromPath[Version],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> None:
        """Delete a version (refused while an alias points at it)."""
        audit_object(request, (await model_service.delete_version(principal, name, version)).id)

    @get(
        "/{name:str}/versions/{version:int}/export",
        operation_id="ExportModelVersion",
        responses=problems(409),
    )
    async def export_version(
        self,
        name: FromPath[str],
        version: FromPath[Version],
        principal: NamedDependency[Principal],
        model_importer: NamedDependency[ModelImporter],
        format: Annotated[str, QueryParameter(pattern="^(?:skops|onnx)$")] = "skops",
    ) -> Response[bytes]:
        """The fitted model as a skops file (or ONNX, where skl2onnx is installed and can
        convert it: 409 otherwise)."""
        data, filename = await model_importer.export(principal, name, version, format)
        return Response(
            content=data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @put("/{name:str}/aliases/{alias:str}", operation_id="SetModelAlias", responses=problems(403))
    async def set_alias(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        alias: FromPath[Alias],
        data: JSONBody[AliasIn],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> ModelVersionOut:
        """Point the alias (``champion``, ``challenger``, any name) at a version, atomically."""
        view = await model_service.set_alias(principal, name, alias, data.version)
        audit_object(request, view.asset.id)
        return version_out(view)

    @delete_route(
        "/{name:str}/aliases/{alias:str}",
        operation_id="DeleteModelAlias",
        status_code=204,
        responses=problems(403),
    )
    async def delete_alias(
        self,
        request: Request[Any, Any, Any],
        name: FromPath[str],
        alias: FromPath[Alias],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> None:
        """Remove the alias."""
        audit_object(request, (await model_service.delete_alias(principal, name, alias)).id)

    @get("/{name:str}/aliases/{alias:str}", operation_id="GetModelVersionByAlias")
    async def get_by_alias(
        self,
        name: FromPath[str],
        alias: FromPath[str],
        principal: NamedDependency[Principal],
        model_service: NamedDependency[ModelService],
    ) -> ModelVersionOut:
        """The version the alias points at (``latest``: the newest version)."""
        asset = await model_service.model(principal, name)
        return version_out(await model_service.resolve(principal, f"{asset.id}@{alias}"))

    @post(
        "/{name:str}/aliases/{alias:str}/predict",
        operation_id="PredictByAlias",
        status_code=200,
        opt={"read_only": True},  # a prediction changes nothing: not an audited write
    )
    async def predict_by_alias(
        self,
        name: FromPath[str],
        alias: FromPath[str],
        data: JSONBody[PredictIn],
        principal: NamedDependency[Principal],
        online_predictor: NamedDependency[OnlinePredictor],
    ) -> PredictOut:
        """Predictions for ``rows`` (in row order) by the version the alias points at; each row
        is checked against the model's input schema (422 names a missing or mistyped column)."""
        return predict_out(await online_predictor.predict(principal, name, data.rows, alias=alias))

    @post(
        "/{name:str}/versions/{version:int}/predict",
        operation_id="PredictByVersion",
        status_code=200,
        opt={"read_only": True},
    )
    async def predict_by_version(
        self,
        name: FromPath[str],
        version: FromPath[Version],
        data: JSONBody[PredictIn],
        principal: NamedDependency[Principal],
        online_predictor: NamedDependency[OnlinePredictor],
    ) -> PredictOut:
        """Predictions for ``rows`` by one version."""
        return predict_out(await online_predictor.predict(principal, name, data.rows, version=version))


def provide_model_service(request: Request[Any, Any, Any]) -> ModelService:
    service: ModelService = request.app.state.container.models
    return service


def provide_online_predictor(request: Request[Any, Any, Any]) -> OnlinePredictor:
    predictor: OnlinePredictor = request.app.state.container.predictor
    return predictor


def provide_model_importer(request: Request[Any, Any, Any]) -> ModelImporter:
    importer: ModelImporter = request.app.state.container.model_importer
    return importer
