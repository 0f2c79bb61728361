"""Every table of the system of record, gathered on one MetaData for Alembic and the tests."""

from __future__ import annotations

from typing import Any

from adapters.sql import config_models, job_models, models, search_models, stream_models
from adapters.sql.models import Base

# Imported for their side effect: registering their tables on Base.metadata.
_TABLE_MODULES = (models, job_models, search_models, config_models, stream_models)

metadata = Base.metadata


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Which database objects Alembic compares with ``metadata``.

    Objects the ORM cannot describe (full-text virtual tables and their shadow tables) are
    created by migrations with raw SQL and left out of the comparison.
    """
    return not (
        type_ == "table"
        and reflected
        and compare_to is None
        and name is not None
        and name.startswith(_RAW_SQL_PREFIXES)
    )


# search_fts: the SQLite FTS5 table with its shadow tables, or the PostgreSQL tsvector
# table; created by migration 0003 with raw SQL.
_RAW_SQL_PREFIXES = ("search_fts",)
