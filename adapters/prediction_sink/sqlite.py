"""Predictions in a local SQLite file: the edge default.

URL:      sqlite:///relative/predictions.db · sqlite:////absolute/predictions.db
          (SQLAlchemy's convention: the path is what follows the third slash)
Features: a load is one transaction that inserts the rows and swaps the import in · WAL
          (queries never wait for a load) · the sink owns its DDL (created on first use) · single host
Extra:    none (stdlib ``sqlite3``, run in worker threads)

Tables: ``predictions`` (the row's own columns, keyed by the rowid, ``import_no * 2**32 +
row``: see ``adapters/prediction_sink/keys.py``; nothing else indexed) and ``prediction_imports`` (one row
per import key: its import id and number, attributes and row count). A prediction's import
attributes (model, owner, stream, source job, created_at) are stored once, in its import's row:
every filter is one of them, so queries find the matching imports first and read each one's
key range; daily counts sum the imports' row counts.

A load opens its own connection and ONE ``BEGIN IMMEDIATE`` transaction, in which it numbers the
import (one more than the highest number recorded) and stages the rows: each batch is
``executemany``d straight into ``predictions`` (keys of a new import number, so nothing else is
touched) and stays invisible to every other connection until the commit. Then, in the same
transaction: find the key's import, delete its key range, record the new import, commit. An
error, a cancellation or the process dying before the commit rolls it all back.
``BEGIN IMMEDIATE`` takes the file's write lock first, so concurrent loads (of any key) run
one after the other, each seeing the other's commit: a load waits, cancellably, up to
``WRITER_WAIT`` seconds for the one before to finish. (Staging in a TEMP table first held the
lock only for the swap, but wrote every row twice.)
Queries use one shared connection.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, Self, TypeVar

import anyio
import anyio.to_thread
import msgspec

from adapters.prediction_sink.keys import cursor_row, key_range, row_keys
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
from studio9.urls import AdapterURL

T = TypeVar("T")

_SETTING = "STUDIO9_SINK_URL"
_COLUMNS = "key, item_key, label, confidence, probabilities, extra"
_IMPORT_COLUMNS = (
    "import_id, import_no, source_job_id, model_id, model_version, stream_id, owner_id, created_at"
)
#: Page size of a new sink file (``benchmarks/predictions_ingest.py`` gives its baseline the same).
PAGE_SIZE: Final = 16384
#: How long a load waits for another load of the same file to commit (it holds the write lock
#: for its whole stream) before it fails; the wait is cancellable.
WRITER_WAIT: Final = 900.0
_WRITER_POLL: Final = 0.05
_SCHEMA = """
CREATE TABLE IF NOT EXISTS prediction_imports (
    import_key TEXT PRIMARY KEY, import_id TEXT NOT NULL UNIQUE, import_no INTEGER NOT NULL UNIQUE,
    source_job_id TEXT, model_id TEXT NOT NULL, model_version TEXT, stream_id TEXT,
    owner_id TEXT NOT NULL, created_at TEXT NOT NULL, rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    key INTEGER PRIMARY KEY, item_key TEXT NOT NULL, label TEXT NOT NULL, confidence REAL,
    probabilities TEXT, extra TEXT
);
"""
#: Rows per INSERT statement: one statement step per row cost ~25 % more CPU (measured on a
#: 1,000,000-row load); 6 x 64 parameters stay far below SQLite's limit of 32,766.
_ROWS_PER_INSERT: Final = 64
# Queries are built from constants only (hence the S608 waivers); every value is bound.
_RECORD = """
INSERT INTO prediction_imports (import_key, import_id, import_no, source_job_id, model_id,
                                model_version, stream_id, owner_id, created_at, rows)
VALUES (:key, :import_id, :import_no, :source_job_id, :model_id, :model_version, :stream_id,
        :owner_id, :created_at, :rows)
