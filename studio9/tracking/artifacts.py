"""Run and logged-model artifacts in the blob store, behind the experiment's access policy.

MLflow clients address artifacts by path, relative to the artifact service's root:
``<experiment id>/<run id>/artifacts/<file>`` for a run's and
``<experiment id>/models/<model id>/artifacts/<file>`` for a logged model's (the URIs the tracking
service hands out, ``mlflow-artifacts:/<path>``). Writing needs write access to the experiment,
reading read access; a run or model named in a path must belong to that experiment, and someone
who may not read the experiment is told the artifact does not exist.

The blob of ``<experiment>/<rest>`` is ``experiments/<experiment id>/<rest>``, so an experiment's
artifacts go with it. Blob keys allow fewer characters than file names do: a path segment with
others (a space, ``é``) is stored as ``_s9_`` and the base32 of its UTF-8 bytes, which listings
turn back into the name.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar, Final
from urllib.parse import unquote

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Access
from studio9.errors import NotFound
from studio9.files.domain import MAX_KEY_LENGTH, BlobNotFound
from studio9.files.ports import BlobStore
from studio9.tracking.domain import (
    RESOURCE_DOES_NOT_EXIST,
    InvalidTrackingInput,
    LoggedModelNotFound,
)
from studio9.tracking.service import TrackingService

#: The second segment of a logged model's artifact paths (``<experiment>/models/<model id>/…``).
MODELS_SEGMENT: Final = "models"
#: The segment under a run or logged model that holds its files.
ARTIFACTS_SEGMENT: Final = "artifacts"
_ENCODED: Final = "_s9_"
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REMEMBERED_MODELS: Final = 16_384


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


@attrs.frozen
class ArtifactContent:
    """An artifact file being read: its size and its bytes (iterate once)."""

    size: int
    chunks: AsyncIterator[bytes]


class InvalidArtifactPath(InvalidTrackingInput):
    """A path that could lead out of its place (``..``, absolute, a backslash…): MLflow's 400."""

    def __init__(self) -> None:
        super().__init__("Invalid path", field="path")


class ArtifactNotFound(NotFound):
    code: ClassVar[str] = RESOURCE_DOES_NOT_EXIST

    def __init__(self, path: str) -> None:
        super().__init__(f"No such artifact: '{path}'", path=path)
        self.path = path


class ArtifactIsDirectory(InvalidTrackingInput):
    def __init__(self, path: str) -> None:
        super().__init__(f"'{path}' is a directory, not a file", field="path")


def safe_segments(path: str) -> list[str]:
    """The segments of an artifact path, if it stays where it is put; raises InvalidArtifactPath
    for ``..``, an absolute path, a backslash, an empty segment, a control character or ``#`` —
    in the path as given or in any percent-decoding of it (a client may encode a traversal)."""
    decoded = path
    for _ in range(10):
        _refuse_escapes(decoded)
        once = unquote(decoded)
        if once == decoded:
            return path.split("/")
        decoded = once
    raise InvalidArtifactPath()  # encoded ten times over: no client does that


def _refuse_escapes(path: str) -> None:
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "#" in path
        or _CONTROL.search(path)
        or re.match(r"[A-Za-z]:", path)  # a Windows drive
        or any(segment in {"", ".", ".."} for segment in path.split("/"))
    ):
        raise InvalidArtifactPath()


def encode_segment(segment: str) -> str:
    """A path segment as a blob key segment (module doc); ``decode_segment`` undoes it."""
    if _PLAIN_SEGMENT.fullmatch(segment) and not segment.startswith(_ENCODED):
        return segment
    return _ENCODED + base64.b32encode(segment.encode()).decode().rstrip("=").lower()


