"""What the tables context needs of other contexts, as the composition root passes them in.

The catalog (``TableCatalog``: the catalog's ``Assets`` port plus the two people-facing use cases
the table routes reuse, listing and renaming) and the job core (``JobSubmitter``). Blobs and file
records are the files context's own ports (``studio9.files.ports``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind
from studio9.catalog.ports import Assets
from studio9.jobs.domain import Job


class TableCatalog(Assets, Protocol):
    """**Protocol:** ``Assets`` and the listing and renaming of ``studio9.catalog.service.CatalogService``."""

    async def list(
        self, actor: Principal, *, kind: AssetKind | None, limit: int, after: str | None = None
    ) -> Sequence[Asset]:
        """The actor's own assets (of ``kind``), newest first, older than ``after``."""

    async def update(
        self,
        actor: Principal,
        asset_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        in_library: bool | None = None,
    ) -> Asset:
        """Raises AssetNotFound, PermissionDenied, InvalidInput, AssetNameTaken."""


class JobSubmitter(Protocol):
    """**Protocol:** the slice of the job service tables use (``studio9.jobs.service.JobService``)."""

    async def submit(
        self, actor: Principal, type_name: str, params: Mapping[str, Any], *, job_id: str | None = None
    ) -> Job:
        """Validate, store and dispatch a job. Raises InvalidInput."""
