"""A table version's content, where a table's blobs live, and the table kind's delete handler.

The layout (shared with derived tables): a version's parts and statistics live
under ``tables/<asset id>/<run id>/`` (the run: the job that wrote them), and a copy's versions
name its source's keys (copy-on-write), so deleting an asset deletes what under
``tables/<asset id>/`` no copy still names (``TableBlobs.deleted``). Content:
``{"format": "parquet", "schema": [...], "row_count", "bytes", "parts": [keys], "source": {...},
"stats": key}``. ``stats`` (the key of the version's ``stats.json``) is optional: without it the
statistics are beside the first part. A version that only changes column display names shares
its parts and statistics with the one before; one that changes a variable type shares the parts
and gets its statistics recomputed by a ``tables.stats`` job into ``tables/<asset id>/<that
job's id>/`` (``studio9.tables.stats_job``; ``/stats`` takes each column's variable type from the
version read).

A job that writes a table (``tables.import``, ``tables.sql``) writes each attempt under its own
``tables/<asset id>/<job id>/<attempt>/`` (``attempt_prefix``): an attempt only ever deletes its
own prefix before its version is added, so a stalled attempt that still wins the
compare-and-set never finds its parts gone. The attempt whose version is added deletes what the
earlier attempts of its job left (``drop_earlier_attempts``); one that finds the version already
added by its job deletes its own.

Statistics are ``pending`` until ``stats.json`` exists (``done``), or ``stats-error.json`` says
why they could not be computed (``error``). Nothing here loads pyarrow.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import attrs
import msgspec

from studio9.catalog.domain import Asset, AssetVersion
from studio9.errors import InvalidInput
from studio9.files.domain import BlobNotFound
from studio9.files.ports import BlobStore
from studio9.tables.values import ColumnSchema

TABLES_PREFIX: Final = "tables/"
STATS_FILE: Final = "stats.json"
STATS_ERROR_FILE: Final = "stats-error.json"

StatsStatus = Literal["pending", "done", "error"]


def table_prefix(asset_id: str) -> str:
    """Every blob of the table ``asset_id``, of all its versions."""
    return f"{TABLES_PREFIX}{asset_id}/"


def run_prefix(asset_id: str, run_id: str) -> str:
    """The blobs one run (an import job, a copy) wrote for the table."""
    return f"{table_prefix(asset_id)}{run_id}/"


def attempt_prefix(asset_id: str, job_id: str, attempt: int) -> str:
    """The blobs one attempt of a table-writing job wrote for the table (see the module doc)."""
    return f"{run_prefix(asset_id, job_id)}{attempt}/"


async def drop_earlier_attempts(
    blobs: BlobStore, asset_id: str, job_id: str, attempt: int, *, keep: Collection[str] = ()
) -> None:
    """Delete what attempts ``1 .. attempt - 1`` of the job wrote for the table, except the
    prefix holding a key of ``keep`` (the version the job added). Only once the job's version is
    added: every other attempt of the job has lost the compare-and-set by then."""
    for earlier in range(1, attempt):
        prefix = attempt_prefix(asset_id, job_id, earlier)
        if not any(key.startswith(prefix) for key in keep):
            await blobs.delete_prefix(prefix)


@attrs.frozen(kw_only=True)
class TableContent:
    """A table version's content (see the module doc)."""

    schema: tuple[ColumnSchema, ...]
    row_count: int
    bytes: int
    parts: tuple[str, ...]
    source: Mapping[str, Any] = attrs.field(factory=dict)
    stats: str | None = None

    @classmethod
    def of(cls, content: Mapping[str, Any]) -> TableContent:
        """Raises InvalidInput for content that is not a table's."""
        try:
            schema = tuple(
                ColumnSchema(
                    name=c["name"],
                    type=c["type"],
                    variable_type=c["variable_type"],
                    display_name=c.get("display_name"),
                )
                for c in content["schema"]
            )
            parts = tuple(str(p) for p in content["parts"])
            stats = content.get("stats")
            if stats is None and parts:
                stats = parts[0].rpartition("/")[0] + "/" + STATS_FILE
            return cls(
                schema=schema,
                row_count=int(content["row_count"]),
                bytes=int(content.get("bytes", 0)),
                parts=parts,
                source=dict(content.get("source") or {}),
                stats=stats,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"not a table's content ({exc})") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "parquet",
            "schema": [
                {
                    "name": c.name,
                    "type": c.type,
                    "variable_type": c.variable_type,
                    "display_name": c.display_name,
                }
                for c in self.schema
            ],
            "row_count": self.row_count,
            "bytes": self.bytes,
            "parts": list(self.parts),
            "source": dict(self.source),
            "stats": self.stats,
        }


