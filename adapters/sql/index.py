"""Metadata search index inside the system-of-record database.

URL:      sql://   (uses STUDIO9_DATABASE_URL's database: SQLite FTS5 or PostgreSQL full-text)
Features: AND-of-words full text · field filters · owner scoping · keyset paging ·
          kept in step by triggers in the writing transaction · rebuilt with ``studio9 reindex``
Extra:    none

The adapter lives in ``adapters.sql.search``; this module is the name the composition
root's scheme table points at.
"""

from __future__ import annotations

from adapters.sql.search import SqlSearchIndex

__all__ = ["SqlSearchIndex"]
