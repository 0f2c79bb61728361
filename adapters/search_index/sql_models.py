"""ORM rows of the search projection: one row per SearchDocument, and its reader keys and terms.

The full-text index beside it, ``search_fts``, is created by migration 0003 with raw SQL
(the ORM cannot describe it) and kept in step by triggers, inside the writing transaction:

- SQLite: an FTS5 table over ``terms`` with ``content='search_documents'`` and
  ``content_rowid='seq'`` (the text is stored once, in this table).
- PostgreSQL: ``search_fts(seq, vector tsvector)`` with a GIN index, filled from
  ``to_tsvector('simple', terms)``, rows removed by ``ON DELETE CASCADE``.

Reader keys and multi-valued terms (migration 0010) are side tables keyed by ``seq``, one
row per value, each with an index led by the value: a reader-filtered query finds the few
documents a caller may read from ``ix_search_readers_reader`` instead of testing every
document, and they go with their document by ``ON DELETE CASCADE``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adapters.sql.base import AutoId, Base, JsonDocument, UTCDateTime

#: The ``name`` order compares code points, as Python does: PostgreSQL's "C" collation.
SortName = String(48).with_variant(String(48, collation="C"), "postgresql")


class SearchDocumentRow(Base):
    __tablename__ = "search_documents"
    __table_args__ = (
        Index("ix_search_documents_kind_owner_id_id", "kind", "owner_id", "id"),
        Index("ix_search_documents_kind_id", "kind", "id"),
        Index("ix_search_documents_kind_updated_at_id", "kind", "updated_at", "id"),
        Index("ix_search_documents_kind_sort_name_id", "kind", "sort_name", "id"),
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
    #: ``studio9.metadata.domain.name_key(fields)``: what the ``name`` order sorts on.
    sort_name: Mapped[str] = mapped_column(SortName, server_default="")


class SearchReaderRow(Base):
    """One reader key (``u:<id>``, ``g:<id>``, ``e:<email>``, ``p:<id>``) of a document."""

    __tablename__ = "search_readers"
    __table_args__ = (Index("ix_search_readers_reader", "reader", "seq"),)

    seq: Mapped[int] = mapped_column(
        AutoId, ForeignKey("search_documents.seq", ondelete="CASCADE"), primary_key=True
    )
    reader: Mapped[str] = mapped_column(String(330), primary_key=True)


class SearchTermRow(Base):
    """One value of one multi-valued term of a document (``tags`` = ``q1``)."""

    __tablename__ = "search_terms"
    __table_args__ = (Index("ix_search_terms_key_value", "key", "value", "seq"),)

    seq: Mapped[int] = mapped_column(
        AutoId, ForeignKey("search_documents.seq", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), primary_key=True)
