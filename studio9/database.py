"""The system of record: one database that holds the stores of several contexts.

``STUDIO9_DATABASE_URL`` names it (``adapters/database/``: ``memory.py``, ``sql.py`` for SQLite and
PostgreSQL). The stores share its connections and, where the backend has them, its transactions;
each is typed by the port of the context that owns it. Contract: each store's suite in
``tests/contract/`` runs on every database.
"""

from __future__ import annotations

from typing import Protocol

from studio9.access.ports import AccessStore
from studio9.audit.ports import AuditLog
from studio9.auth.ports import TokenStore, UserStore
from studio9.backends import Backend
from studio9.catalog.ports import CatalogStore
from studio9.config.ports import ConfigStore
from studio9.files.ports import FileRecords
from studio9.jobs.ports import JobHistory, JobStore, WorkerRegistry
from studio9.messaging.streams.ports import StreamBacklog, StreamStates
from studio9.metadata.ports import ChangeFeed
from studio9.ml.ports import ModelRegistryStore
from studio9.tracking.ports import TrackingStore


class JobRecords(JobStore, JobHistory, ChangeFeed, Protocol):
    """Jobs, their history, and the feed of their changes: one store, so that a change and its
    events and outbox rows are written together."""


class Database(Backend, Protocol):
    """**Protocol:** the stores of the system of record, opened and closed together."""

    @property
    def dialect(self) -> str:
        """``memory``, ``sqlite`` or ``postgresql``."""

    @property
    def users(self) -> UserStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def jobs(self) -> JobRecords: ...

    @property
    def files(self) -> FileRecords: ...

    @property
    def workers(self) -> WorkerRegistry: ...

    @property
    def config_settings(self) -> ConfigStore: ...

    @property
    def stream_states(self) -> StreamStates: ...

    @property
    def stream_backlog(self) -> StreamBacklog: ...

    @property
    def catalog(self) -> CatalogStore: ...

    @property
    def access(self) -> AccessStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def model_registry(self) -> ModelRegistryStore: ...

    @property
    def tracking(self) -> TrackingStore: ...
