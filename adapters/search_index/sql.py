"""SearchIndex in the system-of-record database: SQLite FTS5 or PostgreSQL full-text.

URL:      sql://   (the database of STUDIO9_DATABASE_URL, schema from migrations 0003 and 0010)
Features: AND-of-words full text · exact field (JSON) and term filters · owner and reader
          scoping · four orders with keyset paging · facets · bulk idempotent upserts ·
          index kept in step by triggers
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

Reader keys and multi-valued terms live in ``search_readers`` and ``search_terms`` (one row
per value, indexed value first): the reader filter is ``seq IN (the caller's documents)``,
which the engines start from (SQLite with a nudge, PostgreSQL with planner costs for a
cached index, both explained where they are set). An upsert rewrites them for the
documents it actually replaced (the upsert's RETURNING), in the same transaction. Facets
are one more statement (``adapters.search_index.sql_facets``) over the same conditions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from adapters.database.sql import SqlDatabase
from adapters.search_index.sql_facets import facet_statement
from adapters.search_index.sql_models import SearchDocumentRow, SearchReaderRow, SearchTermRow
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.metadata.domain import (
    SearchDocument,
    SearchHit,
    SearchPage,
    SearchPosition,
    SearchQuery,
    name_key,
    words,
)
from studio9.urls import AdapterURL, redact

DOCS: sa.Table = SearchDocumentRow.__table__  # type: ignore[assignment]
READERS: sa.Table = SearchReaderRow.__table__  # type: ignore[assignment]
TERMS: sa.Table = SearchTermRow.__table__  # type: ignore[assignment]
#: SQLite: the FTS5 table, whose rowid is ``search_documents.seq``.
SQLITE_FTS = sa.table("search_fts", sa.column("rowid", sa.Integer))
_SQLITE_FTS_NAME: ColumnElement[Any] = sa.literal_column("search_fts")
#: PostgreSQL: one tsvector per document.
POSTGRES_FTS = sa.table(
    "search_fts", sa.column("seq", sa.BigInteger), sa.column("vector", postgresql.TSVECTOR)
)
_SIMPLE: ColumnElement[Any] = sa.literal_column("'simple'::regconfig")
_REPLACED = ("kind", "owner_id", "terms", "fields", "body", "updated_at", "sort_name")
_DELETE_CHUNK = 500
_DIALECTS = ("sqlite", "postgresql")
#: PostgreSQL: a batch of documents as one JSON array, unpacked by the server; the rows it
#: actually wrote come back, for their reader keys and terms.
_PG_UPSERT = sa.text(
    "INSERT INTO search_documents (id, kind, owner_id, terms, fields, body, updated_at, sort_name)"
    " SELECT d.id, d.kind, d.owner_id, d.terms, d.fields, d.body, d.updated_at, d.sort_name"
    " FROM jsonb_to_recordset(CAST(:docs AS jsonb)) AS d(id text, kind text, owner_id text,"
    " terms text, fields jsonb, body jsonb, updated_at timestamptz, sort_name text)"
    " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, owner_id = excluded.owner_id,"
    " terms = excluded.terms, fields = excluded.fields, body = excluded.body,"
    " updated_at = excluded.updated_at, sort_name = excluded.sort_name"
    " WHERE excluded.updated_at >= search_documents.updated_at"
    " RETURNING seq, id"
)
_PG_READERS = sa.text(
    "INSERT INTO search_readers (seq, reader)"
    " SELECT r.seq, r.reader FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(seq bigint, reader text)"
)
_PG_TERMS = sa.text(
    "INSERT INTO search_terms (seq, key, value) SELECT t.seq, t.key, t.value"
    " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(seq bigint, key text, value text)"
)


#: PostgreSQL, for the transaction of a reader-filtered search: a caller reads a few thousand
#: documents of the kind, found by the reader index and then fetched by primary key. With the
#: default costs (random_page_cost 4, for disks whose random reads are slow) the planner
#: prefers reading every document of the kind instead, or walking them in id order on
#: parallel workers, several times slower on a cached index (benchmarks/library_index.py).
_PG_READER_PLANS = sa.text(
    "SELECT set_config('random_page_cost', '1.1', true),"
    " set_config('max_parallel_workers_per_gather', '0', true)"
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
        latest = _latest(docs)
        if not latest:
            return
        rows = [_row(doc) for doc in latest.values()]
        with _unavailable():
            async with self.database.engine.begin() as conn:
                if self._dialect == "postgresql":
                    # One statement for the batch, not one per document (executemany).
                    result = await conn.execute(_PG_UPSERT, {"docs": _JSON_ENCODE(rows).decode()})
                else:
                    result = await conn.execute(
                        self._upsert_statement().returning(DOCS.c.seq, DOCS.c.id), rows
                    )
                written = {row.id: row.seq for row in result.all()}
                if written:
                    await self._write_side_rows(conn, written, latest)

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
        position = query.position()
        statement = self._search_statement(query, position)
        facets: dict[str, dict[str, int]] = {name: {} for name in query.facets}
        with _unavailable():
            async with self.database.engine.connect() as conn:
                if query.readers is not None and self._dialect == "postgresql":
                    await conn.execute(_PG_READER_PLANS)
                rows = (await conn.execute(statement)).all()
                if query.facets:
                    for row in await conn.execute(self._facet_statement(query)):
                        facets[row.facet][row.value] = int(row.n)
        return SearchPage.of(query, [_hit(row) for row in rows], facets)

    async def clear(self, kind: str) -> None:
        with _unavailable():
            async with self.database.engine.begin() as conn:
                await conn.execute(sa.delete(DOCS).where(DOCS.c.kind == kind))

    async def ping(self) -> None:
        await self.database.ping()

    async def aclose(self) -> None:
        return None  # the database belongs to the composition root, which closes it

    # -- writes --------------------------------------------------------------------------

    async def _write_side_rows(
        self, conn: AsyncConnection, written: Mapping[str, int], docs: Mapping[str, SearchDocument]
    ) -> None:
        seqs = list(written.values())
        for start in range(0, len(seqs), _DELETE_CHUNK):
            chunk = seqs[start : start + _DELETE_CHUNK]
            await conn.execute(sa.delete(READERS).where(READERS.c.seq.in_(chunk)))
            await conn.execute(sa.delete(TERMS).where(TERMS.c.seq.in_(chunk)))
        readers = [
            {"seq": seq, "reader": reader}
            for doc_id, seq in written.items()
            for reader in docs[doc_id].readers
        ]
        terms = [
            {"seq": seq, "key": key, "value": value}
            for doc_id, seq in written.items()
            for key, value in docs[doc_id].term_pairs()
        ]
        if self._dialect == "postgresql":
            if readers:
                await conn.execute(_PG_READERS, {"rows": _JSON_ENCODE(readers).decode()})
            if terms:
                await conn.execute(_PG_TERMS, {"rows": _JSON_ENCODE(terms).decode()})
            return
        if readers:
            await conn.execute(sa.insert(READERS), readers)
        if terms:
            await conn.execute(sa.insert(TERMS), terms)

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

    # -- reads ---------------------------------------------------------------------------

    def _conditions(self, query: SearchQuery) -> list[ColumnElement[bool]]:
        """Every condition but the text match: kind, owner, readers, fields, terms."""
        kind: ColumnElement[str] = DOCS.c.kind
        if query.readers is not None and self._dialect == "sqlite":
            # ``kind || ''`` is no indexed column: SQLite would otherwise walk the whole kind
            # (every asset) and test each document against the readers, not start from them.
            kind = DOCS.c.kind.concat("")
        conditions: list[ColumnElement[bool]] = [kind == query.kind]
        if query.owner_id is not None:
            conditions.append(DOCS.c.owner_id == query.owner_id)
        if query.not_owner_id is not None:
            conditions.append(DOCS.c.owner_id != query.not_owner_id)
        if query.readers is not None:
            # IN (subquery), not a correlated EXISTS: SQLite then starts from the caller's
            # documents (the reader index) instead of testing every document of the kind.
            readable = sa.select(READERS.c.seq).where(READERS.c.reader.in_(sorted(query.readers)))
            conditions.append(DOCS.c.seq.in_(readable))
        if query.filters:
            conditions.extend(self._field_conditions(query))
        for key, value in sorted(query.any_terms.items()):
            conditions.append(
                sa.exists().where(TERMS.c.seq == DOCS.c.seq, TERMS.c.key == key, TERMS.c.value == value)
            )
        return conditions

    def _text(
        self, query_words: Sequence[str]
    ) -> tuple[sa.FromClause, ColumnElement[bool], ColumnElement[float]]:
        if self._dialect == "postgresql":
            return _postgres_text(query_words)
        return _sqlite_text(query_words)

    def _search_statement(self, query: SearchQuery, position: SearchPosition | None) -> sa.Select[Any]:
        conditions = self._conditions(query)
        columns = (DOCS.c.id, DOCS.c.kind, DOCS.c.owner_id, DOCS.c.fields, DOCS.c.body, DOCS.c.updated_at)
        source: sa.FromClause = DOCS
        score: ColumnElement[Any] = sa.null()
        query_words = query.words
        if query_words:
            source, match, text_score = self._text(query_words)
            conditions.append(match)
            if query.ranked:
                score = text_score
        sort = query.sort
        order: list[Any]
        if sort == "relevance":
            order = [score.desc(), DOCS.c.id.desc()]
            if position is not None and position.score is not None:
                conditions.append(
                    sa.or_(score < position.score, sa.and_(score == position.score, DOCS.c.id < position.id))
                )
        elif sort == "updated":
            order = [DOCS.c.updated_at.desc(), DOCS.c.id.desc()]
            if position is not None:
                at = sa.literal(position.updated_at, DOCS.c.updated_at.type)
                conditions.append(
                    sa.tuple_(DOCS.c.updated_at, DOCS.c.id) < sa.tuple_(at, sa.literal(position.id))
                )
        elif sort == "name":
            order = [DOCS.c.sort_name.asc(), DOCS.c.id.asc()]
            if position is not None:
                name = sa.literal(position.key, DOCS.c.sort_name.type)
                conditions.append(
                    sa.tuple_(DOCS.c.sort_name, DOCS.c.id) > sa.tuple_(name, sa.literal(position.id))
                )
        else:
            order = [DOCS.c.id.desc()]
            if position is not None:
                conditions.append(DOCS.c.id < position.id)
        return (
            sa.select(*columns, score.label("score"))
            .select_from(source)
            .where(*conditions)
            .order_by(*order)
            .limit(query.limit + 1)
        )

    def _facet_statement(self, query: SearchQuery) -> sa.Select[Any]:
        conditions = self._conditions(query)
        source: sa.FromClause = DOCS
        if query.words:
            source, match, _ = self._text(query.words)
            conditions.append(match)
        matched = sa.select(DOCS.c.seq, DOCS.c.kind, DOCS.c.owner_id, DOCS.c.fields).select_from(source)
        cheap = query.readers is not None and not query.words
        return facet_statement(
            matched.where(*conditions), query.facets, dialect=self._dialect, materialise=not cheap
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


def _latest(docs: Sequence[SearchDocument]) -> dict[str, SearchDocument]:
    # One INSERT cannot touch a row twice (PostgreSQL refuses), so a batch keeps one
    # document per id, chosen by the same rule as the database: the later of equal times.
    latest: dict[str, SearchDocument] = {}
    for doc in docs:
        kept = latest.get(doc.id)
        if kept is None or doc.updated_at >= kept.updated_at:
            latest[doc.id] = doc
    return latest


def _row(doc: SearchDocument) -> dict[str, Any]:
    return {
        "id": doc.id,
        "kind": doc.kind,
        "owner_id": doc.owner_id,
        "terms": " ".join(words(doc.text)),
        "fields": dict(doc.fields),
        "body": dict(doc.body),
        "updated_at": doc.updated_at,
        "sort_name": name_key(doc.fields),
    }


def _hit(row: sa.Row[Any]) -> SearchHit:
    return SearchHit(
        id=row.id,
        kind=row.kind,
        owner_id=row.owner_id,
        fields=row.fields,
        body=row.body,
        updated_at=row.updated_at,
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
