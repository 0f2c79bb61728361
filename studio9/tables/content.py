"""A table version's content, where a table's blobs live, and the table kind's delete handler.

The layout (shared with derived tables): a version's parts and statistics live
under ``tables/<asset id>/<run id>/`` (the run: the job that wrote them, or the copy that made
them), so deleting an asset is deleting ``tables/<asset id>/`` (``TableBlobs.deleted``). Content:
``{"format": "parquet", "schema": [...], "row_count", "bytes", "parts": [keys], "source": {...},
"stats": key}``. ``stats`` (the key of the version's ``stats.json``) is optional: without it the
statistics are beside the first part. A version that only changes column display names or
variable types shares its parts and statistics with the one before (the figures do not depend
on a variable type; ``/stats`` takes each column's variable type from the version read).

Statistics are ``pending`` until ``stats.json`` exists (``done``), or ``stats-error.json`` says
why they could not be computed (``error``). Nothing here loads pyarrow.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import msgspec

from studio9.catalog.domain import Asset
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
    """The ``KindHandler`` of ``table``: a deleted table's blobs go with it (its prefix holds only
    its own: a copy copies the parts, see ``studio9.tables.service.TableService.copy``)."""

    blobs: BlobStore

    async def deleted(self, asset: Asset) -> None:
        await self.blobs.delete_prefix(table_prefix(asset.id))
