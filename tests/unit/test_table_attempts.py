"""Per-attempt blob prefixes of ``tables.import`` (``studio9.tables.content.attempt_prefix``): each
attempt writes under ``tables/<table>/<job>/<attempt>/``; the attempt that adds the version
deletes what earlier attempts left; one that loses the compare-and-set to an earlier attempt of
its job is done and deletes only its own. On the in-memory catalog and blob store, with the job's
attempts run by hand (a stalled attempt is one whose file read lets the other attempt run first).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
import structlog

from adapters.blob_store.memory import MemoryBlobStore
from adapters.catalog_store.memory import MemoryCatalogStore
from studio9.catalog.domain import AssetKind
from studio9.catalog.service import CatalogService
from studio9.tables.content import attempt_prefix, drop_earlier_attempts, one_chunk, stats_status
from studio9.tables.import_job import TableImportParams, table_import_job_type

OWNER = "u-ada"
JOB = "job-1"
CSV = b"city,amount\nOslo,1\nRome,2\nOslo,3\n"


class _Lineage:
    async def emit(self, event: Any) -> None:
        pass


@attrs.define
class _Ctx:
    """The slice of ``JobContext`` the import uses; ``before_read`` runs when the file is opened."""

    attempt: int
    scratch: Path
    source: Path
    before_read: Callable[[], Awaitable[Any]] | None = None
    job_id: str = JOB
    owner_id: str = OWNER
    log: Any = attrs.field(factory=structlog.get_logger)

    @contextlib.asynccontextmanager
    async def input_file(self, file_id: str) -> AsyncIterator[Path]:
        if self.before_read is not None:
            await self.before_read()
        yield self.source

    async def in_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        return await anyio.to_thread.run_sync(function, *args)

    def report(self, progress: float, eta: float | None = None, message: str | None = None) -> None:
        pass

    async def put_output(self, name: str, data: Any) -> int:
        raise AssertionError("no output expected")


@attrs.define
class _Setup:
    catalog: CatalogService
    blobs: MemoryBlobStore
    table: str
    tmp: Path

    def ctx(self, attempt: int, before_read: Callable[[], Awaitable[Any]] | None = None) -> _Ctx:
        return _Ctx(
            attempt=attempt,
            scratch=self.tmp / f"scratch-{attempt}",
            source=self.tmp / "sales.csv",
            before_read=before_read,
        )

    async def run(self, ctx: _Ctx) -> dict[str, Any]:
        job_type = table_import_job_type(self.catalog, self.blobs, _Lineage())
        handler: Any = job_type.handler  # takes the JobContext _Ctx stands in for
        result: dict[str, Any] = await handler(ctx, TableImportParams(table=self.table, file="f1"))
        return result

    def keys(self) -> set[str]:
        return {key for key in self.blobs._blobs if key.startswith(f"tables/{self.table}/")}


@pytest.fixture
async def setup(tmp_path: Path) -> _Setup:
    (tmp_path / "sales.csv").write_bytes(CSV)
    catalog = CatalogService(MemoryCatalogStore())
    asset = await catalog.create(
        owner_id=OWNER, kind=AssetKind.TABLE, name="sales", content=None, in_library=True
    )
    return _Setup(catalog, MemoryBlobStore(), asset.id, tmp_path)


async def _only_version(setup: _Setup) -> dict[str, Any]:
    asset = await setup.catalog.store.get(setup.table)
    assert asset.latest_version == 1
    version = await setup.catalog.store.get_version(setup.table, 1)
    assert version.job_id == JOB
    content: dict[str, Any] = dict(version.content)
    return content


async def test_the_attempt_that_adds_the_version_deletes_what_killed_ones_left(setup: _Setup) -> None:
    killed = attempt_prefix(setup.table, JOB, 1)
    await setup.blobs.put(killed + "part-00042.parquet", one_chunk(b"half a part"))

    result = await setup.run(setup.ctx(2))

    assert (result["version"], result["rows"]) == (1, 3)
    content = await _only_version(setup)
    mine = attempt_prefix(setup.table, JOB, 2)
    assert content["parts"] and all(p.startswith(mine) for p in content["parts"])
    assert content["stats"] == mine + "stats.json"
    assert setup.keys() == {*content["parts"], content["stats"]}
    assert (await stats_status(setup.blobs, content["stats"]))[0] == "done"


async def test_a_stalled_attempt_that_loses_to_a_later_one_deletes_only_its_own(setup: _Setup) -> None:
    # Attempt 1 stalls while reading its file; attempt 2 runs to the end meanwhile.
    second: dict[str, Any] = {}

    async def later_attempt_runs() -> None:
        second.update(await setup.run(setup.ctx(2)))

    first = await setup.run(setup.ctx(1, before_read=later_attempt_runs))

    assert first["version"] == second["version"] == 1
    content = await _only_version(setup)
    assert all(p.startswith(attempt_prefix(setup.table, JOB, 2)) for p in content["parts"])
    # Attempt 1 uploaded its parts, lost the compare-and-set, and deleted them again.
    assert setup.keys() == {*content["parts"], content["stats"]}


async def test_a_stalled_earlier_attempt_that_wins_keeps_its_parts(setup: _Setup) -> None:
    # Attempt 2 starts while attempt 1 is stalled, then attempt 1 wakes and adds the version first.
    first: dict[str, Any] = {}

    async def earlier_attempt_wins() -> None:
        first.update(await setup.run(setup.ctx(1)))

    second = await setup.run(setup.ctx(2, before_read=earlier_attempt_wins))

    assert first["version"] == second["version"] == 1
    content = await _only_version(setup)
    winner = attempt_prefix(setup.table, JOB, 1)
    assert all(p.startswith(winner) for p in content["parts"])
    # Attempt 2 deleted its own upload, and not the winner's (an earlier attempt's) prefix.
    assert setup.keys() == {*content["parts"], content["stats"]}
    assert (await stats_status(setup.blobs, content["stats"]))[0] == "done"


async def test_a_retry_after_the_version_was_added_finishes_stats_and_cleans_up(setup: _Setup) -> None:
    await setup.run(setup.ctx(2))
    content = await _only_version(setup)
    # As if attempt 2 was killed after its compare-and-set: no statistics, attempt 1's leftovers.
    await setup.blobs.delete(content["stats"])
    leftover = attempt_prefix(setup.table, JOB, 1) + "part-00000.parquet"
    await setup.blobs.put(leftover, one_chunk(b"killed"))

    result = await setup.run(setup.ctx(3))

    assert result["version"] == 1
    assert await _only_version(setup) == content
    assert setup.keys() == {*content["parts"], content["stats"]}
    assert (await stats_status(setup.blobs, content["stats"]))[0] == "done"


async def test_drop_earlier_attempts_spares_the_kept_prefix_and_later_attempts() -> None:
    blobs = MemoryBlobStore()
    for attempt in (1, 2, 3, 4, 10):
        await blobs.put(attempt_prefix("t", JOB, attempt) + "part-00000.parquet", one_chunk(b"x"))
    kept = attempt_prefix("t", JOB, 2) + "part-00000.parquet"

    await drop_earlier_attempts(blobs, "t", JOB, 4, keep=[kept])

    assert set(blobs._blobs) == {
        kept,
        attempt_prefix("t", JOB, 4) + "part-00000.parquet",
        attempt_prefix("t", JOB, 10) + "part-00000.parquet",
    }
