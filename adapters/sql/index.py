"""Metadata search index inside the system-of-record database.

URL:      sql://   (uses STUDIO9_DATABASE_URL's database: SQLite FTS5 or PostgreSQL full-text)
Features: same transaction as the data it indexes · rebuilt with ``studio9 reindex``
Extra:    none

Search operations arrive with the job-core issue; the adapter already shares the
database's health.
"""

from __future__ import annotations

from typing import Any, Self

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
from studio9.errors import ConfigError


class SqlSearchIndex:
    def __init__(self, database: Any) -> None:
        self.database = database

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        if options.database is None or not hasattr(options.database, "engine"):
            raise ConfigError(
                "sql:// needs an SQL database in STUDIO9_DATABASE_URL", setting="STUDIO9_INDEX_URL"
            )
        return cls(options.database)

    async def ping(self) -> None:
        await self.database.ping()

    async def aclose(self) -> None:
        return None
