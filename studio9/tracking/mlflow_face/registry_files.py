"""A Studio9 model version as an MLflow model directory, at the artifact path
``registry/<model asset id>/<version>/`` (``mlflow-artifacts:/registry/...``, the download URI
the MLflow face hands out for versions Studio9 trained or imported).

The directory is what ``mlflow.sklearn.log_model`` writes with ``serialization_format="skops"``
(``docs/mlflow-protocol.md`` §6), made on the fly from the version, never stored:

- ``model.skops``: the version's own skops file, streamed from the blob store;
- ``MLmodel``: the ``python_function`` and ``sklearn`` flavors; ``skops_trusted_types`` lists
  every type of the file skops does not trust by default (the MLflow loader passes it to
  ``skops.io.load``), and ``signature`` the input schema where MLflow has a type for each column;
- ``requirements.txt``, ``python_env.yaml``, ``conda.yaml``: scikit-learn as the version was
  fitted with, skops, numpy and pandas as this server has them (and ``studio9`` when the file
  names Studio9's own preprocessing functions: the loader imports them).

Every file is the same bytes on every request (sizes in listings match downloads). Reading them
needs read access to the model; a version that is not a skops file has no such directory (its
MLflow files are where it was registered from).
"""

from __future__ import annotations

import importlib
import json
import platform
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from datetime import UTC
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed
from typing import Any, Final

import anyio.to_thread
import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import AssetKind, AssetNotFound
from studio9.errors import InvalidInput, NotFound
from studio9.files.ports import BlobStore
from studio9.ml.content import MODEL_FILE, ModelContent, one_chunk
from studio9.ml.domain import ModelSource, ModelVersionNotFound
from studio9.ml.service import ModelService, ModelVersionView
from studio9.tracking.artifacts import ArtifactFile

#: The first segment of artifact paths that name registry model files, not experiment artifacts.
REGISTRY_SEGMENT: Final = "registry"
#: The MLflow release whose model layout the directory follows.
MLFLOW_VERSION: Final = "3.17.2"
MLMODEL: Final = "MLmodel"
FILES: Final = (MLMODEL, MODEL_FILE, "requirements.txt", "python_env.yaml", "conda.yaml")
_TEXT: Final = "text/plain; charset=utf-8"
_YAML: Final = "application/x-yaml"
#: Studio9 column type -> MLflow column type (``date`` has none: no signature then).
_MLFLOW_TYPES: Final = {"float": "double", "string": "string", "boolean": "boolean", "timestamp": "datetime"}
#: Trusted-type lists per skops file (blob keys are never rewritten), kept per process.
_TRUSTED_CACHE: OrderedDict[str, tuple[str, ...]] = OrderedDict()
_TRUSTED_CACHE_SIZE: Final = 256


def registry_uri(asset_id: str, version: int) -> str:
    """The MLflow download URI of a Studio9 model version's directory."""
    return f"mlflow-artifacts:/{REGISTRY_SEGMENT}/{asset_id}/{version}"


