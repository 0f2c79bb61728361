"""SQLAlchemy Core statements run straight on psycopg: built with SQLAlchemy, executed without it.

The job store's statements are few and fixed, and run thousands of times a second under load.
SQLAlchemy's per-call work around them (connection wrapper, execution context, parameter
and result processing, the greenlet hop of its asyncio layer) measured at about 200 µs of CPU
per statement, two to three times what psycopg itself needs. Here each statement is compiled
once, for psycopg, to SQL text; calls bind plain values (the callers encode them: JSON
documents as ``Jsonb``, aware datetimes as they are) and get plain tuples back.

Connections come from a psycopg pool of the adapter's own, in autocommit (each statement is
its own transaction), opened on first use. A connection that idled ``IDLE_PING_SECONDS`` is
checked before use, as the SQLAlchemy pool's are (``engine._ping_when_idle``).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Final, cast

import msgspec
import psycopg
import psycopg_pool
import sqlalchemy as sa
from psycopg.types.json import set_json_dumps, set_json_loads
from sqlalchemy.dialects.postgresql import psycopg as sa_psycopg
from sqlalchemy.sql.compiler import SQLCompiler

from studio9.errors import BackendUnavailable

IDLE_PING_SECONDS: Final = 10.0
_DIALECT: Final = sa_psycopg.dialect()  # type: ignore[no-untyped-call]


class Compiled:
    """A statement's SQL text for psycopg and the values SQLAlchemy bound itself (literals)."""

    __slots__ = ("fixed", "sql")

    def __init__(self, statement: sa.ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        if compiled.post_compile_params:  # ``IN`` lists expanded per call: not cacheable as text
            raise ValueError("use = ANY(array) instead of expanding IN parameters")
        self.sql: bytes = compiled.string.encode()
        # Literals SQLAlchemy bound itself (``version + 1``); the parameters the caller must
        # give have no value here and are left out.
        required = {name for name, bind in compiled.binds.items() if bind.required}
        self.fixed: dict[str, Any] = {k: v for k, v in compiled.params.items() if k not in required}

    def params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.fixed, **given} if self.fixed else dict(given)


class PgRunner:
    """Runs compiled statements on a psycopg pool of ``size`` connections; one that idled
    ``idle_ping_seconds`` is checked before use."""

    def __init__(
        self, conninfo: str, *, size: int, timeout: float, idle_ping_seconds: float = IDLE_PING_SECONDS
    ) -> None:
        self._idle_ping_seconds = idle_ping_seconds
        self._idle_since: weakref.WeakKeyDictionary[psycopg.AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )
        self._pool = psycopg_pool.AsyncConnectionPool(
            conninfo,
            min_size=1,
            max_size=size,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            configure=_configure,
            check=self._check,
            timeout=max(timeout, 30.0),
            open=False,
            name="studio9-jobs",
        )
        self._opened = False
        self._compiled: dict[int, tuple[sa.ClauseElement, Compiled]] = {}

    def compiled(self, statement: sa.ClauseElement) -> Compiled:
        # Keyed by identity: statements are module constants or cached per shape, and the
        # statement is kept alongside so that its id cannot be reused.
        found = self._compiled.get(id(statement))
        if found is None:
            found = self._compiled[id(statement)] = (statement, Compiled(statement))
        return found[1]

    async def one(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        compiled = self.compiled(statement)
        async with self.connection() as conn:
            cursor = await conn.execute(compiled.sql, compiled.params(params))
            return await cursor.fetchone()

    async def all(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        compiled = self.compiled(statement)
        async with self.connection() as conn:
            cursor = await conn.execute(compiled.sql, compiled.params(params))
            return await cursor.fetchall()

    async def run(self, statement: sa.ClauseElement, params: Mapping[str, Any]) -> int:
        """Execute; returns the rows affected."""
        compiled = self.compiled(statement)
        async with self.connection() as conn:
            cursor = await conn.execute(compiled.sql, compiled.params(params))
            return cursor.rowcount

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        with unavailable():
            if not self._opened:
                await self._pool.open(wait=False)
                self._opened = True
            async with self._pool.connection() as conn:
                try:
                    yield conn
                finally:
                    # Stamped here, not in a pool ``reset`` callback: with one, the pool hands
                    # every returned connection to its worker task instead of taking it back
                    # at once (a task hop per statement, and a connection out of reach meanwhile).
                    self._idle_since[conn] = time.monotonic()

    async def aclose(self) -> None:
        if self._opened:
            self._opened = False
            await self._pool.close()

    async def _check(self, conn: psycopg.AsyncConnection[Any]) -> None:
        idle_since = self._idle_since.get(conn)
        if idle_since is not None and time.monotonic() - idle_since >= self._idle_ping_seconds:
            await conn.execute("SELECT 1")  # raises on a dead connection: the pool drops it


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    # msgspec for JSON columns: decoding the JSON of every job row read (params, outputs,
    # result, error details) with the json module was 4 % of a worker's py-spy samples.
    set_json_loads(_JSON_DECODE, conn)
    set_json_dumps(_JSON_ENCODE, conn)


_JSON_DECODE: Final = msgspec.json.Decoder().decode
_JSON_ENCODE: Final = msgspec.json.Encoder().encode


@contextlib.contextmanager
def unavailable() -> Iterator[None]:
    """psycopg and pool failures as BackendUnavailable (503), like every other adapter's."""
    try:
        yield
    except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
        raise BackendUnavailable(f"job database unavailable: {type(exc).__name__}") from exc