ON CONFLICT (import_key) DO UPDATE SET
    import_id = excluded.import_id, import_no = excluded.import_no, source_job_id = excluded.source_job_id,
    model_id = excluded.model_id, model_version = excluded.model_version,
    stream_id = excluded.stream_id, owner_id = excluded.owner_id,
    created_at = excluded.created_at, rows = excluded.rows"""
_RANGE = f"SELECT {_COLUMNS} FROM predictions WHERE key > ? AND key < ? ORDER BY key LIMIT ?"  # noqa: S608
_IMPORTS_PAGE = 100
_OBJECT = msgspec.json.Decoder(dict[str, Any])


class SqlitePredictionSink:
    """``PredictionSink`` in one SQLite file (see ``studio9.predictions.ports`` for the contract)."""

    def __init__(self, path: Path, *, timeout: float) -> None:
        self.path = path
        self._timeout = timeout
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()
        self._schema_ready = False

    @classmethod
    def from_url(cls, url: AdapterURL, options: AdapterOptions) -> Self:
        """Build the sink from ``sqlite:///path``; raise ConfigError for a bad URL."""
        path = url.path[1:] if url.path.startswith("/") else url.path
        if url.host or not path or path.endswith("/"):
            raise ConfigError(f"{url} needs a file path: sqlite:///path/predictions.db", setting=_SETTING)
        if url.query:
            raise ConfigError(f"sqlite:// takes no options, got {sorted(url.query)}", setting=_SETTING)
        return cls(Path(path), timeout=options.timeout)

    async def ping(self) -> None:
        await self._run(self._read, lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    async def ensure_schema(self) -> None:
        await self._run(self._read, lambda conn: conn.executescript(_SCHEMA))
        self._schema_ready = True

    async def load(self, batches: AsyncIterable[PredictionBatch], meta: ImportMeta) -> LoadResult:
        await self._ready()
        conn = await self._run(self._connect)
        try:
            await self._begin(conn)
            import_no = await self._run(_next_number, conn)
            rows = 0
            async for batch in batches:
                await self._run(_insert, conn, batch, import_no)
                rows += batch.num_rows
            replaced = await self._run(_swap, conn, meta, import_no, rows)
        finally:
            conn.close()  # here, not in a thread: it must run in a cancelled task too (rolls back)
        return LoadResult(rows=rows, replaced=replaced)

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        check_page(limit, cursor)
        await self._ready()
        rows = await self._run(self._read, lambda conn: _page(conn, filters, limit, cursor))
        items = tuple(_prediction(attributes, row) for attributes, row in rows[:limit])
        return PredictionPage(items, items[-1].id if len(rows) > limit else None)

    async def daily_counts(self, filters: PredictionFilter) -> Sequence[DailyCount]:
        where, params = _where(filters)
        sql = (
            "SELECT substr(created_at, 1, 10) AS day, model_id, sum(rows) FROM prediction_imports"  # noqa: S608
            f"{where} GROUP BY day, model_id HAVING sum(rows) > 0 ORDER BY day, model_id"
        )
        await self._ready()
        rows = await self._run(self._read, lambda conn: conn.execute(sql, params).fetchall())
        return [DailyCount(date.fromisoformat(day), model, count) for day, model, count in rows]

    # -- connections ---------------------------------------------------------------------------

    async def _ready(self) -> None:
        if not self._schema_ready:
            await self.ensure_schema()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        # Set before anything creates the file (a no-op on existing ones): with 16 KiB pages a
        # 1,000,000-row load took ~15 % less CPU than with the default 4 KiB (fewer page splits).
        conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    async def _begin(self, conn: sqlite3.Connection) -> None:
        """Take the file's write lock (``BEGIN IMMEDIATE``). While another load holds it, poll in
        short steps, so that a cancel stops the wait, for up to ``WRITER_WAIT`` seconds."""
        give_up = anyio.current_time() + max(WRITER_WAIT, self._timeout)
        while not await self._run(_try_begin, conn, self._timeout):
            if anyio.current_time() > give_up:
                raise BackendUnavailable(
                    f"prediction sink {self.path.name}: another load held the file for {WRITER_WAIT:g}s"
                )
            await anyio.sleep(_WRITER_POLL)

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._reader_lock:
            if self._reader is None:
                self._reader = self._connect()
            return work(self._reader)

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread, with sqlite3 and file errors translated."""
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"prediction sink {self.path.name} failed: {exc}") from exc


def _try_begin(conn: sqlite3.Connection, timeout: float) -> bool:
    """``BEGIN IMMEDIATE`` without waiting; False while another connection writes."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:  # also its extended codes
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    return True


def _next_number(conn: sqlite3.Connection) -> int:
    """The new import's number: free, as the load holds the write lock until it commits."""
    return int(conn.execute("SELECT coalesce(max(import_no), 0) + 1 FROM prediction_imports").fetchone()[0])


def _insert(conn: sqlite3.Connection, batch: PredictionBatch, import_no: int) -> None:
    """The batch's rows, ``_ROWS_PER_INSERT`` to a statement (the last statement takes the rest)."""
    source_row, *values = batch.data.columns
    columns = [row_keys(import_no, source_row), *values]
    width, rows = len(columns), batch.num_rows
    flat: list[Any] = [None] * (width * rows)  # row after row, filled a column at a time
    for position, column in enumerate(columns):
        flat[position::width] = column.to_pylist()
    whole, step = rows - rows % _ROWS_PER_INSERT, width * _ROWS_PER_INSERT
    if whole:
        statements = (flat[start : start + step] for start in range(0, whole * width, step))
        conn.executemany(_insert_sql(_ROWS_PER_INSERT), statements)
    if whole < rows:
        conn.execute(_insert_sql(rows - whole), flat[whole * width :])


@functools.cache
def _insert_sql(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO predictions ({_COLUMNS}) VALUES {values}"  # noqa: S608


def _swap(conn: sqlite3.Connection, meta: ImportMeta, import_no: int, rows: int) -> bool:
    """In the load's transaction, opened by ``_begin`` and holding its rows: drop the key's
    previous import, record this one, commit. True if there was one."""
    values = {
        "key": meta.key.value,
        "import_id": meta.import_id,
        "import_no": import_no,
        "source_job_id": meta.source_job_id,
        "model_id": meta.model_id,
        "model_version": meta.model_version,
        "stream_id": meta.stream_id,
        "owner_id": meta.owner_id,
        "created_at": _iso(meta.created_at),
        "rows": rows,
    }
    try:
        old = conn.execute("SELECT import_no FROM prediction_imports WHERE import_key = ?", (values["key"],))
        previous = old.fetchone()
        if previous is not None:
            conn.execute("DELETE FROM predictions WHERE key > ? AND key < ?", key_range(previous[0]))
        conn.execute(_RECORD, values)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return previous is not None


def _page(
    conn: sqlite3.Connection, filters: PredictionFilter, limit: int, cursor: str | None
) -> list[tuple[Any, Any]]:
    """Up to ``limit + 1`` (import attributes, row) pairs after ``cursor``: the matching imports
    in id order, each by its key range."""
    where, params = _where(filters, after=cursor_import(cursor))
    found: list[tuple[Any, Any]] = []
    last = ""
    while len(found) <= limit:
        imports = conn.execute(
            f"SELECT {_IMPORT_COLUMNS} FROM prediction_imports{where} AND import_id > ?"  # noqa: S608
            " ORDER BY import_id LIMIT ?",
            (*params, last, _IMPORTS_PAGE),
        ).fetchall()
        for attributes in imports:
            import_id, import_no = attributes[:2]
            low, high = key_range(import_no, cursor_row(cursor, import_id))
            rows = conn.execute(_RANGE, (low, high, limit + 1 - len(found))).fetchall()
            found += [(attributes, row) for row in rows]
            if len(found) > limit:
                break
        if len(imports) < _IMPORTS_PAGE:
            break
        last = imports[-1][0]
    return found


def _iso(moment: datetime) -> str:
    """UTC, fixed width: text order is time order, and the day is the first ten characters."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _where(f: PredictionFilter, *, after: str | None = None) -> tuple[str, list[Any]]:
    return where_clause(f, after=after, placeholder="?", true="1 = 1", time=_iso)


def _prediction(attributes: Sequence[Any], row: Sequence[Any]) -> Prediction:
    return prediction_from(attributes, row, created_at=datetime.fromisoformat, doc=_OBJECT.decode)
