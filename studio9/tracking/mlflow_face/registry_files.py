"""Placeholder (the registry work fills it in): the files of a Studio9 model version, laid out as an
MLflow model directory under the artifact path ``registry/<model asset id>/<version>/``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from studio9.auth.domain import Principal
from studio9.errors import NotFound
from studio9.files.ports import BlobStore
from studio9.ml.service import ModelService
from studio9.tracking.artifacts import ArtifactFile

#: The first segment of artifact paths that name registry model files, not experiment artifacts.
REGISTRY_SEGMENT: Final = "registry"


async def list_registry_files(
    models: ModelService, blobs: BlobStore, actor: Principal, path: str
) -> list[ArtifactFile] | None:
    """One level of ``registry/<path>`` (None: no such directory). Read access to the model."""
    return None


async def open_registry_file(
    models: ModelService, blobs: BlobStore, actor: Principal, path: str
) -> tuple[AsyncIterator[bytes], str]:
    """The file ``registry/<path>`` and its media type. Raises NotFound."""
    raise NotFound(f"No such artifact: '{REGISTRY_SEGMENT}/{path}'")
