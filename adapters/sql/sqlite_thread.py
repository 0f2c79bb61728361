"""One thread owning one stdlib ``sqlite3`` connection, running the job store's units of work.

A unit of work is a plain function of the connection (``sqlite_units``); the event
loop hands it over with ``read`` or ``write`` and awaits its result: one thread hop per
call, however many statements the unit runs. The thread takes every call waiting in its
queue at once (a batch) and

- runs the batch's writes in ONE ``BEGIN IMMEDIATE`` transaction, each write in a
  savepoint of its own (a failing write is rolled back alone and fails alone), then
  commits once: under load a commit, and the pages it writes to the WAL, serve many
  writes, and SQLite's write lock is held only while the batch runs, never across
  event-loop turns;
- then runs the batch's reads, outside any transaction (WAL: they never wait for writers);
- then settles every caller's future with a single wake-up of each event loop.

Writes of one batch are visible to others (other connections, other processes, the
callers themselves) only once the batch commits, and results are handed out only then,
so a caller never sees a write that is later rolled back. Calls in one batch were all
pending at once, so any order among them is a valid one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, TypeVar

from studio9.errors import BackendUnavailable

P = ParamSpec("P")
T = TypeVar("T")

#: SQLite release that brought ``UPDATE … RETURNING``.
MIN_SQLITE = (3, 35, 0)
#: At most this many calls per batch, so that one batch never keeps its callers waiting long.
MAX_BATCH = 256


class _Call:
    """One unit of work to run (``unit`` None: close), and the future awaiting it."""

    __slots__ = ("args", "future", "kwargs", "unit", "write")

    def __init__(
        self,
        unit: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: asyncio.Future[Any],
        *,
        write: bool,
    ) -> None:
        self.unit, self.args, self.kwargs, self.future, self.write = unit, args, kwargs, future, write

    def __call__(self, conn: sqlite3.Connection) -> Any:
        assert self.unit is not None
        return self.unit(conn, *self.args, **self.kwargs)


# What the thread hands back for one call: the call, and its result or exception.
_Outcome = tuple[_Call, Any, Exception | None]


class SqliteThread:
    """Runs units of work on one ``sqlite3`` connection to ``path``, in a thread started on first use."""

    def __init__(self, path: str, *, timeout: float, name: str = "studio9-sqlite") -> None:
        self._path, self._timeout, self._name = path, timeout, name
        self._queue: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._conn: sqlite3.Connection | None = None

    @staticmethod
    def supported() -> bool:
        """Whether this Python's SQLite can run the units (it needs RETURNING)."""
        return sqlite3.sqlite_version_info >= MIN_SQLITE

    async def read(
        self, unit: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``unit(connection, *args)`` outside any transaction.

        Raises:
            BackendUnavailable: the database cannot be read, or the thread is closed.
        """
        return await self._submit(unit, args, kwargs, write=False)  # type: ignore[no-any-return]

    async def write(
        self, unit: Callable[Concatenate[sqlite3.Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """``unit(connection, *args)`` in a write transaction, committed before this returns.

        Raises:
            BackendUnavailable: the database stayed locked past the busy timeout, cannot be
                written, or the thread is closed.
        """
        return await self._submit(unit, args, kwargs, write=True)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Finish the calls already queued, close the connection and end the thread. Idempotent."""
        done = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._thread is None:
                return
            self._queue.put(_Call(None, (), {}, done, write=False))  # the last call ever queued
        await done

    async def _submit(
        self, unit: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *, write: bool
    ) -> Any:
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise BackendUnavailable("the job database is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(_Call(unit, args, kwargs, future, write=write))
        return await future

    # -- on the thread -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            calls = [self._queue.get()]
            while len(calls) < MAX_BATCH:
                try:
                    calls.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = next((c for c in calls if c.unit is None), None)
            live = [c for c in calls if c.unit is not None and not c.future.cancelled()]
            outcomes = self._run(live) if live else []
            if stop is not None:
                self._close()
                outcomes.append((stop, None, None))
            _settle(outcomes)
            if stop is not None:
                return

    def _run(self, calls: list[_Call]) -> list[_Outcome]:
        try:
            conn = self._connection()
        except sqlite3.Error as exc:
            error = _translated(exc)
            return [(c, None, error) for c in calls]
        outcomes = self._write([c for c in calls if c.write], conn)
        for call in calls:
            if not call.write:
                try:
                    outcomes.append((call, call(conn), None))
                except Exception as exc:
                    outcomes.append((call, None, _translated(exc)))
        return outcomes

    def _write(self, calls: list[_Call], conn: sqlite3.Connection) -> list[_Outcome]:
        if not calls:
            return []
        outcomes: list[_Outcome] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for call in calls:
                conn.execute("SAVEPOINT unit")
                try:
                    result = call(conn)
                except Exception as exc:
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole transaction back: every write is lost
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    outcomes.append((call, None, _translated(exc)))
                else:
                    conn.execute("RELEASE unit")
                    outcomes.append((call, result, None))
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                # If even this fails, the transaction is gone either way; callers learn why below.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            error = _translated(exc)
            return [(c, None, error) for c in calls]
        return outcomes

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # isolation_level=None: no implicit transactions, this thread says BEGIN itself.
            conn = sqlite3.connect(
                self._path,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
            try:
                # As the SQLAlchemy engine's connections (adapters.database.sql): WAL so that
                # readers never wait for the writer, foreign keys on (SQLite's default is off).
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA foreign_keys=ON")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _translated(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.OperationalError):  # locked past the busy timeout, I/O errors
        error = BackendUnavailable(f"job database unavailable: {exc}")
        error.__cause__ = exc
        return error
    return exc


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand the outcomes to their event loops: one wake-up per loop, not one per call."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        by_loop.setdefault(outcome[0].future.get_loop(), []).append(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, settled)


def _resolve(outcomes: list[_Outcome]) -> None:
    for call, result, error in outcomes:
        if call.future.done():  # the caller was cancelled meanwhile
            continue
        if error is not None:
            call.future.set_exception(error)
        else:
            call.future.set_result(result)
