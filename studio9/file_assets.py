"""Uploaded files as ``file`` assets: the two-way link between the files context and the catalog.

Each uploaded file has a ``file`` asset of the same id (version 1's content: ``file_id``,
``size``, ``sha256``, ``content_type``), outside the library (two uploads may share a name).
``FileAssets`` is, for the files context, its ``FileListener`` (an upload makes the asset, a
file's delete removes it, or is refused when others were derived from it) and, for the
catalog, the ``KindHandler`` of ``file`` (deleting the asset, e.g. forced, deletes the file's
record and bytes), and its ``FileSharing`` (a file whose asset is shared with someone may be
read by them). The files context knows only its own ports; the composition root joins them.

Here, beside ``offboarding``, not in either context: it uses the catalog's service and the
files' records, and a context may use only another's domain and ports.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
import structlog

from studio9.auth.domain import Principal, UserNotFound
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetVersion
from studio9.catalog.service import CatalogService
from studio9.errors import BackendUnavailable
from studio9.files.domain import FileNotFound, StoredFile, file_blob_key
from studio9.files.ports import BlobStore, FileRecords

if TYPE_CHECKING:
    from studio9.catalog.ports import KindHandler
    from studio9.files.ports import FileListener, FileSharing

log = structlog.get_logger()


def file_content(file: StoredFile) -> dict[str, Any]:
    """What version 1 of a file's asset holds (migration 0008 writes the same for older files)."""
    return {"file_id": file.id, "size": file.size, "sha256": file.sha256, "content_type": file.content_type}


@attrs.frozen
class FileAssets:
    catalog: CatalogService
    records: FileRecords
    blobs: BlobStore
    #: Who a job acts as, for ``may_read_as``; None: jobs read their owner's files only.
    users: UserStore | None = None

    async def file_stored(self, file: StoredFile) -> None:
        await self.catalog.create(
            asset_id=file.id,
            owner_id=file.owner_id,
            kind=AssetKind.FILE,
            name=file.name,
            content=file_content(file),
            at=file.created_at,
        )

    async def file_deleting(self, file: StoredFile) -> None:
        await self.catalog.discard(file.id)

    async def may_read(self, actor: Principal, file: StoredFile) -> bool:
        try:
            await self.catalog.get(actor, file.id)
        except AssetNotFound:
            return False
        return True

    async def may_read_as(self, user_id: str, file: StoredFile) -> bool:
        if self.users is None:
            return False
        try:
            user = await self.users.get(user_id)
        except UserNotFound:
            return False
        job = Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            token_id="job",  # noqa: S106 - a label: jobs hold no token
            token_expires_at=datetime.max.replace(tzinfo=UTC),
            email=user.email,
        )
        return await self.may_read(job, file)

    async def deleted(self, asset: Asset, versions: Sequence[AssetVersion]) -> None:
        key = file_blob_key(asset.id)
        with contextlib.suppress(FileNotFound):  # a retried delete: the record went the first time
            key = (await self.records.get(asset.id)).blob_key
            await self.records.delete(asset.id)
        try:
            await self.blobs.delete(key)
        except BackendUnavailable:
            # Bytes no record points to: unreachable, so only space is lost; left for a sweep.
            log.warning("file_blob_orphaned", blob_key=key)


if TYPE_CHECKING:  # mypy holds the bridge to both ports
    _LISTENER: type[FileListener] = FileAssets
    _HANDLER: type[KindHandler] = FileAssets
    _SHARING: type[FileSharing] = FileAssets
