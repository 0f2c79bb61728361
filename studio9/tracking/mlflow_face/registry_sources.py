"""``model-versions/create`` from an MLflow source: the files a client logged become a Studio9
model version (``docs/mlflow-protocol.md`` §2.5, §3.3).

The sources MLflow clients send:

- 2.x: ``mlflow-artifacts:/<exp>/<run>/artifacts/<dir>`` with ``run_id``; it must lie inside
  that run's artifacts;
- 3.x: ``models:/<logged model id>`` with ``model_id`` and no ``run_id``: the run is the logged
  model's source run, the files its ``artifact_location``.

The caller needs read access to the experiment holding the files and write access to the model.
The ``MLmodel`` file says what the files are:

- a scikit-learn model saved with skops (3.17+ clients): the file is loaded with Studio9's
  trusted-types check (a type neither skops nor Studio9 trusts is refused, naming it) and
  becomes a servable version, its skops file copied under the model (so it lives as long as the
  version, whatever happens to the run);
- anything else (pickle or cloudpickle, which 2.x clients write; other flavors): registered as
  it is, never loaded, and never served (``studio9.ml.serving.require_servable`` says why). An
  MLflow client still loads it from where it was logged.

Either way the version keeps its MLflow origin (``training.mlflow``: source, storage, run,
logged model), the download URI MLflow clients get, and the experiment asset is recorded as
its lineage input.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlparse

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Access
from studio9.files.domain import BlobNotFound
from studio9.files.ports import BlobStore
from studio9.ml.content import ModelContent
from studio9.ml.domain import ModelSource, check_version_description, check_version_tags
from studio9.ml.imports import MAX_MODEL_BYTES, ModelImporter
from studio9.ml.service import ModelVersionView
from studio9.tracking.artifacts import encode_segment, experiment_prefix
from studio9.tracking.domain import LOGGED_MODEL_ID_PATTERN, artifact_root
from studio9.tracking.mlflow_face.protocol import MlflowError
from studio9.tracking.mlflow_face.registry import RegistryFace
from studio9.tracking.service import TrackingService, run_artifact_uri

MODELS_SCHEME: Final = "models:/"
ARTIFACTS_SCHEME: Final = "mlflow-artifacts:"
MAX_MLMODEL_BYTES: Final = 1024 * 1024
#: MLflow column types -> Studio9's (what the version's input schema says, for people to read).
_STUDIO9_TYPES: Final = {
    "double": "float",
    "float": "float",
    "long": "integer",
    "integer": "integer",
    "boolean": "boolean",
    "string": "string",
    "datetime": "timestamp",
}


@attrs.frozen(kw_only=True)
class Origin:
    """Where a model version's MLflow files are."""

    source: str
    experiment_id: str
    #: The directory as MLflow clients address it (what ``get-download-uri`` answers).
    storage: str
    #: The directory's blob key, without a trailing ``/``.
    key: str
    run_id: str | None
    model_id: str | None

    def file_key(self, name: str) -> str:
        """The blob key of the directory's file ``name`` (a relative path)."""
        return "/".join([self.key, *(encode_segment(s) for s in name.split("/"))])

    def training(self) -> dict[str, Any]:
        return {
            "mlflow": {
                "source": self.source,
                "storage": self.storage,
                "experiment_id": self.experiment_id,
                "run_id": self.run_id,
                "model_id": self.model_id,
            }
        }


async def create_version(
    face: RegistryFace,
    tracking: TrackingService,
    importer: ModelImporter,
    blobs: BlobStore,
    actor: Principal,
    *,
    name: str,
    source: str,
    run_id: str | None,
    model_id: str | None,
    description: str,
    tags: Mapping[str, str],
) -> ModelVersionView:
    """The model's next version, from the MLflow files at ``source``."""
    model = await face.model(actor, name)
    await face.catalog.writable(actor, model.id)
    clean_tags = check_version_tags(tags)
    clean_description = check_version_description(description)
    origin = await locate(tracking, actor, source, run_id=run_id, model_id=model_id)
    mlmodel = await _mlmodel(blobs, origin)
    found = mlmodel.get("flavors")
    flavors: dict[str, Any] = found if isinstance(found, dict) else {}
    sklearn = flavors.get("sklearn") if isinstance(flavors.get("sklearn"), dict) else None
    if sklearn is not None and sklearn.get("serialization_format") == "skops":
        data = await _read(blobs, origin, _file_name(sklearn.get("pickled_model")))
        content = await importer.describe(data)
        view = await importer.store_skops(
            actor,
            model,
            data,
            content,
            source=ModelSource.MLFLOW,
            run_id=origin.run_id,
            training=origin.training(),
            description=clean_description,
            tags=clean_tags,
        )
    else:
        view = await importer.add_version(
            actor,
            model,
            _unloaded(mlmodel, flavors, sklearn, origin),
            source=ModelSource.MLFLOW,
            run_id=origin.run_id,
            description=clean_description,
            tags=clean_tags,
        )
    await face.catalog.record_lineage(
        job_id=None, inputs=[(origin.experiment_id, 1)], outputs=[(model.id, view.version.version)]
    )
    return view