async def list_registry_files(
    models: ModelService, blobs: BlobStore, actor: Principal, path: str
) -> list[ArtifactFile] | None:
    """One level of ``registry/<path>`` (None: no such directory). Read access to the model.

    ``<id>`` lists the model's versions, ``<id>/<version>`` the directory's files, and
    ``<id>/<version>/<file>`` that file alone (MLflow's client then takes the path as a file)."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) == 1:
        asset = await _model(models, actor, parts[0])
        if asset is None:
            return None
        versions = await models.registry.versions(asset.id)
        return [ArtifactFile(str(v.version), True) for v in versions]
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in FILES):
        return None
    view = await _version(models, actor, parts[0], parts[1])
    if view is None:
        return None
    directory = await _directory(blobs, view)
    names = FILES if len(parts) == 2 else (parts[2],)
    return [ArtifactFile(name, False, directory.size(name)) for name in names]


async def open_registry_file(
    models: ModelService, blobs: BlobStore, actor: Principal, path: str
) -> tuple[AsyncIterator[bytes], str]:
    """The file ``registry/<path>`` and its media type. Raises NotFound."""
    parts = [p for p in path.strip("/").split("/") if p]
    missing = NotFound(f"No such artifact: '{REGISTRY_SEGMENT}/{path}'")
    if len(parts) != 3 or parts[2] not in FILES:
        raise missing
    view = await _version(models, actor, parts[0], parts[1])
    if view is None:
        raise missing
    if parts[2] == MODEL_FILE:
        return await blobs.open(view.content.artifact), "application/octet-stream"
    directory = await _directory(blobs, view)
    media = _TEXT if parts[2] == "requirements.txt" else _YAML
    return one_chunk(directory.texts[parts[2]]), media


# -- the directory ------------------------------------------------------------------------------


@attrs.frozen
class _Directory:
    texts: Mapping[str, bytes]
    model_size: int

    def size(self, name: str) -> int:
        return self.model_size if name == MODEL_FILE else len(self.texts[name])


async def _model(models: ModelService, actor: Principal, asset_id: str) -> Any:
    try:
        asset = await models.catalog.get(actor, asset_id)
    except (AssetNotFound, InvalidInput):
        return None
    return asset if asset.kind is AssetKind.MODEL else None


async def _version(
    models: ModelService, actor: Principal, asset_id: str, written: str
) -> ModelVersionView | None:
    if not written.isdigit():
        return None
    asset = await _model(models, actor, asset_id)
    if asset is None:
        return None
    try:
        view = await models.version(actor, asset, int(written))
    except ModelVersionNotFound:
        return None
    return view if view.content.format == "skops" else None


async def _directory(blobs: BlobStore, view: ModelVersionView) -> _Directory:
    key = view.content.artifact
    trusted = _TRUSTED_CACHE.get(key)
    if trusted is None:
        data = b"".join([chunk async for chunk in await blobs.open(key)])
        trusted = await anyio.to_thread.run_sync(_untrusted_types, data)
        _TRUSTED_CACHE[key] = trusted
        while len(_TRUSTED_CACHE) > _TRUSTED_CACHE_SIZE:
            _TRUSTED_CACHE.popitem(last=False)
    else:
        _TRUSTED_CACHE.move_to_end(key)
    size = await blobs.size(key)
    return _Directory(texts=model_texts(view, trusted), model_size=size)


def _untrusted_types(data: bytes) -> tuple[str, ...]:
    import skops.io

    return tuple(sorted(skops.io.get_untrusted_types(data=data)))


def model_texts(view: ModelVersionView, trusted: tuple[str, ...]) -> dict[str, bytes]:
    """The directory's text files for the version whose skops file holds the ``trusted`` types."""
    yaml: Any = importlib.import_module("yaml")  # PyYAML comes with Litestar; it has no type hints
    content = view.content
    python = platform.python_version()
    sklearn_version = content.sklearn_version or _installed("scikit-learn")
    requirements = [
        f"scikit-learn=={sklearn_version}" if sklearn_version else "scikit-learn",
        *(_pinned(name) for name in ("skops", "numpy", "pandas")),
    ]
    if any(t.startswith("studio9.") for t in trusted):
        requirements.append(_pinned("studio9"))
    created = view.version.created_at.astimezone(UTC)
    mlmodel: dict[str, Any] = {
        "artifact_path": registry_uri(view.asset.id, view.version.version),
        "flavors": {
            "python_function": {
                "env": {"conda": "conda.yaml", "virtualenv": "python_env.yaml"},
                "loader_module": "mlflow.sklearn",
                "model_path": MODEL_FILE,
                "predict_fn": "predict",
                "python_version": python,
            },
            "sklearn": {
                "code": None,
                "pickled_model": MODEL_FILE,
                "serialization_format": "skops",
                "sklearn_version": sklearn_version,
                "skops_trusted_types": list(trusted),
            },
        },
        "mlflow_version": MLFLOW_VERSION,
        "model_uuid": uuid.uuid5(uuid.NAMESPACE_URL, f"studio9:{view.asset.id}:{view.version.version}").hex,
        "utc_time_created": created.strftime("%Y-%m-%d %H:%M:%S.%f"),
    }
    if view.info.run_id:
        mlmodel["run_id"] = view.info.run_id
    # Only a trained version's schema is exact (an imported file's numbers are all "float": a
    # guess that would make MLflow refuse integer columns).
    inputs = signature_inputs(content) if view.info.source is ModelSource.TRAINING else None
    if inputs is not None:
        mlmodel["signature"] = {"inputs": inputs, "outputs": None, "params": None}
    python_env = {
        "python": python,
        "build_dependencies": ["pip", "setuptools", "wheel"],
        "dependencies": ["-r requirements.txt"],
    }
    conda = {
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": requirements}],
        "name": "mlflow-env",
    }

    def dump(document: Mapping[str, Any]) -> bytes:
        text: str = yaml.safe_dump(dict(document), default_flow_style=False, sort_keys=True)
        return text.encode()

    return {
        MLMODEL: dump(mlmodel),
        "requirements.txt": ("\n".join(requirements) + "\n").encode(),
        "python_env.yaml": dump(python_env),
        "conda.yaml": dump(conda),
    }


def signature_inputs(content: ModelContent) -> str | None:
    """MLflow's input schema (a JSON string) for the version's columns, as MLflow infers it from
    the frame the model was fitted on: integers are ``long``, or ``double`` where training saw a
    null (pandas holds them as floats then). None where a column has no MLflow type."""
    columns = []
    for column in content.input_schema:
        kind, nullable = column.get("type"), bool(column.get("nullable"))
        if kind == "integer":
            mlflow_type = "double" if nullable else "long"
        elif isinstance(kind, str) and kind in _MLFLOW_TYPES:
            mlflow_type = _MLFLOW_TYPES[kind]
        else:
            return None
        columns.append({"type": mlflow_type, "name": str(column.get("name")), "required": not nullable})
    return json.dumps(columns) if columns else None


def _installed(package: str) -> str | None:
    try:
        return installed(package)
    except PackageNotFoundError:
        return None


def _pinned(package: str) -> str:
    found = _installed(package)
    return package if found is None else f"{package}=={found}"
