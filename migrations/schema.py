"""Every table of the system of record, gathered on one MetaData for Alembic (``env.py``) and the tests.

Here, beside the migrations, rather than in an adapter package: it imports the rows of every port
(``adapters/<port>/sql_models.py``), and an adapter package that did would import its siblings.
"""

from __future__ import annotations

from typing import Any

from adapters.access_store import sql_models as access_rows
from adapters.audit_log import sql_models as audit_rows
from adapters.catalog_store import sql_models as catalog_rows
from adapters.config_store import sql_models as config_rows
from adapters.file_records import sql_models as file_rows
from adapters.job_store import sql_models as job_rows
from adapters.model_registry import sql_models as model_registry_rows
from adapters.search_index import sql_models as search_rows
from adapters.sql.base import Base
from adapters.stream_store import sql_models as stream_rows
from adapters.tracking_store import sql_models as tracking_rows
from adapters.user_store import sql_models as user_rows
from adapters.worker_registry import sql_models as worker_rows

# Imported for their side effect: registering their tables on Base.metadata.
_TABLE_MODULES = (
    user_rows,
    job_rows,
    file_rows,
    worker_rows,
    search_rows,
    config_rows,
    stream_rows,
    catalog_rows,
    access_rows,
    audit_rows,
    model_registry_rows,
    tracking_rows,
)

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
