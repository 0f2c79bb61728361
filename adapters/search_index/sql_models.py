"""ORM row of the search projection: one row per SearchDocument.

The full-text index beside it, ``search_fts``, is created by migration 0003 with raw SQL
(the ORM cannot describe it) and kept in step by triggers, inside the writing transaction:

- SQLite: an FTS5 table over ``terms`` with ``content='search_documents'`` and
  ``content_rowid='seq'`` (the text is stored once, in this table).
- PostgreSQL: ``search_fts(seq, vector tsvector)`` with a GIN index, filled from
  ``to_tsvector('simple', terms)``, rows removed by ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import AutoId, Base, JsonDocument, UTCDateTime


class SearchDocumentRow(Base):
    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_kind_owner_id_id", "kind", "owner_id", "id"),
        Index("ix_search_documents_kind_id", "kind", "id"),
    )

    #: The integer key the full-text index refers to. On SQLite an INTEGER PRIMARY KEY is
    #: the rowid itself, which VACUUM never renumbers (an implicit rowid it may).
    seq: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[str] = mapped_column(String(64))
    #: The document's words as ``studio9.metadata.domain.words`` makes them, space-separated:
    #: what both full-text engines index, so that they agree with each other and with memory://.
    terms: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    body: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
