"""The MLflow artifact proxy (``/api/2.0/mlflow-artifacts``) and the run-relative listing.

What ``MlflowArtifactsRepository`` clients call (``docs/mlflow-protocol.md`` §4): a raw PUT per
file, a GET per file, a one-level listing by ``?path=``. Paths are relative to the artifact
service's root (``<experiment>/<run>/artifacts/<file>``, ``<experiment>/models/<model>/artifacts/
<file>``: ``studio9.tracking.artifacts``); those under ``registry/`` are Studio9 model versions'
files, laid out as MLflow model directories (``registry_files``). Multipart and presigned
transfers are not offered: server-info says so, and the routes answer with the exact message on
which clients fall back to plain requests.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import AsyncIterator
from typing import Any, Final
from urllib.parse import quote

from litestar import Request, Response, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation
from litestar.response import Stream

from studio9.auth.domain import Principal
from studio9.files.ports import BlobStore
from studio9.ml.service import ModelService
from studio9.tracking.artifacts import ArtifactFile, ArtifactService, safe_segments
from studio9.tracking.mlflow_face.protocol import (
    NOT_IMPLEMENTED,
    MlflowError,
    error,
    fields,
    ok,
    required,
    text,
)
from studio9.tracking.mlflow_face.registry_files import (
    REGISTRY_SEGMENT,
    list_registry_files,
    open_registry_file,
)
from studio9.tracking.service import TrackingService

ARTIFACTS: Final = "/api/2.0/mlflow-artifacts/artifacts"
MPU: Final = "/api/2.0/mlflow-artifacts/mpu"
PRESIGNED: Final = "/api/2.0/mlflow-artifacts/presigned"
#: Clients fall back to a plain PUT only when the message starts with exactly this.
MULTIPART_UNSUPPORTED: Final = "Multipart upload is not supported for the current artifact repository"
#: Largest artifact file when the settings say nothing (MLflow's own single-PUT limit).
DEFAULT_MAX_ARTIFACT_BYTES: Final = 5 << 30
_OPT: Final = {"audit": False}
_FALLBACK_TYPE: Final = "application/octet-stream"


@put(
    f"{ARTIFACTS}/{{path:path}}",
    include_in_schema=False,
    opt=_OPT,
    status_code=200,
    request_max_body_size=None,  # the limit is checked below, on the bytes as they arrive
)
async def upload_artifact(
    request: Request[Any, Any, Any],
    path: FromPath[str],
    principal: NamedDependency[Principal],
    artifact_service: NamedDependency[ArtifactService],
) -> Response[bytes]:
    limit = _upload_limit(request)
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    await artifact_service.put(principal, _relative(path), _capped(request.stream(), limit))
    return ok()  # the reference answers an empty 200; {} also satisfies 2.x clients


@get(f"{ARTIFACTS}/{{path:path}}", include_in_schema=False)
async def download_artifact(
    path: FromPath[str],
    principal: NamedDependency[Principal],
    artifact_service: NamedDependency[ArtifactService],
    model_service: NamedDependency[ModelService],
    blob_store: NamedDependency[SkipValidation[BlobStore]],
) -> Stream:
    relative = _relative(path)
    segments = safe_segments(relative)
    headers = {
        # Lower-case names: Litestar only fills in a header it does not find as such.
        "content-type": mimetypes.guess_type(segments[-1])[0] or _FALLBACK_TYPE,
        "content-disposition": _attachment(segments[-1]),
        "x-content-type-options": "nosniff",
    }
    if segments[0] == REGISTRY_SEGMENT:
        chunks, media_type = await open_registry_file(
            model_service, blob_store, principal, "/".join(segments[1:])
        )
        return Stream(chunks, headers={**headers, "content-type": media_type})
    content = await artifact_service.open(principal, relative)
    return Stream(content.chunks, headers={**headers, "content-length": str(content.size)})


@get(ARTIFACTS, include_in_schema=False)
async def list_artifacts(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    artifact_service: NamedDependency[ArtifactService],
    model_service: NamedDependency[ModelService],
    blob_store: NamedDependency[SkipValidation[BlobStore]],
) -> Response[bytes]:
    """One level of ``?path=``: ``{"files": [...]}`` with base names; ``{}`` when there is nothing
    (no such directory, a file, or no path: Studio9 has no listable root)."""
    path = text(await fields(request), "path") or ""
    if not path:
        return ok()
    segments = safe_segments(path.rstrip("/") or path)  # "/" is absolute: refused, as by MLflow
    if segments[0] == REGISTRY_SEGMENT:
        files = await list_registry_files(model_service, blob_store, principal, "/".join(segments[1:]))
    else:
        files = await artifact_service.list(principal, path)
    return ok({"files": [_file_json(f) for f in files]} if files else None)


@delete(f"{ARTIFACTS}/{{path:path}}", include_in_schema=False, status_code=200)
async def delete_artifact(
    path: FromPath[str],
    principal: NamedDependency[Principal],
    artifact_service: NamedDependency[ArtifactService],
) -> Response[bytes]:
    await artifact_service.delete(principal, _relative(path))
    return ok()


@post(
    [f"{MPU}/create/{{path:path}}", f"{MPU}/complete/{{path:path}}", f"{MPU}/abort/{{path:path}}"],
    include_in_schema=False,
    status_code=200,
)
async def multipart_upload(path: FromPath[str]) -> Response[bytes]:
    return error(NOT_IMPLEMENTED, MULTIPART_UNSUPPORTED, 501)


@get(f"{PRESIGNED}/{{path:path}}", include_in_schema=False)
async def presigned_download(path: FromPath[str]) -> Response[bytes]:
    return error(NOT_IMPLEMENTED, "Presigned URLs are not supported for the current artifact repository", 501)


@get(["/api/2.0/mlflow/artifacts/list", "/ajax-api/2.0/mlflow/artifacts/list"], include_in_schema=False)
async def list_run_artifacts(
    request: Request[Any, Any, Any],
    principal: NamedDependency[Principal],
    tracking_service: NamedDependency[TrackingService],
    artifact_service: NamedDependency[ArtifactService],
) -> Response[bytes]:
    """The run-based listing (the UI's): paths relative to the run's artifact root."""
    found = await fields(request)
    run_id = text(found, "run_id") or text(found, "run_uuid") or required(found, "run_id")
    path = (text(found, "path") or "").strip("/")
    run = (await tracking_service.run(principal, run_id)).run
    root = f"{run.experiment_id}/{run.id}/artifacts"
    files = await artifact_service.list(principal, f"{root}/{path}" if path else root) or []
    listed = [{**_file_json(f), "path": posixpath.join(path, f.path) if path else f.path} for f in files]
    return ok({"root_uri": run.artifact_uri, "files": listed} if listed else {"root_uri": run.artifact_uri})


# -- helpers --------------------------------------------------------------------------------------


def _relative(path: str) -> str:
    """The artifact path of a ``{path:path}`` parameter (Litestar keeps its leading ``/``)."""
    return path[1:] if path.startswith("/") else path


def _upload_limit(request: Request[Any, Any, Any]) -> int:
    settings = getattr(getattr(request.app.state, "container", None), "settings", None)
    limit = getattr(settings, "max_upload_bytes", None)
    return limit if isinstance(limit, int) else DEFAULT_MAX_ARTIFACT_BYTES


def _too_large(limit: int) -> MlflowError:
    return MlflowError(f"artifact is larger than the upload limit of {limit} bytes")


async def _capped(chunks: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    """``chunks``, failing once more than ``limit`` bytes came (the store then keeps nothing)."""
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        yield chunk


def _file_json(file: ArtifactFile) -> dict[str, Any]:
    if file.is_dir or file.file_size is None:
        return {"path": file.path, "is_dir": file.is_dir}
    return {"path": file.path, "is_dir": False, "file_size": file.file_size}


def _attachment(name: str) -> str:
    """A Content-Disposition for ``name``: an ASCII fallback plus the exact UTF-8 name."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


ROUTES = [
    upload_artifact,
    download_artifact,
    list_artifacts,
    delete_artifact,
    multipart_upload,
    presigned_download,
    list_run_artifacts,
]
