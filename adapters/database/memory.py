"""An in-memory system of record: nothing survives the process.

URL:      memory://
Features: transactions per call · thread-safe · nothing kept on disk
Extra:    none
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from adapters.access_store.memory import MemoryAccessStore
from adapters.audit_log.memory import MemoryAuditLog
from adapters.catalog_store.memory import MemoryCatalogStore
from adapters.config_store.memory import MemoryConfigStore
from adapters.file_records.memory import MemoryFileRecords
from adapters.job_store.memory import MemoryJobStore
from adapters.model_registry.memory import MemoryModelRegistryStore
from adapters.stream_store.memory import MemoryStreamBacklog, MemoryStreamStates, StreamTables
from adapters.tracking_store.memory import MemoryTrackingStore
from adapters.user_store.memory import MemoryTokenStore, MemoryUserStore, UserTables
from adapters.worker_registry.memory import MemoryWorkerRegistry
from studio9.backends import AdapterOptions
from studio9.database import Database
from studio9.urls import AdapterURL


class MemoryDatabase:
    """Every store of the system of record, held in dictionaries."""

    dialect = "memory"

    def __init__(self) -> None:
        tables = UserTables()
        self.users = MemoryUserStore(tables)
        self.tokens = MemoryTokenStore(tables)
        self.jobs = MemoryJobStore()
        self.files = MemoryFileRecords()
        self.workers = MemoryWorkerRegistry()
        self.config_settings = MemoryConfigStore()
        streams = StreamTables()
        self.stream_states = MemoryStreamStates(streams)
        self.stream_backlog = MemoryStreamBacklog(streams)
        # Asset changes reach the one change feed, the job store's outbox, as on SQL.
        self.catalog = MemoryCatalogStore(outbox=self.jobs.enqueue)
        # What the SQL foreign keys do: an asset's delete takes its shares and project links.
        self.access = MemoryAccessStore(self.catalog, outbox=self.jobs.enqueue)
        self.catalog.on_delete(self.access.asset_deleted)
        self.audit = MemoryAuditLog()
        # As the SQL foreign keys to assets: a model's registry rows need its asset, and go with it.
        self.model_registry = MemoryModelRegistryStore(self.catalog)
        self.catalog.on_delete(self.model_registry.asset_deleted)
        # Likewise an experiment's runs, tags and logged models.
        self.tracking = MemoryTrackingStore(self.catalog)
        self.catalog.on_delete(self.tracking.asset_deleted)

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        return cls()

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


if TYPE_CHECKING:  # mypy holds the adapter to its port
    _PORT: type[Database] = MemoryDatabase
