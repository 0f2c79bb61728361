"""FileRecords contract, run against every system-of-record adapter (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import pytest

from studio9.errors import Conflict
from studio9.files.domain import FileNotFound, StoredFile
from studio9.files.ports import FileRecords
from studio9.ids import new_id

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def records(database: Any) -> FileRecords:
    files: FileRecords = database.files
    return files


def _file(owner_id: str = "owner-a", **changes: Any) -> StoredFile:
    file_id = changes.pop("id", None) or new_id()
    values: dict[str, Any] = {
        "id": file_id,
        "owner_id": owner_id,
        "name": "résultats été.csv",
        "size": 5 * 1024**3,  # beyond 32 bits
        "sha256": "ab" * 32,
        "content_type": "text/csv; charset=utf-8",
        "blob_key": f"files/{file_id}",
        "created_at": NOW,
    }
    values.update(changes)
    return StoredFile(**values)


async def test_added_file_reads_back_equal(records: FileRecords) -> None:
    stored = _file()
    await records.add(stored)
    assert await records.get(stored.id) == stored
    assert (await records.get(stored.id)).created_at.tzinfo is not None


async def test_duplicate_id_raises_conflict(records: FileRecords) -> None:
    stored = _file()
    await records.add(stored)
    with pytest.raises(Conflict):
        await records.add(_file(id=stored.id, name="other"))
    assert (await records.get(stored.id)).name == stored.name


async def test_unknown_file_raises_not_found(records: FileRecords) -> None:
    with pytest.raises(FileNotFound):
        await records.get("missing")
    with pytest.raises(FileNotFound):
        await records.delete("missing")


async def test_list_pages_newest_first_per_owner(records: FileRecords) -> None:
    mine = [_file("owner-a", id=new_id(1_000 * i)) for i in range(1, 6)]
    theirs = [_file("owner-b", id=new_id(1_000 * i + 500)) for i in range(1, 3)]
    for stored in [*theirs, *reversed(mine)]:
        await records.add(stored)
    first = await records.list("owner-a", limit=2)
    rest = await records.list("owner-a", limit=10, after=first[-1].id)
    assert [f.id for f in [*first, *rest]] == [f.id for f in reversed(mine)]
    assert await records.list("owner-a", limit=10, after=mine[0].id) == []
    everyone = await records.list(None, limit=100)
    assert [f.id for f in everyone] == sorted((f.id for f in [*mine, *theirs]), reverse=True)
    assert await records.list("nobody", limit=10) == []


async def test_delete_removes_the_record(records: FileRecords) -> None:
    kept, gone = _file(), _file()
    await records.add(kept)
    await records.add(gone)
    await records.delete(gone.id)
    with pytest.raises(FileNotFound):
        await records.get(gone.id)
    assert [f.id for f in await records.list(None, limit=10)] == [kept.id]


async def test_transfer_gives_every_file_of_one_owner_to_another(records: FileRecords) -> None:
    mine, theirs = [_file("owner-a"), _file("owner-a")], _file("owner-b")
    for stored in [*mine, theirs]:
        await records.add(stored)
    assert await records.transfer("owner-a", "owner-c") == 2
    assert await records.transfer("owner-a", "owner-c") == 0  # idempotent
    assert await records.list("owner-a", limit=10) == []
    moved = sorted(await records.list("owner-c", limit=10), key=lambda f: f.id)
    assert moved == sorted((attrs.evolve(f, owner_id="owner-c") for f in mine), key=lambda f: f.id)
    assert (await records.get(theirs.id)).owner_id == "owner-b"
