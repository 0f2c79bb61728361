"""The MLflow face's model registry routes (``/api/2.0/mlflow/registered-models/*``,
``/api/2.0/mlflow/model-versions/*``; ``docs/mlflow-protocol.md`` §3.3) over Studio9's model
registry: see ``studio9.tracking.mlflow_face.registry`` for the mapping and where it differs
from MLflow's server."""

from __future__ import annotations

from typing import Any, Final

from litestar import Request, Response, delete, get, patch, post, route
from litestar.di import NamedDependency
from litestar.params import SkipValidation

from studio9.auth.domain import Principal
from studio9.files.ports import BlobStore
from studio9.ml.imports import ModelImporter
from studio9.tracking.mlflow_face.protocol import fields, integer, key_values, ok, strings, text
from studio9.tracking.mlflow_face.registry import RegistryFace, download_uri, version_json
from studio9.tracking.mlflow_face.registry_search import (
    MODELS_DEFAULT,
    MODELS_MAX,
    VERSIONS_DEFAULT,
    VERSIONS_MAX,
    check_page_size,
    search_models,
    search_versions,
)
from studio9.tracking.mlflow_face.registry_sources import create_version
from studio9.tracking.service import TrackingService

MLFLOW: Final = "/api/2.0/mlflow"
AJAX: Final = "/ajax-api/2.0/mlflow"
Req = Request[Any, Any, Any]


def _paths(suffix: str) -> list[str]:
    return [f"{MLFLOW}/{suffix}", f"{AJAX}/{suffix}"]


def provide_registry_face(request: Req) -> RegistryFace:
    """The registry as the MLflow face maps it (a dependency of its routes)."""
    container = request.app.state.container
    return RegistryFace(models=container.models, catalog=container.catalog, tags=container.experiments.store)


def _name(found: dict[str, Any]) -> str:
    return text(found, "name", need=True) or ""


# -- registered models ----------------------------------------------------------------------------


