"""The composition root: the one package that picks adapters and wires services.

- ``opening``: the scheme tables (each port folder's ``SCHEMES``) and how an adapter is opened,
  checked and closed;
- ``container``: ``build(settings)``, every service of one process, built in one pass;
- ``schema``: ``migrate`` and ``check_schema`` for the system of record, index and sink.

Nothing else in ``studio9`` imports ``adapters`` (``tests/test_architecture.py``).
"""

from studio9.bootstrap.container import ADMIN_TOKEN_FILE, Container, build, write_admin_token
from studio9.bootstrap.opening import (
    BACKENDS,
    BLOB_STORES,
    BROKERS,
    DATABASES,
    EVENTS,
    INDEXES,
    SINKS,
    STREAM_SOURCES,
    adapter_class,
    open_adapter,
    open_stream_source,
)
from studio9.bootstrap.schema import check_schema, migrate

__all__ = [
    "ADMIN_TOKEN_FILE",
    "BACKENDS",
    "BLOB_STORES",
    "BROKERS",
    "DATABASES",
    "EVENTS",
    "INDEXES",
    "SINKS",
    "STREAM_SOURCES",
    "Container",
    "adapter_class",
    "build",
    "check_schema",
    "migrate",
    "open_adapter",
    "open_stream_source",
    "write_admin_token",
]
