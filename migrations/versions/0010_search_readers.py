"""Library search: reader keys and multi-valued terms of search documents, and the sort columns.

``search_readers`` (who may read a document) and ``search_terms`` (tags, projects, folders)
are side tables keyed by ``search_documents.seq``, indexed by value first so that a
reader-filtered query starts from the caller's documents. ``sort_name`` (the folded name,
code point order: collation "C" on PostgreSQL) and two indexes serve the ``updated`` and
``name`` orders.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SORT_NAME = sa.String(48).with_variant(sa.String(48, collation="C"), "postgresql")
DOCUMENT_INDEXES = {
    "ix_search_documents_kind_updated_at_id": ["kind", "updated_at", "id"],
    "ix_search_documents_kind_sort_name_id": ["kind", "sort_name", "id"],
}


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: rebuilding search_documents on SQLite would drop
    # the full-text triggers of migration 0003.
    op.add_column("search_documents", sa.Column("sort_name", SORT_NAME, server_default="", nullable=False))
    for name, columns in DOCUMENT_INDEXES.items():
        op.create_index(name, "search_documents", columns)
    op.create_table(
        "search_readers",
        sa.Column("seq", AUTO_ID, nullable=False),
        sa.Column("reader", sa.String(330), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["search_documents.seq"],
            name=op.f("fk_search_readers_seq_search_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", "reader", name=op.f("pk_search_readers")),
    )
    op.create_index("ix_search_readers_reader", "search_readers", ["reader", "seq"])
    op.create_table(
        "search_terms",
        sa.Column("seq", AUTO_ID, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"],
            ["search_documents.seq"],
            name=op.f("fk_search_terms_seq_search_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("seq", "key", "value", name=op.f("pk_search_terms")),
    )
    op.create_index("ix_search_terms_key_value", "search_terms", ["key", "value", "seq"])


def downgrade() -> None:
    op.drop_index("ix_search_terms_key_value", table_name="search_terms")
    op.drop_table("search_terms")
    op.drop_index("ix_search_readers_reader", table_name="search_readers")
    op.drop_table("search_readers")
    for name in reversed(DOCUMENT_INDEXES):
        op.drop_index(name, table_name="search_documents")
    op.drop_column("search_documents", "sort_name")  # SQLite 3.35+ drops a column in place