def decode_segment(segment: str) -> str:
    if not segment.startswith(_ENCODED):
        return segment
    body = segment[len(_ENCODED) :].upper()
    try:
        return base64.b32decode(body + "=" * (-len(body) % 8)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return segment  # not ours: show it as stored


@attrs.define
class ArtifactService:
    tracking: TrackingService
    blobs: BlobStore
    _model_experiment: OrderedDict[str, str] = attrs.field(factory=OrderedDict, init=False)

    async def put(self, actor: Principal, path: str, chunks: AsyncIterator[bytes]) -> int:
        """Store the file at ``path`` (replacing it); its size. Write access. Raises
        InvalidArtifactPath (also for a path outside a run's or logged model's ``artifacts``),
        RunNotFound, LoggedModelNotFound, ArtifactNotFound (a run of another experiment),
        PermissionDenied; whatever ``chunks`` raises, after which nothing is stored."""
        key = await self._file_key(actor, path, Access.WRITE)
        return await self.blobs.put(key, chunks)

    async def open(self, actor: Principal, path: str) -> ArtifactContent:
        """The file at ``path``. Read access. Raises ArtifactNotFound, ArtifactIsDirectory."""
        key = await self._file_key(actor, path, Access.READ)
        try:
            return ArtifactContent(size=await self.blobs.size(key), chunks=await self.blobs.open(key))
        except BlobNotFound:
            if await self.blobs.list_prefix(key + "/"):
                raise ArtifactIsDirectory(path) from None
            raise ArtifactNotFound(path) from None

    async def list(self, actor: Principal, path: str) -> list[ArtifactFile] | None:
        """One level of the directory ``path`` (a trailing ``/`` is ignored), sorted by name:
        base names, sizes of files. None when there is no such directory (a file is none). Read
        access."""
        segments = safe_segments(path.rstrip("/") or path)
        experiment_id = await self._check_place(actor, segments, Access.READ)
        prefix = experiment_prefix(experiment_id) + "".join(encode_segment(s) + "/" for s in segments[1:])
        children: dict[str, ArtifactFile] = {}
        for key, size in await self.blobs.list_prefix(prefix):
            first, slash, _ = key[len(prefix) :].partition("/")
            name = decode_segment(first)
            if slash:
                children[name] = ArtifactFile(name, is_dir=True)
            else:
                children.setdefault(name, ArtifactFile(name, is_dir=False, file_size=size))
        return [children[name] for name in sorted(children)] or None

    async def delete(self, actor: Principal, path: str) -> None:
        """Remove the file or directory at ``path`` (absent: nothing to do). Write access."""
        key = await self._file_key(actor, path, Access.WRITE)
        await self.blobs.delete(key)
        await self.blobs.delete_prefix(key + "/")

    # -- helpers --------------------------------------------------------------------------------

    async def _file_key(self, actor: Principal, path: str, needed: Access) -> str:
        """The blob key of a file path under a run's or logged model's ``artifacts``."""
        segments = safe_segments(path)
        depth = 4 if len(segments) > 1 and segments[1] == MODELS_SEGMENT else 3
        if len(segments) <= depth or segments[depth - 1] != ARTIFACTS_SEGMENT:
            # Not a file of a run or logged model: nothing to read there, nowhere to write.
            raise ArtifactNotFound(path) if needed is Access.READ else InvalidArtifactPath()
        experiment_id = await self._check_place(actor, segments, needed)
        key = experiment_prefix(experiment_id) + "/".join(encode_segment(s) for s in segments[1:])
        if len(key) > MAX_KEY_LENGTH:
            raise InvalidTrackingInput("artifact path is too long", field="path")
        return key

    async def _check_place(self, actor: Principal, segments: Sequence[str], needed: Access) -> str:
        """The experiment's real id, once the caller's ``needed`` access to it is checked and the
        run or logged model the path names is found in it."""
        experiment_id = await self.tracking.experiments.check(actor, segments[0], needed)
        if len(segments) < 2:
            return experiment_id
        if segments[1] == MODELS_SEGMENT:
            if len(segments) > 2 and await self._model_experiment_of(segments[2]) != experiment_id:
                raise LoggedModelNotFound(segments[2])
            return experiment_id
        # Read access is enough here: the run must be in the experiment just checked.
        if await self.tracking.experiment_of_run(actor, segments[1], Access.READ) != experiment_id:
            raise ArtifactNotFound("/".join(segments))
        return experiment_id

    async def _model_experiment_of(self, model_id: str) -> str:
        # A logged model never moves: which experiment it is in is remembered (bounded), so a
        # model download (a listing, then a request per file) asks the store once.
        known = self._model_experiment.get(model_id)
        if known is None:
            known = (await self.tracking.store.get_logged_model(model_id)).experiment_id
            self._model_experiment[model_id] = known
            if len(self._model_experiment) > _REMEMBERED_MODELS:
                self._model_experiment.popitem(last=False)
        return known