async def locate(
    tracking: TrackingService, actor: Principal, source: str, *, run_id: str | None, model_id: str | None
) -> Origin:
    """Where ``source`` is, checked against the run or logged model it must lie in. Raises 400
    for a source Studio9 cannot read, RunNotFound and LoggedModelNotFound (404)."""
    if source.startswith(MODELS_SCHEME):
        named = source[len(MODELS_SCHEME) :]
        if not LOGGED_MODEL_ID_PATTERN.fullmatch(named) or (model_id and model_id != named):
            raise _invalid(source, "a models:/ source names the logged model given as model_id")
        logged = await tracking.logged_model(actor, named, Access.READ)
        return _origin(
            source, logged.experiment_id, logged.artifact_location, logged.source_run_id or run_id, named
        )
    if not source.startswith(ARTIFACTS_SCHEME):
        raise _invalid(source, "Studio9 registers models from mlflow-artifacts:/ and models:/ sources")
    segments = unquote(urlparse(source).path).strip("/").split("/")
    if any(s in ("", ".", "..") or "\\" in s for s in segments):
        raise _invalid(source, "it is not a plain path")
    path = f"{ARTIFACTS_SCHEME}/{'/'.join(segments)}"
    if model_id:
        logged = await tracking.logged_model(actor, model_id, Access.READ)
        experiment, root, run = logged.experiment_id, logged.artifact_location, logged.source_run_id or run_id
    elif run_id:
        experiment = await tracking.experiment_of_run(actor, run_id, Access.READ)
        root, run = run_artifact_uri(experiment, run_id), run_id
    else:
        raise _invalid(source, "an mlflow-artifacts:/ source needs the run_id (or model_id) it belongs to")
    if path != root and not path.startswith(root + "/"):
        raise _invalid(source, f"it is not inside {root}")
    return _origin(source, experiment, path, run, model_id or None)


def _origin(
    source: str, experiment_id: str, storage: str, run_id: str | None, model_id: str | None
) -> Origin:
    relative = storage.removeprefix(artifact_root(experiment_id)).strip("/")
    return Origin(
        source=source,
        experiment_id=experiment_id,
        storage=storage,
        key=experiment_prefix(experiment_id) + "/".join(encode_segment(s) for s in relative.split("/")),
        run_id=run_id,
        model_id=model_id,
    )


def _invalid(source: str, why: str) -> MlflowError:
    return MlflowError(f"Invalid model version source: '{source}': {why}.")


async def _read(blobs: BlobStore, origin: Origin, name: str, limit: int = MAX_MODEL_BYTES) -> bytes:
    key = origin.file_key(name)
    try:
        if await blobs.size(key) > limit:
            raise MlflowError(f"{name} under {origin.storage} is larger than {limit} bytes")
        return b"".join([chunk async for chunk in await blobs.open(key)])
    except BlobNotFound:
        raise MlflowError(
            f"Invalid model version source: '{origin.source}': there is no {name} under {origin.storage}; "
            "log the model's files before registering it."
        ) from None


async def _mlmodel(blobs: BlobStore, origin: Origin) -> dict[str, Any]:
    yaml: Any = importlib.import_module("yaml")  # PyYAML comes with Litestar; it has no type hints
    raw = await _read(blobs, origin, "MLmodel", MAX_MLMODEL_BYTES)
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError:
        document = None
    if not isinstance(document, dict):
        raise MlflowError(f"the MLmodel file under {origin.storage} is not an MLflow model description")
    return document


def _file_name(written: object) -> str:
    """A model file named by MLmodel: a plain name inside the model directory."""
    name = written if isinstance(written, str) and written else "model.skops"
    if any(part in ("", ".", "..") for part in name.split("/")) or name.startswith("/") or "\\" in name:
        raise MlflowError(f"MLmodel names the model file {name!r}, which is not inside its directory")
    return name


def _unloaded(
    mlmodel: Mapping[str, Any], flavors: Mapping[str, Any], sklearn: Mapping[str, Any] | None, origin: Origin
) -> ModelContent:
    """The content of a version Studio9 registers without loading it: its format, its file, and
    the columns its signature names (if it has one)."""
    if sklearn is not None:
        found = sklearn.get("serialization_format")
        fmt = found if isinstance(found, str) and found else "pickle"  # MLflow's default
        artifact = origin.file_key(_file_name(sklearn.get("pickled_model")))
        version = sklearn.get("sklearn_version")
    else:
        pyfunc = flavors.get("python_function")
        loader = pyfunc.get("loader_module") if isinstance(pyfunc, dict) else None
        fmt = loader if isinstance(loader, str) and loader else next(iter(flavors), "mlflow")
        artifact, version = origin.key, None
    schema = _signature_columns(mlmodel.get("signature"))
    return ModelContent(
        artifact=artifact,
        task="unknown",
        target=None,
        features=tuple(c["name"] for c in schema),
        input_schema=schema,
        format=str(fmt),
        sklearn_version=version if isinstance(version, str) else None,
        training=origin.training(),
    )


def _signature_columns(signature: object) -> tuple[dict[str, Any], ...]:
    """The named columns of an MLmodel signature's inputs (none for a tensor signature)."""
    inputs = signature.get("inputs") if isinstance(signature, dict) else None
    try:
        columns = json.loads(inputs) if isinstance(inputs, str) else []
    except ValueError:
        return ()
    if not isinstance(columns, list):
        return ()
    found = []
    for column in columns:
        if not isinstance(column, dict) or not isinstance(column.get("name"), str):
            return ()
        kind = _STUDIO9_TYPES.get(str(column.get("type")), "string")
        found.append({"name": column["name"], "type": kind, "nullable": not column.get("required", True)})
    return tuple(found)
