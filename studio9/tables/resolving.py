"""Which tables a query reads: its names resolved, through the catalog's one access rule, to local
Parquet parts.

A query names a table ``"username/name"`` (the library table of that name of that user) or by
its id, in double quotes (``studio9.tables.sql``). ``TableResolver.resolve(actor, sql)`` finds
the names (``referenced_tables``), looks each up as ``actor`` through the ``Assets`` port
(``named`` or ``get``, then ``read`` of the latest version), and holds a local path to each part
(``BlobStore.local_path``: the stored file itself, or a temporary copy released on exit).

An unknown name, a user who does not exist, an asset that is not a table and a table the
actor may not read all give the same ``UnknownTable`` (404, naming the table as written), so a
query cannot probe for someone else's tables. A table still being written (no version yet) or
whose import failed (status ``error``) is a ``TableNotReadable`` (409).

Jobs act as their owner: ``owner_principal`` makes the principal a job resolves names as.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio.to_thread
import attrs

from studio9.auth.domain import Principal, UserNotFound
from studio9.auth.ports import UserStore
from studio9.catalog.domain import Asset, AssetKind, AssetNotFound, AssetStatus, AssetVersion
from studio9.catalog.ports import Assets
from studio9.errors import Conflict
from studio9.files.ports import BlobStore
from studio9.tables.sql import TableSource, UnknownTable, referenced_tables
from studio9.tables.sql_databases import Databases


class TableNotReadable(Conflict):
    """The table exists but has no rows to read: its first version is being written, or failed."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f'table "{name}" cannot be read: {why}', field="sql", table=name)


@attrs.frozen(kw_only=True)
class ResolvedTable:
    """One name of a query: the table asset, the version read, and its parts on local disk."""

    name: str
    asset: Asset
    version: AssetVersion
    source: TableSource


@attrs.frozen
class Resolved:
    """Every table a query names, by the name as written."""

    tables: Mapping[str, ResolvedTable]

    @property
    def sources(self) -> dict[str, TableSource]:
        """Name → parts, as ``run_query`` / ``query_to_parquet`` take them."""
        return {name: table.source for name, table in self.tables.items()}

    @property
    def inputs(self) -> list[tuple[str, int]]:
        """Each distinct ``(asset id, version)`` read, for lineage (two names of one table: once)."""
        return sorted({(t.asset.id, t.version.version) for t in self.tables.values()})

    @property
    def described(self) -> dict[str, list[Any]]:
        """Name → ``[asset id, version]``: what a derived table's ``source.tables`` records."""
        return {name: [t.asset.id, t.version.version] for name, t in self.tables.items()}


@attrs.define
class TableResolver:
    """Resolves the table names of queries (built by the composition root); names are parsed
    on the parser of ``databases`` when given."""

    assets: Assets
    users: UserStore
    blobs: BlobStore
    databases: Databases | None = None

    async def names(self, sql: str) -> set[str]:
        """The table names ``sql`` reads; refuses SQL that is not one read-only statement (422)."""
        # Parsing uses a DuckDB connection: off the event loop.
        return await anyio.to_thread.run_sync(referenced_tables, sql, self.databases)

    @contextlib.asynccontextmanager
    async def resolve(self, actor: Principal, sql: str) -> AsyncIterator[Resolved]:
        """The tables ``sql`` names, readable as ``actor``, with local paths valid until exit.

        Raises:
            InvalidInput: ``sql`` is not one read-only statement (field ``sql``).
            UnknownTable: a name is unknown, or a table ``actor`` may not read (404).
            TableNotReadable: a table has no readable version (409).
        """
        names = await self.names(sql)
        async with contextlib.AsyncExitStack() as stack:
            tables: dict[str, ResolvedTable] = {}
            for name in sorted(names):
                asset, version = await self.latest(actor, name)
                paths = [
                    await stack.enter_async_context(self.blobs.local_path(key)) for key in _parts(version)
                ]
                tables[name] = ResolvedTable(
                    name=name, asset=asset, version=version, source=TableSource(tuple(paths))
                )
            yield Resolved(tables)

    async def latest(self, actor: Principal, name: str) -> tuple[Asset, AssetVersion]:
        """The table a name means to ``actor`` and its latest version. Raises UnknownTable,
        TableNotReadable."""
        try:
            # An id is read at once (``read`` checks access); a name is looked up first.
            asset, version = await self.assets.read(actor, await self._id_of(actor, name))
            if asset.kind is not AssetKind.TABLE:
                raise UnknownTable(name)
        except (AssetNotFound, UserNotFound):
            raise UnknownTable(name) from None
        if asset.status is AssetStatus.ERROR:
            raise TableNotReadable(name, f"its import failed ({asset.error or 'no reason recorded'})")
        if version is None:
            raise TableNotReadable(name, "it is still being written; try again when it is active")
        return asset, version

    async def _id_of(self, actor: Principal, name: str) -> str:
        if "/" not in name:
            return name
        username, _, table = name.partition("/")
        user = await self.users.get_by_username(username)
        return (await self.assets.named(actor, user.id, AssetKind.TABLE, table)).id


def _parts(version: AssetVersion) -> list[str]:
    parts = version.content.get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, str) for p in parts):
        raise ValueError(f"table {version.asset_id} version {version.version} records no Parquet parts")
    return parts


__all__ = ["Resolved", "ResolvedTable", "TableNotReadable", "TableResolver"]
