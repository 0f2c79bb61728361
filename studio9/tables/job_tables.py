"""Tables as other contexts' jobs read and write them (``studio9.tables.ports.TableFiles``).

Reading: a table named by id or ``owner/name``, at a version or the latest, resolved as the
job's owner (the one access policy), its Parquet parts as local paths.

Writing: a job's output table (a scored table of an ML job, say) is created under an id the
job chose (derived from its own id, so a retry finds it), its one Parquet file uploaded under
the attempt's prefix (``tables/<t>/<job>/<attempt>/``) and added as version 1 by
compare-and-set. A retry whose earlier attempt added the version keeps that one and drops its
own upload, as ``tables.sql`` jobs do (``studio9.tables.derive``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import anyio
import attrs

from studio9.auth.domain import Principal
from studio9.catalog.domain import AssetKind, AssetNotFound, AssetStatus, AssetVersion, VersionConflict
from studio9.catalog.ports import Assets
from studio9.errors import Conflict, NotFound
from studio9.files.ports import BlobStore
from studio9.ids import derived_id
from studio9.jobs.domain import JobExists
from studio9.jobs.ports import JobContext
from studio9.tables.content import (
    STATS_FILE,
    TableContent,
    attempt_prefix,
    drop_earlier_attempts,
    file_chunks,
)
from studio9.tables.derive import table_columns
from studio9.tables.ports import JobSubmitter, LocalTable
from studio9.tables.resolving import TableResolver
from studio9.tables.sql import UnknownTable
from studio9.tables.stats_job import complete_stats, submit_stats

PART_NAME: Final = "part-00000.parquet"


class TableNotFound(NotFound):
    def __init__(self, table: str) -> None:
        super().__init__(
            f"no table {table!r} that you may read: name it by id or as owner/name", field="table"
        )


@attrs.define
class JobTables:
    """Implements ``TableFiles`` over the catalog, the table resolver and the blob store."""

    assets: Assets
    resolver: TableResolver
    blobs: BlobStore
    #: Where the statistics of a written table are computed: a ``tables.stats`` job of their own
    #: (the writing job ends sooner), or, without a submitter, in the writing job itself.
    jobs: JobSubmitter | None = None

    @contextlib.asynccontextmanager
    async def open(
        self, actor: Principal, table: str, version: int | None = None
    ) -> AsyncIterator[LocalTable]:
        try:
            asset, latest = await self.resolver.latest(actor, table)
        except UnknownTable:
            raise TableNotFound(table) from None
        chosen = latest
        if version is not None and version != latest.version:
            try:
                _, found = await self.assets.read(actor, asset.id, version)
            except AssetNotFound:
                raise NotFound(f"table {table!r} has no version {version}", field="version") from None
            if found is None:
                raise NotFound(f"table {table!r} has no version {version}", field="version")
            chosen = found
        content = TableContent.of(chosen.content)
        async with contextlib.AsyncExitStack() as stack:
            paths = [await stack.enter_async_context(self.blobs.local_path(key)) for key in content.parts]
            yield LocalTable(
                asset_id=asset.id,
                version=chosen.version,
                name=asset.name,
                columns=tuple(content.to_json()["schema"]),
                row_count=content.row_count,
                paths=tuple(paths),
            )

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
        try:
            asset = await self.assets.get(actor, table_id)
        except AssetNotFound:
            asset = await self.assets.create(
                asset_id=table_id,
                owner_id=actor.user_id,
                kind=AssetKind.TABLE,
                name=name,
                content=None,
                description=description,
                job_id=ctx.job_id,
            )
        if asset.latest_version >= 1:
            done = await self._made_by_job(actor, table_id, ctx.job_id)
            await self._stats(ctx, actor, done, None)  # submitted already, unless killed before
            return done
        # pyarrow loads in the job, not at start.
        import pyarrow.parquet as pq

        metadata = await ctx.in_thread(pq.read_metadata, path)
        columns = await ctx.in_thread(table_columns, metadata.schema.to_arrow_schema())
        prefix = attempt_prefix(table_id, ctx.job_id, ctx.attempt)
        key = prefix + PART_NAME
        try:
            size = await self.blobs.put(key, file_chunks(path))
            content = {
                "format": "parquet",
                "schema": columns,
                "row_count": metadata.num_rows,
                "bytes": size,
                "parts": [key],
                "source": dict(source),
                "stats": prefix + STATS_FILE,
            }
            try:
                _, version = await self.assets.add_version(
                    table_id, content, expected_latest=0, job_id=ctx.job_id, status=AssetStatus.ACTIVE
                )
            except VersionConflict:
                await self.blobs.delete_prefix(prefix)
                return await self._made_by_job(actor, table_id, ctx.job_id)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.blobs.delete_prefix(prefix)
            raise
        keep = [key, prefix + STATS_FILE]
        with contextlib.suppress(Exception):  # garbage at worst, never a broken table
            await drop_earlier_attempts(self.blobs, table_id, ctx.job_id, ctx.attempt, keep=keep)
        await self.assets.record_lineage(
            job_id=ctx.job_id, inputs=list(inputs), outputs=[(table_id, version.version)]
        )
        await self._stats(ctx, actor, version, path)
        return version

    async def _stats(
        self, ctx: JobContext, actor: Principal, version: AssetVersion, path: Path | None
    ) -> None:
        content = TableContent.of(version.content)
        if self.jobs is None:
            await complete_stats(
                ctx, self.blobs, version.asset_id, content, [path] if path else None, start=1.0
            )
            return
        if content.stats is None:
            return
        with contextlib.suppress(JobExists):  # a retry: the first attempt submitted it
            await submit_stats(
                self.jobs,
                self.blobs,
                actor,
                version.asset_id,
                version.version,
                job_id=derived_id(ctx.job_id, f"stats-{version.asset_id}"),
                stats_key=content.stats,
            )

    async def _made_by_job(self, actor: Principal, table_id: str, job_id: str) -> AssetVersion:
        _, version = await self.assets.read(actor, table_id, 1)
        if version is None or version.job_id != job_id:
            raise Conflict(f"table {table_id} was written by another job", field="table")
        return version