@post(_paths("registered-models/create"), include_in_schema=False, status_code=200)
async def create_registered_model(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    made = await registry_face.create(
        principal,
        text(found, "name"),
        tags=key_values(found, "tags"),
        description=text(found, "description", default="") or "",
    )
    return ok({"registered_model": made})


@get(_paths("registered-models/get"), include_in_schema=False)
async def get_registered_model(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    return ok({"registered_model": await registry_face.get(principal, _name(found))})


@get(_paths("registered-models/search"), include_in_schema=False)
async def search_registered_models(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    answer = await search_models(
        registry_face,
        principal,
        filter=text(found, "filter"),
        max_results=check_page_size(integer(found, "max_results", default=MODELS_DEFAULT) or 0, MODELS_MAX),
        order_by=strings(found, "order_by"),
        page_token=text(found, "page_token"),
    )
    return ok(answer)


@post(_paths("registered-models/rename"), include_in_schema=False, status_code=200)
async def rename_registered_model(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    renamed = await registry_face.rename(principal, _name(found), text(found, "new_name"))
    return ok({"registered_model": renamed})


@patch(_paths("registered-models/update"), include_in_schema=False, status_code=200)
async def update_registered_model(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    updated = await registry_face.update(principal, _name(found), text(found, "description"))
    return ok({"registered_model": updated})


@delete(_paths("registered-models/delete"), include_in_schema=False, status_code=200)
async def delete_registered_model(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    await registry_face.delete(principal, _name(found))
    return ok()


@post(_paths("registered-models/set-tag"), include_in_schema=False, status_code=200)
async def set_registered_model_tag(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    key, value = text(found, "key", need=True) or "", text(found, "value", default="") or ""
    await registry_face.set_tag(principal, _name(found), key, value)
    return ok()


@delete(_paths("registered-models/delete-tag"), include_in_schema=False, status_code=200)
async def delete_registered_model_tag(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    await registry_face.delete_tag(principal, _name(found), text(found, "key", need=True) or "")
    return ok()


@route(
    _paths("registered-models/get-latest-versions"),
    http_method=["GET", "POST"],
    include_in_schema=False,
    status_code=200,
)
async def get_latest_versions(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    versions = await registry_face.latest_versions(principal, _name(found), strings(found, "stages"))
    return ok({"model_versions": versions} if versions else None)


# -- aliases --------------------------------------------------------------------------------------


@route(
    _paths("registered-models/alias"),
    http_method=["GET", "POST", "DELETE"],
    include_in_schema=False,
    status_code=200,
)
async def registered_model_alias(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    name, alias = _name(found), text(found, "alias", need=True) or ""
    if request.method == "GET":
        return ok({"model_version": version_json(await registry_face.alias(principal, name, alias))})
    if request.method == "POST":
        await registry_face.set_alias(principal, name, alias, text(found, "version", need=True))
    else:
        await registry_face.delete_alias(principal, name, alias)
    return ok()


# -- model versions -------------------------------------------------------------------------------


@post(_paths("model-versions/create"), include_in_schema=False, status_code=200)
async def create_model_version(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
    tracking_service: NamedDependency[TrackingService],
    model_importer: NamedDependency[ModelImporter],
    blob_store: NamedDependency[SkipValidation[BlobStore]],
) -> Response[bytes]:
    found = await fields(request)
    view = await create_version(
        registry_face,
        tracking_service,
        model_importer,
        blob_store,
        principal,
        name=_name(found),
        source=text(found, "source", need=True) or "",
        run_id=text(found, "run_id") or None,
        model_id=text(found, "model_id") or None,
        description=text(found, "description", default="") or "",
        tags=key_values(found, "tags"),
    )
    return ok({"model_version": version_json(view)})


@get(_paths("model-versions/get"), include_in_schema=False)
async def get_model_version(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    view = await registry_face.version(principal, _name(found), text(found, "version", need=True))
    return ok({"model_version": version_json(view)})


@get(_paths("model-versions/get-download-uri"), include_in_schema=False)
async def get_download_uri(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    view = await registry_face.version(principal, _name(found), text(found, "version", need=True))
    return ok({"artifact_uri": download_uri(view)})


@patch(_paths("model-versions/update"), include_in_schema=False, status_code=200)
async def update_model_version(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    updated = await registry_face.update_version(
        principal, _name(found), text(found, "version", need=True), text(found, "description")
    )
    return ok({"model_version": updated})


@delete(_paths("model-versions/delete"), include_in_schema=False, status_code=200)
async def delete_model_version(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    await registry_face.delete_version(principal, _name(found), text(found, "version", need=True))
    return ok()


@post(_paths("model-versions/set-tag"), include_in_schema=False, status_code=200)
async def set_model_version_tag(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    await registry_face.set_version_tag(
        principal,
        _name(found),
        text(found, "version", need=True),
        text(found, "key", need=True) or "",
        text(found, "value", default=""),
    )
    return ok()


@delete(_paths("model-versions/delete-tag"), include_in_schema=False, status_code=200)
async def delete_model_version_tag(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    await registry_face.delete_version_tag(
        principal, _name(found), text(found, "version", need=True), text(found, "key", need=True) or ""
    )
    return ok()


@get(_paths("model-versions/search"), include_in_schema=False)
async def search_model_versions(
    request: Req,
    principal: NamedDependency[Principal],
    registry_face: NamedDependency[RegistryFace],
) -> Response[bytes]:
    found = await fields(request)
    answer = await search_versions(
        registry_face,
        principal,
        filter=text(found, "filter"),
        max_results=check_page_size(
            integer(found, "max_results", default=VERSIONS_DEFAULT) or 0, VERSIONS_MAX
        ),
        order_by=strings(found, "order_by"),
        page_token=text(found, "page_token"),
    )
    return ok(answer)


ROUTES: list[Any] = [
    create_registered_model,
    get_registered_model,
    search_registered_models,
    rename_registered_model,
    update_registered_model,
    delete_registered_model,
    set_registered_model_tag,
    delete_registered_model_tag,
    get_latest_versions,
    registered_model_alias,
    create_model_version,
    get_model_version,
    get_download_uri,
    update_model_version,
    delete_model_version,
    set_model_version_tag,
    delete_model_version_tag,
    search_model_versions,
]
