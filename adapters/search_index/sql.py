"""SearchIndex in the system-of-record database: SQLite FTS5 or PostgreSQL full-text.

URL:      sql://   (the database of STUDIO9_DATABASE_URL, schema from migration 0003)
Features: AND-of-words full text · exact field filters (JSON) · owner scoping · keyset
          paging · bulk idempotent upserts · index kept in step by triggers
Extra:    none beyond the database's own driver

Both engines index the ``terms`` column, the words Python's ``words()`` made, so that the
dialects' own parsers (PostgreSQL reads ``data.profile`` as one host name) cannot make
them disagree. User text never reaches a query language unquoted: on SQLite every word
is an FTS5 string literal, on PostgreSQL the words go through ``plainto_tsquery``; both
travel as bind parameters. Relevance is per document (how often the query's words occur
on SQLite, ``ts_rank`` on PostgreSQL), never corpus-wide like bm25, so that writes
between two pages do not reorder the results a cursor points into.

SQLite counts the occurrences with FTS5 itself: ``highlight()`` marks each one with a
character that ``terms`` never holds, so the length it adds is the count, computed per
matched row with MATCH's own tokenizer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, Self

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.sql.elements import ColumnElement

from adapters.database.sql import SqlDatabase
from adapters.search_index.sql_models import SearchDocumentRow
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.metadata.domain import SearchDocument, SearchHit, SearchPage, SearchPosition, SearchQuery, words
from studio9.urls import AdapterURL, redact

DOCS: sa.Table = SearchDocumentRow.__table__  # type: ignore[assignment]
#: SQLite: the FTS5 table, whose rowid is ``search_documents.seq``.
SQLITE_FTS = sa.table("search_fts", sa.column("rowid", sa.Integer))
_SQLITE_FTS_NAME: ColumnElement[Any] = sa.literal_column("search_fts")
#: PostgreSQL: one tsvector per document.
POSTGRES_FTS = sa.table(
    "search_fts", sa.column("seq", sa.BigInteger), sa.column("vector", postgresql.TSVECTOR)
)
_SIMPLE: ColumnElement[Any] = sa.literal_column("'simple'::regconfig")
_REPLACED = ("kind", "owner_id", "terms", "fields", "body", "updated_at")
_DELETE_CHUNK = 500
_DIALECTS = ("sqlite", "postgresql")
#: PostgreSQL: a batch of documents as one JSON array, unpacked by the server.
_PG_UPSERT = sa.text(
    "INSERT INTO search_documents (id, kind, owner_id, terms, fields, body, updated_at)"
    " SELECT d.id, d.kind, d.owner_id, d.terms, d.fields, d.body, d.updated_at"
    " FROM jsonb_to_recordset(CAST(:docs AS jsonb)) AS d(id text, kind text, owner_id text,"
    " terms text, fields jsonb, body jsonb, updated_at timestamptz)"
    " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, owner_id = excluded.owner_id,"
    " terms = excluded.terms, fields = excluded.fields, body = excluded.body,"
    " updated_at = excluded.updated_at"
    " WHERE excluded.updated_at >= search_documents.updated_at"
)


#: msgspec writes datetimes as RFC 3339 itself; ``json`` called a Python hook for each one.
_JSON_ENCODE = msgspec.json.Encoder().encode


class SqlSearchIndex:
    """Search documents in the ``search_documents`` table of the shared database."""

    def __init__(self, database: SqlDatabase) -> None:
        self.database = database
        self._dialect = database.dialect

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        database = options.database
        if not isinstance(database, SqlDatabase):
            raise ConfigError(
                "sql:// needs an SQL database in STUDIO9_DATABASE_URL", setting="STUDIO9_INDEX_URL"
            )
        if database.dialect not in _DIALECTS:
            raise ConfigError(
                f"sql:// supports SQLite and PostgreSQL, not {database.dialect}", setting="STUDIO9_INDEX_URL"
            )
        return cls(database)

    async def upsert(self, docs: Sequence[SearchDocument]) -> None:
        rows = _rows(docs)
        if not rows:
            return
        with _unavailable():
            async with self.database.engine.begin() as conn:
                if self._dialect == "postgresql":
                    # One statement for the batch, not one per document (executemany).
                    await conn.execute(_PG_UPSERT, {"docs": _JSON_ENCODE(rows).decode()})
                else:
                    await conn.execute(self._upsert_statement(), rows)

    async def delete(self, ids: Sequence[str]) -> None:
        unique = list(dict.fromkeys(ids))
        if not unique:
            return
        with _unavailable():
            async with self.database.engine.begin() as conn:
                for start in range(0, len(unique), _DELETE_CHUNK):
                    chunk = unique[start : start + _DELETE_CHUNK]
                    await conn.execute(sa.delete(DOCS).where(DOCS.c.id.in_(chunk)))

    async def search(self, query: SearchQuery) -> SearchPage:
        statement = self._search_statement(query, query.position())
        with _unavailable():
            async with self.database.engine.connect() as conn:
                rows = (await conn.execute(statement)).all()
        return SearchPage.of(query, [_hit(row) for row in rows])

    async def clear(self, kind: str) -> None:
        with _unavailable():
            async with self.database.engine.begin() as conn:
                await conn.execute(sa.delete(DOCS).where(DOCS.c.kind == kind))

    async def ping(self) -> None:
        await self.database.ping()

    async def aclose(self) -> None:
        return None  # the database belongs to the composition root, which closes it

    # -- statements ----------------------------------------------------------------------

    def _upsert_statement(self) -> sa.Insert:
        if self._dialect == "postgresql":
            pg = postgresql.insert(DOCS)
            return pg.on_conflict_do_update(
                index_elements=[DOCS.c.id],
                set_={name: pg.excluded[name] for name in _REPLACED},
                where=pg.excluded.updated_at >= DOCS.c.updated_at,
            )
        lite = sqlite.insert(DOCS)
        return lite.on_conflict_do_update(
            index_elements=[DOCS.c.id],
            set_={name: lite.excluded[name] for name in _REPLACED},
            where=lite.excluded.updated_at >= DOCS.c.updated_at,
        )

    def _search_statement(self, query: SearchQuery, position: SearchPosition | None) -> sa.Select[Any]:
        conditions: list[ColumnElement[bool]] = [DOCS.c.kind == query.kind]
        if query.owner_id is not None:
            conditions.append(DOCS.c.owner_id == query.owner_id)
        if query.filters:
            conditions.extend(self._field_conditions(query))
        columns = (DOCS.c.id, DOCS.c.kind, DOCS.c.owner_id, DOCS.c.fields, DOCS.c.body)
        query_words = query.words
        if not query_words:
            if position is not None:
                conditions.append(DOCS.c.id < position.id)
            return (
                sa.select(*columns, sa.null().label("score"))
                .where(*conditions)
                .order_by(DOCS.c.id.desc())
                .limit(query.limit + 1)
            )
        if self._dialect == "postgresql":
            source, match, score = _postgres_text(query_words)
        else:
            source, match, score = _sqlite_text(query_words)
        conditions.append(match)
        if position is not None and position.score is not None:
            conditions.append(
                sa.or_(score < position.score, sa.and_(score == position.score, DOCS.c.id < position.id))
            )
        return (
            sa.select(*columns, score.label("score"))
            .select_from(source)
            .where(*conditions)
            .order_by(score.desc(), DOCS.c.id.desc())
            .limit(query.limit + 1)
        )

    def _field_conditions(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        if self._dialect == "postgresql":
            # One JSONB containment test for every filter; the values travel as one JSON parameter.
            return [sa.type_coerce(DOCS.c.fields, postgresql.JSONB).contains(dict(query.filters))]
        # Keys are identifiers (the domain checks them); the JSON path is a bind parameter all the same.
        return [DOCS.c.fields[key].as_string() == value for key, value in query.filters.items()]


def _sqlite_text(
    query_words: Sequence[str],
) -> tuple[sa.FromClause, ColumnElement[bool], ColumnElement[float]]:
    # Every word is an FTS5 string: operators, column filters, NEAR and * inside it are text.
    fts_query = " ".join('"' + word.replace('"', '""') + '"' for word in query_words)
    source = DOCS.join(SQLITE_FTS, SQLITE_FTS.c.rowid == DOCS.c.seq)
    match = _SQLITE_FTS_NAME.match(fts_query)
    # Column 0 is ``terms``; char(1) opens each marked occurrence and nothing closes it.
    marked = sa.func.highlight(_SQLITE_FTS_NAME, sa.literal_column("0"), sa.func.char(1), "")
    score = sa.cast(sa.func.length(marked) - sa.func.length(DOCS.c.terms), sa.Float)
    return source, match, score


def _postgres_text(
    query_words: Sequence[str],
) -> tuple[sa.FromClause, ColumnElement[bool], ColumnElement[float]]:
    tsquery = sa.func.plainto_tsquery(_SIMPLE, " ".join(query_words))
    source = DOCS.join(POSTGRES_FTS, POSTGRES_FTS.c.seq == DOCS.c.seq)
    match = POSTGRES_FTS.c.vector.bool_op("@@")(tsquery)
    score = sa.cast(sa.func.ts_rank(POSTGRES_FTS.c.vector, tsquery), postgresql.DOUBLE_PRECISION)
    return source, match, score


def _rows(docs: Sequence[SearchDocument]) -> list[dict[str, Any]]:
    # One INSERT cannot touch a row twice (PostgreSQL refuses), so a batch keeps one
    # document per id, chosen by the same rule as the database: the later of equal times.
    latest: dict[str, SearchDocument] = {}
    for doc in docs:
        kept = latest.get(doc.id)
        if kept is None or doc.updated_at >= kept.updated_at:
            latest[doc.id] = doc
    return [
        {
            "id": doc.id,
            "kind": doc.kind,
            "owner_id": doc.owner_id,
            "terms": " ".join(words(doc.text)),
            "fields": dict(doc.fields),
            "body": dict(doc.body),
            "updated_at": doc.updated_at,
        }
        for doc in latest.values()
    ]


def _hit(row: sa.Row[Any]) -> SearchHit:
    return SearchHit(
        id=row.id,
        kind=row.kind,
        owner_id=row.owner_id,
        fields=row.fields,
        body=row.body,
        score=None if row.score is None else float(row.score),
    )


@contextlib.contextmanager
def _unavailable() -> Iterator[None]:
    """Translate "the database did not answer" into BackendUnavailable; let bugs through."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        reason = redact(str(exc.orig or exc)).splitlines()[0]
        raise BackendUnavailable(f"search index unavailable: {reason}") from exc
