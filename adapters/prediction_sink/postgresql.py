"""Predictions in PostgreSQL, loaded with COPY.

URL:      postgresql://user:pass@host:5432/db?pool_size=4   (also postgres://, postgresql+psycopg://;
          other query parameters go to libpq, e.g. ``sslmode=require``)
Features: binary ``COPY … FROM STDIN`` straight into the table, inside the transaction that
          swaps the import in (never row INSERTs) · the swap is serialized per import key · json
          columns · the sink owns its DDL (created on first use, under an advisory lock)
Extra:    cloud (psycopg[pool])

Tables: ``predictions`` (primary key ``key``, ``import_no * 2**32 + row``: see
``adapters/prediction_sink/keys.py``; nothing else indexed, which keeps loads fast) and
``prediction_imports`` (one row per import key: import id and number, attributes, row count;
``prediction_import_numbers`` numbers the imports). A prediction's import attributes (model,
owner, stream, source job, created_at) are stored once, in its import's row, not on each of a
million rows: every filter is one of them, so queries find the matching imports first and read
each one's key range; daily counts sum the imports' row counts. ``probabilities`` and
``extra`` are ``json``, which the server validates and keeps as text (``jsonb`` converts each
value to its binary form too: ~0.3 s more server CPU per 1,000,000 rows, measured here).

A load takes a pooled connection and opens ONE transaction. It draws the import's number and
stages the rows by a binary ``COPY predictions`` (``adapters/prediction_sink/pgcopy.py`` builds each
batch's tuples column-wise), so they exist only inside that transaction until it commits. Then
it takes ``pg_advisory_xact_lock(hashtext(import_key))``, deletes the key range of the key's
previous import and upserts the import's row, and commits. The lock makes a concurrent load of the same
key wait (only for the other's swap: its COPY runs alongside) and then see the other's import
(READ COMMITTED takes a snapshot per statement), so exactly one copy survives. An error or
cancellation before the commit rolls everything back; a connection left mid-COPY is discarded
by the pool.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from datetime import UTC
from typing import Any, Final, Self

import anyio
import anyio.to_thread
import psycopg
import psycopg_pool

from adapters.prediction_sink.keys import cursor_row, key_range
from adapters.prediction_sink.pgformat import COLUMNS, HEADER, TRAILER
from adapters.prediction_sink.rows import prediction_from, where_clause
from studio9.backends import AdapterOptions
from studio9.errors import BackendUnavailable, ConfigError
from studio9.predictions.domain import (
    DailyCount,
    ImportMeta,
    LoadResult,
    Prediction,
    PredictionBatch,
    PredictionFilter,
    PredictionPage,
    check_page,
    cursor_import,
)
from studio9.urls import AdapterURL, redact

_SETTING: Final = "STUDIO9_SINK_URL"
_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg")
_IMPORT_COLUMNS: Final = (
    "import_id, import_no, source_job_id, model_id, model_version, stream_id, owner_id, created_at"
)
_SCHEMA: Final = [
    "SELECT pg_advisory_xact_lock(hashtext('studio9.predictions.schema'))",
    "CREATE SEQUENCE IF NOT EXISTS prediction_import_numbers",
    """CREATE TABLE IF NOT EXISTS prediction_imports (
        import_key text PRIMARY KEY, import_id text COLLATE "C" NOT NULL UNIQUE,
        import_no bigint NOT NULL UNIQUE, source_job_id text, model_id text NOT NULL,
        model_version text, stream_id text, owner_id text NOT NULL, created_at timestamptz NOT NULL,
        rows bigint NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS predictions (
        key bigint PRIMARY KEY, item_key text NOT NULL, label text NOT NULL,
        confidence double precision CHECK (confidence BETWEEN 0 AND 1), probabilities json, extra json)""",
]
_COPY: Final = f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN (FORMAT binary)"
# Queries are built from constants only (hence the S608 waivers); every value is bound.
_RECORD: Final = """
INSERT INTO prediction_imports (import_key, import_id, import_no, source_job_id, model_id,
                                model_version, stream_id, owner_id, created_at, rows)
VALUES (%(key)s, %(import_id)s, %(import_no)s, %(source_job_id)s, %(model_id)s, %(model_version)s,
        %(stream_id)s, %(owner_id)s, %(created_at)s, %(rows)s)
ON CONFLICT (import_key) DO UPDATE SET
    import_id = excluded.import_id, import_no = excluded.import_no, source_job_id = excluded.source_job_id,
    model_id = excluded.model_id, model_version = excluded.model_version,
    stream_id = excluded.stream_id, owner_id = excluded.owner_id,
    created_at = excluded.created_at, rows = excluded.rows"""
_RANGE: Final = (
    f"SELECT {', '.join(COLUMNS)} FROM predictions WHERE key > %s AND key < %s ORDER BY key LIMIT %s"  # noqa: S608
)
_IMPORTS_PAGE: Final = 100


class PostgresPredictionSink:
    """``PredictionSink`` in PostgreSQL over a psycopg pool (contract: ``studio9.predictions.ports``)."""

    def __init__(self, pool: psycopg_pool.AsyncConnectionPool[Any], *, name: str, timeout: float) -> None:
        self.name = name  # host/db, for messages: never the password
        self._pool, self._timeout = pool, timeout
        self._opened = False
        self._lock = anyio.Lock()
        self._schema_ready = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the sink from ``postgresql://…``; raise ConfigError for a bad URL."""
        if url.scheme not in _SCHEMES or not url.host:
            raise ConfigError(f"{url} is not a postgresql://user:pass@host/db URL", setting=_SETTING)
        try:
            size = int(url.query.get("pool_size", "4"))
        except ValueError:
            raise ConfigError("pool_size must be an integer", setting=_SETTING) from None
        head, _, query = url.with_scheme("postgresql").partition("?")
        kept = [part for part in query.split("&") if part and not part.startswith("pool_size=")]
        pool: psycopg_pool.AsyncConnectionPool[Any] = psycopg_pool.AsyncConnectionPool(
            head + ("?" + "&".join(kept) if kept else ""),
            min_size=1,
            max_size=max(1, size),
            timeout=options.timeout,
            open=False,
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            # UTF-8: the binary COPY sends text as the importer's UTF-8 bytes, unconverted.
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, int(options.timeout)),
                "client_encoding": "utf8",
            },
        )
        return cls(pool, name=f"{url.netloc}{url.path}", timeout=options.timeout)

    async def ping(self) -> None:
        async with self._connection() as conn:
            await conn.execute("SELECT 1")

    async def aclose(self) -> None:
        if self._opened:
            self._opened = False
            await self._pool.close()

    async def ensure_schema(self) -> None:
        async with self._connection() as conn, conn.transaction():
            for statement in _SCHEMA:
                await conn.execute(statement)
        self._schema_ready = True

    async def load(self, batches: AsyncIterable[PredictionBatch], meta: ImportMeta) -> LoadResult:
        from adapters.prediction_sink.pgcopy import copy_rows  # numpy and pyarrow: with the first load

        await self._ready()
        rows = 0
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute("SELECT nextval('prediction_import_numbers')")
            numbered = await cur.fetchone()
            assert numbered is not None  # nextval always answers
            import_no = numbered[0]
            async with cur.copy(_COPY) as copy:
                await copy.write(HEADER)
                async for batch in batches:
                    # Built in a worker thread (pyarrow releases the GIL) while the server
                    # parses the batch before: the event loop only moves bytes.
                    await copy.write(await anyio.to_thread.run_sync(copy_rows, batch.data, import_no))
                    rows += batch.num_rows
                await copy.write(TRAILER)
            await cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (meta.key.value,))
            await cur.execute(
                "SELECT import_no FROM prediction_imports WHERE import_key = %s", (meta.key.value,)
            )
            previous = await cur.fetchone()
            if previous is not None:
                await cur.execute(
                    "DELETE FROM predictions WHERE key > %s AND key < %s", key_range(previous[0])
                )
            await cur.execute(_RECORD, _params(meta, import_no, rows))
        return LoadResult(rows=rows, replaced=previous is not None)

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        check_page(limit, cursor)
        where, params = _where(filters, after=cursor_import(cursor))
        imports_sql = (
            f"SELECT {_IMPORT_COLUMNS} FROM prediction_imports{where} AND import_id > %s"  # noqa: S608
            " ORDER BY import_id LIMIT %s"
        )
        await self._ready()
        found: list[Prediction] = []
        last = ""
        async with self._connection() as conn:
            while len(found) <= limit:  # the matching imports in id order, each by its id range
                imports = await (await conn.execute(imports_sql, (*params, last, _IMPORTS_PAGE))).fetchall()
                for attributes in imports:
                    import_id, import_no = attributes[:2]
                    low, high = key_range(import_no, cursor_row(cursor, import_id))
                    page = await conn.execute(_RANGE, (low, high, limit + 1 - len(found)))
                    found += [_prediction(attributes, row) for row in await page.fetchall()]
                    if len(found) > limit:
                        break
                if len(imports) < _IMPORTS_PAGE:
                    break
                last = imports[-1][0]
        items = tuple(found[:limit])
        return PredictionPage(items, items[-1].id if len(found) > limit else None)

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        where, params = _where(filters)
        await self._ready()
        async with self._connection() as conn:
            found = await conn.execute(
                "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, model_id, sum(rows)"  # noqa: S608
                f" FROM prediction_imports{where} GROUP BY 1, 2 HAVING sum(rows) > 0 ORDER BY 1, 2",
                params,
            )
            rows = await found.fetchall()
        return [DailyCount(day, model, int(count)) for day, model, count in rows]

    async def _ready(self) -> None:
        if not self._schema_ready:
            await self.ensure_schema()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection (opening the pool on first use, on this loop), errors translated."""
        try:
            if not self._opened:
                async with self._lock:
                    if not self._opened:
                        await self._pool.open(wait=False)
                        self._opened = True
            async with self._pool.connection() as conn:
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise BackendUnavailable(
                f"prediction sink {self.name} did not answer in {self._timeout:g}s"
            ) from exc
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(f"prediction sink {self.name} unreachable: {_message(exc)}") from exc
        except psycopg.Error as exc:
            raise BackendUnavailable(f"prediction sink {self.name} failed: {_message(exc)}") from exc


def _message(exc: psycopg.Error) -> str:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return redact(f"{exc.sqlstate}: {first_line}" if exc.sqlstate else first_line)


def _params(meta: ImportMeta, import_no: int, rows: int) -> dict[str, Any]:
    return {
        "rows": rows,
        "key": meta.key.value,
        "import_id": meta.import_id,
        "import_no": import_no,
        "source_job_id": meta.source_job_id,
        "model_id": meta.model_id,
        "model_version": meta.model_version,
        "stream_id": meta.stream_id,
        "owner_id": meta.owner_id,
        "created_at": meta.created_at,
    }


def _where(f: PredictionFilter, *, after: str | None = None) -> tuple[str, list[Any]]:
    return where_clause(f, after=after, placeholder="%s", true="TRUE", time=_same)


def _prediction(attributes: Sequence[Any], row: Sequence[Any]) -> Prediction:
    return prediction_from(attributes, row, created_at=lambda value: value.astimezone(UTC), doc=_same)


def _same(value: Any) -> Any:
    return value  # psycopg binds datetimes and decodes JSON itself
