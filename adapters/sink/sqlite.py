"""Predictions in a local SQLite file: the edge default.

URL:      sqlite:///relative/predictions.db · sqlite:////absolute/predictions.db
          (SQLAlchemy's convention: the path is what follows the third slash)
Features: staged loads swapped in by one transaction · WAL (queries never wait for a load)
          · the sink owns its DDL (created on first use) · single host
Extra:    none (stdlib ``sqlite3``, run in worker threads)

Tables: ``predictions`` (keyed by id, ``<import id>-<row>``, nothing else indexed) and
``prediction_imports`` (one row per import key: its import id, attributes and row count).
Every filter is an attribute of the import, so queries find the matching imports first and
read each one's id range; daily counts sum the imports' row counts.

A load opens its own connection and stages the batches (``executemany``, one transaction per
batch) into a TEMP table, which only that connection sees and which vanishes with it — also
when the process dies. The swap is one ``BEGIN IMMEDIATE`` transaction: find the key's
import, delete its id range, ``INSERT … SELECT`` the staged rows, record the new import.
``BEGIN IMMEDIATE`` takes the file's write lock first, so concurrent loads of one key
serialize and each sees the other's commit. Queries use one shared connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterable, Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import anyio.to_thread
import msgspec

from studio9.backends import AdapterOptions
from studio9.config.urls import AdapterURL
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
    id_range,
)

T = TypeVar("T")

_SETTING = "STUDIO9_SINK_URL"
_COLUMNS = (
    "id, import_id, source_job_id, model_id, model_version, stream_id, owner_id, created_at,"
    " item_key, label, confidence, probabilities, extra"
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS prediction_imports (
    import_key TEXT PRIMARY KEY, import_id TEXT NOT NULL UNIQUE, source_job_id TEXT,
    model_id TEXT NOT NULL, model_version TEXT, stream_id TEXT, owner_id TEXT NOT NULL,
    created_at TEXT NOT NULL, rows INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    id TEXT PRIMARY KEY, import_id TEXT NOT NULL, source_job_id TEXT, model_id TEXT NOT NULL,
    model_version TEXT, stream_id TEXT, owner_id TEXT NOT NULL, created_at TEXT NOT NULL,
    item_key TEXT NOT NULL, label TEXT NOT NULL, confidence REAL, probabilities TEXT, extra TEXT
) WITHOUT ROWID;
"""
_STAGING = """
CREATE TEMP TABLE predictions_staging (
    source_row INTEGER PRIMARY KEY, item_key TEXT NOT NULL, label TEXT NOT NULL, confidence REAL,
    probabilities TEXT, extra TEXT
)"""
_STAGE = "INSERT INTO temp.predictions_staging VALUES (?, ?, ?, ?, ?, ?)"
# Queries are built from constants only (hence the S608 waivers); every value is bound.
_MOVE = """
INSERT INTO predictions (id, import_id, source_job_id, model_id, model_version, stream_id,
                         owner_id, created_at, item_key, label, confidence, probabilities, extra)
SELECT printf('%s-%010d', :import_id, source_row), :import_id, :source_job_id, :model_id,
       :model_version, :stream_id, :owner_id, :created_at, item_key, label, confidence,
       probabilities, extra
FROM temp.predictions_staging ORDER BY source_row"""
_RECORD = """
INSERT INTO prediction_imports VALUES (:key, :import_id, :source_job_id, :model_id, :model_version,
                                       :stream_id, :owner_id, :created_at, :rows)
ON CONFLICT (import_key) DO UPDATE SET
    import_id = excluded.import_id, source_job_id = excluded.source_job_id,
    model_id = excluded.model_id, model_version = excluded.model_version,
    stream_id = excluded.stream_id, owner_id = excluded.owner_id,
    created_at = excluded.created_at, rows = excluded.rows"""