def stats_error_key(stats_key: str) -> str:
    return stats_key.rpartition("/")[0] + "/" + STATS_ERROR_FILE


async def stats_status(blobs: BlobStore, stats_key: str | None) -> tuple[StatsStatus, str | None]:
    """Whether the statistics at ``stats_key`` are there (and the error when they failed)."""
    if stats_key is None:
        return "pending", None
    with contextlib.suppress(BlobNotFound):
        await blobs.size(stats_key)
        return "done", None
    try:
        failed = msgspec.json.decode(await read_blob(blobs, stats_error_key(stats_key)))
    except BlobNotFound:
        return "pending", None
    return "error", str(failed.get("error", "unknown error"))


async def read_blob(blobs: BlobStore, key: str) -> bytes:
    """A small blob's bytes. Raises BlobNotFound."""
    return b"".join([chunk async for chunk in await blobs.open(key)])


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def file_chunks(path: Path, size: int = 1 << 20) -> AsyncIterator[bytes]:
    """A local file's bytes, a chunk at a time (for ``BlobStore.put``)."""
    import anyio

    async with await anyio.open_file(path, "rb") as handle:
        while chunk := await handle.read(size):
            yield chunk


@contextlib.asynccontextmanager
async def local_parts(blobs: BlobStore, keys: Sequence[str]) -> AsyncIterator[list[Path]]:
    """Local files of the parts ``keys`` (the stored files on file://, temporary copies else)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(blobs.local_path(key)) for key in keys]


@attrs.frozen
class TableBlobs:
    """The ``KindHandler`` of ``table``: a deleted table's blobs go with it, except those another
    table still holds.

    A copy shares its source's parts (copy-on-write, ``TableService.copy``), so a blob under
    ``tables/<A>/`` may be held by A's copies after A is gone. On a delete, for every table
    whose prefix the deleted versions point into (the table itself, and the one a copy's parts
    come from), the blob directories some existing holder's version still names are kept and
    the rest deleted: the whole prefix when nothing there is held any more. A copy deleted last
    thus takes the original's blobs with it.
    """

    blobs: BlobStore
    assets: ContentHolders

    async def deleted(self, asset: Asset, versions: Sequence[AssetVersion]) -> None:
        ours = {key for version in versions for key in _keys(version)}
        for owner in {asset.id} | {_owner(key) for key in ours}:
            holders = await self.assets.content_holders(owner)
            if holders is None:  # too many copies to tell: keep it all
                continue
            held = {_directory(k) for version in holders for k in _keys(version) if _owner(k) == owner}
            if not held:
                await self.blobs.delete_prefix(table_prefix(owner))
                continue
            for directory in {_directory(k) for k in ours if _owner(k) == owner} - held:
                await self.blobs.delete_prefix(directory)


class ContentHolders(Protocol):
    """What ``TableBlobs`` asks the catalog (``studio9.catalog.ports.Assets.content_holders``)."""

    async def content_holders(self, asset_id: str) -> Sequence[AssetVersion] | None: ...


def _keys(version: AssetVersion) -> set[str]:
    """The blob keys of a table version (its parts and statistics); none for other content."""
    try:
        content = TableContent.of(version.content)
    except InvalidInput:
        return set()
    return {*content.parts, *([content.stats] if content.stats else [])}


def _owner(key: str) -> str:
    """The table a blob key was written for: ``tables/<asset id>/…``."""
    return key.removeprefix(TABLES_PREFIX).partition("/")[0]


def _directory(key: str) -> str:
    """The run directory of a key (with its ``/``): what one import, derive or copy wrote."""
    return key.rpartition("/")[0] + "/"
