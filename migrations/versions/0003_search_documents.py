"""The metadata search projection: search_documents and its full-text index.

The full-text side is raw SQL, one version per dialect, kept in step with
``search_documents`` by triggers so that every writer (the adapter, a bulk delete, a
reindex) updates both in one transaction:

- SQLite: ``search_fts``, an FTS5 external-content table over ``terms`` keyed by ``seq``
  (unicode61 tokenizer, no accent folding).
- PostgreSQL: ``search_fts(seq, vector)`` with ``to_tsvector('simple', terms)`` and a GIN
  index; rows go with their document by ``ON DELETE CASCADE``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
INDEXES = {
    "ix_search_documents_kind_owner_id_id": ["kind", "owner_id", "id"],
    "ix_search_documents_kind_id": ["kind", "id"],
}

SQLITE_UP = (
    """CREATE VIRTUAL TABLE search_fts USING fts5(
        terms, content='search_documents', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 0')""",
    """CREATE TRIGGER search_fts_insert AFTER INSERT ON search_documents BEGIN
        INSERT INTO search_fts (rowid, terms) VALUES (new.seq, new.terms);
    END""",
    """CREATE TRIGGER search_fts_delete AFTER DELETE ON search_documents BEGIN
        INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', old.seq, old.terms);
    END""",
    """CREATE TRIGGER search_fts_update AFTER UPDATE OF terms ON search_documents BEGIN
        INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', old.seq, old.terms);
        INSERT INTO search_fts (rowid, terms) VALUES (new.seq, new.terms);
    END""",
)
SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS search_fts_update",
    "DROP TRIGGER IF EXISTS search_fts_delete",
    "DROP TRIGGER IF EXISTS search_fts_insert",
    "DROP TABLE IF EXISTS search_fts",
)
POSTGRES_UP = (
    """CREATE TABLE search_fts (
        seq BIGINT PRIMARY KEY REFERENCES search_documents (seq) ON DELETE CASCADE,
        vector TSVECTOR NOT NULL
    )""",
    "CREATE INDEX search_fts_vector ON search_fts USING GIN (vector)",
    """CREATE FUNCTION search_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO search_fts (seq, vector) VALUES (NEW.seq, to_tsvector('simple', NEW.terms))
        ON CONFLICT (seq) DO UPDATE SET vector = EXCLUDED.vector;
        RETURN NULL;
    END
    $$""",
    """CREATE TRIGGER search_fts_sync AFTER INSERT OR UPDATE OF terms ON search_documents
        FOR EACH ROW EXECUTE FUNCTION search_fts_sync()""",
)
POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS search_fts_sync ON search_documents",
    "DROP FUNCTION IF EXISTS search_fts_sync()",
    "DROP TABLE IF EXISTS search_fts",
)


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("seq", AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.Column("fields", JSON, nullable=False),
        sa.Column("body", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_search_documents")),
        sa.UniqueConstraint("id", name=op.f("uq_search_documents_id")),
    )
    for name, columns in INDEXES.items():
        op.create_index(name, "search_documents", columns)
    for statement in _raw_sql(up=True):
        op.execute(statement)


def downgrade() -> None:
    for statement in _raw_sql(up=False):
        op.execute(statement)
    for name in reversed(INDEXES):
        op.drop_index(name, table_name="search_documents")
    op.drop_table("search_documents")


def _raw_sql(*, up: bool) -> Sequence[str]:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        return SQLITE_UP if up else SQLITE_DOWN
    if dialect == "postgresql":
        return POSTGRES_UP if up else POSTGRES_DOWN
    raise NotImplementedError(f"search_documents has no full-text index for {dialect}")
