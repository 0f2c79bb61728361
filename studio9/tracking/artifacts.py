"""Run and logged-model artifacts in the blob store, behind the experiment's access policy.

Placeholder: filled in by the artifacts work (see the MLflow face).
"""

from __future__ import annotations

import attrs

from studio9.files.ports import BlobStore
from studio9.tracking.service import TrackingService


def experiment_prefix(experiment_id: str) -> str:
    """Where every artifact of an experiment lives in the blob store (deleted with it)."""
    return f"experiments/{experiment_id}/"


@attrs.frozen
class ArtifactFile:
    """One entry of an artifact listing, as MLflow lists it: a base name, whether it is a
    directory, and a file's size in bytes (None for a directory)."""

    path: str
    is_dir: bool
    file_size: int | None = None


@attrs.define
class ArtifactService:
    tracking: TrackingService
    blobs: BlobStore
