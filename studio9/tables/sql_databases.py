"""The DuckDB databases read-only queries run on: opened with their configuration, locked down,
and opened ahead of demand.

``open_database`` makes a new in-memory database configured for one query (memory, threads, no
extension loading, no Python replacement scans, spilling only to a private directory) and
``lock`` closes it to everything but the given Parquet parts; ``studio9.tables.sql`` documents
why and in which order.

Opening a database costs ~15 ms, most of a small preview, so ``Databases`` opens a few in a
background thread ahead of demand: a preview takes one that is ready, locks it to its own
tables, runs, and hands it back to be closed in that thread, off the request path. A database
serves one query only: its lock cannot be undone, and nothing a query leaves in a database
(caches, temporary objects) reaches another query. Only databases configured as the pool's are
kept ready; a query asking for other limits, or for a spill directory, opens its own at once.
The thread opens databases only while no query is running (between ``take`` and ``retire``):
an opening costs as much CPU as a small query, and on a busy machine it would slow the query
down by more than the pool saves. Previews sent back to back thus find the pool empty and open
their own, as without a pool; retired databases are closed at once all the same, as they may
hold a query's memory.

``Databases.parser`` is one long-lived database, locked with no file readable, on which names
are parsed out of queries (``referenced_tables``): parsing runs nothing the query says, so it
needs no database of its own; one thread at a time uses it.

Nothing is opened before the first use, so a process that runs no query pays nothing.
``close`` stops the thread and closes every database still held.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Final

import structlog

if TYPE_CHECKING:
    import duckdb

log = structlog.get_logger()

#: Databases kept ready: two previews can start at once without opening one.
READY: Final = 2
#: The parser's database: it only parses, so it needs little.
PARSER_MEMORY: Final = "64MB"
PARSER_THREADS: Final = 1
# The last two statements of the lock, in this order (see ``lock``): constants, no query text.
_LOCK: Final = "SET enable_external_access = false; SET lock_configuration = true"


def open_database(memory_limit: str, threads: int, spill_dir: Path | None) -> duckdb.DuckDBPyConnection:
    """A new in-memory database configured for one query, not yet locked (see ``lock``)."""
    import duckdb

    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": memory_limit,
        "threads": threads,
        # A spill directory is readable by the query (DuckDB allows its temp directory), so only
        # a private one per query is acceptable; without one, spilling is off.
        "temp_directory": str(spill_dir) if spill_dir else "",
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
        "python_enable_replacements": False,
    }
    con = duckdb.connect(":memory:", config=config)
    try:
        # Footers read once per query: binding a view reads them, and the query then finds them
        # here instead of reading them again. Per database, so no other query sees them.
        con.execute("SET parquet_metadata_cache = true")
    except BaseException:
        con.close()
        raise
    return con


def lock(con: duckdb.DuckDBPyConnection, allowed: list[str]) -> None:
    """Allow reading exactly the files ``allowed``, nothing else, and freeze the configuration.

    This order: ``allowed_paths`` cannot change once external access is off, and nothing can
    change once the configuration is locked.
    """
    con.execute("SET allowed_paths = ?", [allowed])
    con.execute(_LOCK)


class Databases:
    """Databases configured as ``memory_limit`` / ``threads``, opened ahead of demand (module doc)."""

    def __init__(self, *, memory_limit: str, threads: int, ready: int = READY) -> None:
        self.memory_limit, self.threads, self.size = memory_limit, threads, ready
        self._ready: list[duckdb.DuckDBPyConnection] = []
        self._retired: list[duckdb.DuckDBPyConnection] = []
        self._changed = threading.Condition()
        self._filler: threading.Thread | None = None
        self._wanted = True  # ready databases are missing and may be opened now
        self._busy = 0  # databases taken and not yet retired: queries running
        self._opening = False  # the thread is opening one now
        # Set by ``close``, or when opening fails in the background (then ``take`` opens).
        self._closed = threading.Event()
        self._shut = False  # ``close`` was called
        self._parser: duckdb.DuckDBPyConnection | None = None
        self._parsing = threading.Lock()

    @property
    def available(self) -> int:
        """How many databases are open and ready to be taken."""
        with self._changed:
            return len(self._ready)

    def take(self, memory_limit: str, threads: int, spill_dir: Path | None) -> duckdb.DuckDBPyConnection:
        """A new, unlocked database so configured: a ready one when the pool's, else opened now.

        Hand it to ``retire`` once its query is done: until then the pool opens none (module doc).
        """
        with self._changed:
            self._busy += 1
            if (memory_limit, threads, spill_dir) == (self.memory_limit, self.threads, None):
                if self._filler is None and not self._closed.is_set():
                    self._filler = threading.Thread(target=self._fill, name="sql-databases", daemon=True)
                    self._filler.start()
                while self._opening and not self._ready:
                    # The one being opened is ready sooner than a new one would be, and opening
                    # two at once would only share the CPU between them.
                    self._changed.wait()
                if self._ready:
                    return self._ready.pop()
        try:
            return open_database(memory_limit, threads, spill_dir)
        except BaseException:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()
            raise

    def retire(self, con: duckdb.DuckDBPyConnection) -> None:
        """Close ``con``, which has served its query: in the background while the pool runs."""
        with self._changed:
            self._busy -= 1
            if self._filler is not None and not self._closed.is_set():
                self._retired.append(con)
                self._wanted = True
                self._changed.notify_all()
                return
        con.close()

    @contextlib.contextmanager
    def parser(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The shared parse-only database, locked with no file readable; one caller at a time."""
        with self._parsing:
            if self._parser is None:
                if self._shut:
                    raise RuntimeError("the SQL databases are closed")
                con = open_database(PARSER_MEMORY, PARSER_THREADS, None)
                try:
                    lock(con, [])
                except BaseException:
                    con.close()
                    raise
                self._parser = con
            yield self._parser

    def close(self) -> None:
        """Stop opening databases and close every one held (ready, retired, the parser)."""
        with self._changed:
            self._shut = True
            self._closed.set()
            self._changed.notify_all()
            filler = self._filler
        if filler is not None:
            filler.join()
        with self._changed:
            held, self._ready, self._retired = self._ready + self._retired, [], []
        for con in held:
            con.close()
        with self._parsing:
            if self._parser is not None:
                self._parser.close()
                self._parser = None

    def _fill(self) -> None:
        """The background thread, until ``close``: closes retired databases first (they may
        hold a query's memory), then, while no query runs, refills to ``size`` ready."""
        while True:
            with self._changed:
                while not (
                    self._closed.is_set()
                    or self._retired
                    or (self._wanted and not self._busy and len(self._ready) < self.size)
                ):
                    self._changed.wait()
                if self._closed.is_set():
                    return
                retired, self._retired = self._retired, []
                self._opening = not retired
            if retired:
                for con in retired:
                    con.close()
                continue
            try:
                con = open_database(self.memory_limit, self.threads, None)
            except Exception:
                # Not fatal: ``take`` opens databases itself, and raises what opening raises.
                log.exception("sql_databases_fill_failed")
                with self._changed:
                    self._closed.set()
                    self._opening = False
                    self._changed.notify_all()
                return
            with self._changed:
                self._opening = False
                self._changed.notify_all()
                if self._closed.is_set():
                    con.close()
                    return
                self._ready.append(con)
                self._wanted = len(self._ready) < self.size