_RANGE = f"SELECT {_COLUMNS} FROM predictions WHERE id > ? AND id < ? ORDER BY id LIMIT ?"  # noqa: S608
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
            await self._run(conn.execute, _STAGING)
            rows = 0
            async for batch in batches:
                await self._run(_stage, conn, batch)
                rows += batch.num_rows
            replaced = await self._run(_swap, conn, meta, rows)
        finally:
            conn.close()  # here, not in a thread: it must run in a cancelled task too
        return LoadResult(rows=rows, replaced=replaced)

    async def query(
        self, filters: PredictionFilter, *, limit: int = 100, cursor: str | None = None
    ) -> PredictionPage:
        check_page(limit, cursor)
        await self._ready()
        rows = await self._run(self._read, lambda conn: _page(conn, filters, limit, cursor))
        items = tuple(_prediction(row) for row in rows[:limit])
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
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

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


def _stage(conn: sqlite3.Connection, batch: PredictionBatch) -> None:
    conn.execute("BEGIN")
    try:
        conn.executemany(_STAGE, batch.rows())
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _swap(conn: sqlite3.Connection, meta: ImportMeta, rows: int) -> bool:
    """Replace the key's import by the staged rows, in one transaction; True if one was there."""
    values = {
        "key": meta.key.value,
        "import_id": meta.import_id,
        "source_job_id": meta.source_job_id,
        "model_id": meta.model_id,
        "model_version": meta.model_version,
        "stream_id": meta.stream_id,
        "owner_id": meta.owner_id,
        "created_at": _iso(meta.created_at),
        "rows": rows,
    }
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = conn.execute("SELECT import_id FROM prediction_imports WHERE import_key = ?", (values["key"],))
        previous = old.fetchone()
        if previous is not None:
            conn.execute("DELETE FROM predictions WHERE id > ? AND id < ?", id_range(previous[0]))
        conn.execute(_MOVE, values)
        conn.execute(_RECORD, values)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return previous is not None


def _page(conn: sqlite3.Connection, filters: PredictionFilter, limit: int, cursor: str | None) -> list[Any]:
    """Up to ``limit + 1`` rows after ``cursor``: the matching imports in id order, each by its id range."""
    where, params = _where(filters, after=cursor_import(cursor))
    found: list[Any] = []
    last = ""
    while len(found) <= limit:
        imports = conn.execute(
            f"SELECT import_id FROM prediction_imports{where} AND import_id > ?"  # noqa: S608
            " ORDER BY import_id LIMIT ?",
            (*params, last, _IMPORTS_PAGE),
        ).fetchall()
        for (import_id,) in imports:
            low, high = id_range(import_id)
            low = max(low, cursor or "")
            found += conn.execute(_RANGE, (low, high, limit + 1 - len(found))).fetchall()
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
    """A WHERE clause on ``prediction_imports`` (always one: callers may append ``AND …``)."""
    clauses, params = ["1 = 1"], []
    for clause, value in (
        ("model_id = ?", f.model_id),
        ("stream_id = ?", f.stream_id),
        ("source_job_id = ?", f.source_job_id),
        ("owner_id = ?", f.owner_id),
        ("created_at >= ?", f.time_from and _iso(f.time_from)),
        ("created_at < ?", f.time_to and _iso(f.time_to)),
        ("import_id >= ?", after or None),
    ):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    return " WHERE " + " AND ".join(clauses), params


def _prediction(row: Sequence[Any]) -> Prediction:
    (pid, import_id, source_job_id, model_id, model_version, stream_id, owner_id, created_at) = row[:8]
    item_key, label, confidence, probabilities, extra = row[8:]
    return Prediction(
        id=pid,
        import_id=import_id,
        source_job_id=source_job_id,
        model_id=model_id,
        model_version=model_version,
        stream_id=stream_id,
        owner_id=owner_id,
        created_at=datetime.fromisoformat(created_at),
        item_key=item_key,
        label=label,
        confidence=confidence,
        probabilities=None if probabilities is None else _OBJECT.decode(probabilities),
        extra=None if extra is None else _OBJECT.decode(extra),
    )
