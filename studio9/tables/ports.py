"""What the tables context needs of other contexts, as the composition root passes them in.

The catalog (``TableCatalog``: the catalog's ``Assets`` port plus the two people-facing use cases
the table routes reuse, listing and renaming) and the job core (``JobSubmitter``). Blobs and file
records are the files context's own ports (``studio9.files.ports``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol

import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import Asset, AssetKind, AssetVersion
from studio9.catalog.ports import Assets
from studio9.jobs.domain import Job
from studio9.jobs.ports import JobContext


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


@attrs.frozen(kw_only=True)
class LocalTable:
    """One version of a table, readable from local Parquet files until its context exits."""

    asset_id: str
    version: int
    name: str
    #: The version's columns: ``{"name", "type", "variable_type", "display_name"}`` each.
    columns: tuple[Mapping[str, Any], ...]
    row_count: int
    paths: tuple[Path, ...]


class TableFiles(Protocol):
    """**Protocol:** tables as other contexts' jobs read and write them (the ML jobs);
    ``studio9.tables.job_tables.JobTables`` implements it."""

    def open(
        self, actor: Principal, table: str, version: int | None = None
    ) -> AbstractAsyncContextManager[LocalTable]:
        """The table ``table`` (an id, or ``owner/name``) at ``version`` (None: the latest), as
        ``actor`` may read it. Raises UnknownTable (404), TableNotReadable (409)."""

    async def write(
        self,
        ctx: JobContext,
        actor: Principal,
        *,
        table_id: str,
        name: str,
        path: Path,
        inputs: Sequence[tuple[str, int]],
        source: Mapping[str, Any],
        description: str = "",
    ) -> AssetVersion:
        """The Parquet file ``path`` as version 1 of table ``table_id``, created (not in the
        library) unless it exists; lineage from ``inputs``; statistics computed. Idempotent
        for a retried job: a version this job made already is returned as it is."""
