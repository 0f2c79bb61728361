"""AuditLog contract, run against every system-of-record adapter (memory, SQLite, PostgreSQL):
append, query with each filter, keyset pages; and, on the SQL databases, no statement can change
or remove an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from studio9.audit.domain import AuditEvent, NewAuditEvent
from studio9.audit.ports import AuditLog

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
def log(database: Any) -> AuditLog:
    audit: AuditLog = database.audit
    return audit


def _event(
    n: int, *, actor_id: str = "ada", object_id: str | None = "asset-1", **changes: Any
) -> NewAuditEvent:
    values: dict[str, Any] = {
        "at": NOW + timedelta(minutes=n),
        "actor_id": actor_id,
        "token_id": f"token-{actor_id}",
        "address": "203.0.113.7",
        "action": "PATCH /api/v1/tables/{table_id}",
        "object_id": object_id,
        "detail": {"path": {"table_id": object_id}, "status": 200, "n": n},
    }
    values.update(changes)
    return NewAuditEvent(**values)


def _ns(events: Any) -> list[int]:
    return [e.detail["n"] for e in events]


async def test_appended_events_come_back_newest_first_with_every_field(log: AuditLog) -> None:
    await log.append([_event(1), _event(2, actor_id="bob", object_id=None)])
    await log.append([_event(3, detail={"path": {}, "status": 201, "n": 3, "nested": {"a": [1, "é"]}})])

    found = await log.query(limit=10)

    assert _ns(found) == [3, 2, 1]
    assert found[0].id > found[1].id > found[2].id
    newest = found[0]
    assert isinstance(newest, AuditEvent)
    assert newest.at == NOW + timedelta(minutes=3)
    assert newest.at.utcoffset() == timedelta(0)
    assert (newest.actor_id, newest.token_id, newest.address) == ("ada", "token-ada", "203.0.113.7")
    assert newest.action == "PATCH /api/v1/tables/{table_id}"
    assert newest.object_id == "asset-1"
    assert dict(newest.detail) == {"path": {}, "status": 201, "n": 3, "nested": {"a": [1, "é"]}}
    assert found[1].object_id is None


async def test_an_empty_append_appends_nothing(log: AuditLog) -> None:
    await log.append([])

    assert list(await log.query(limit=10)) == []


async def test_events_without_actor_token_or_address_are_kept(log: AuditLog) -> None:
    await log.append([NewAuditEvent(at=NOW, actor_id=None, action="POST /api/v1/auth/tokens")])

    (event,) = await log.query(limit=10)

    assert (event.actor_id, event.token_id, event.address, event.object_id) == (None, None, None, None)
    assert dict(event.detail) == {}


async def test_filters_by_object_actor_and_time_combine(log: AuditLog) -> None:
    await log.append(
        [
            _event(1),
            _event(2, actor_id="bob"),
            _event(3, object_id="asset-2"),
            _event(4, actor_id="bob", object_id="asset-2"),
            _event(5),
        ]
    )

    assert _ns(await log.query(object_id="asset-1", limit=10)) == [5, 2, 1]
    assert _ns(await log.query(actor_id="bob", limit=10)) == [4, 2]
    assert _ns(await log.query(since=NOW + timedelta(minutes=3), limit=10)) == [5, 4, 3]
    assert _ns(await log.query(object_id="asset-2", actor_id="bob", limit=10)) == [4]
    assert _ns(await log.query(object_id="asset-1", since=NOW + timedelta(minutes=2), limit=10)) == [5, 2]
    assert list(await log.query(object_id="asset-9", limit=10)) == []


async def test_pages_follow_the_ids_down(log: AuditLog) -> None:
    await log.append([_event(n) for n in range(1, 8)])

    first = await log.query(limit=3)
    second = await log.query(limit=3, after_id=first[-1].id)
    third = await log.query(limit=3, after_id=second[-1].id)

    assert (_ns(first), _ns(second), _ns(third)) == ([7, 6, 5], [4, 3, 2], [1])
    assert list(await log.query(limit=3, after_id=third[-1].id)) == []
    assert _ns(await log.query(object_id="asset-1", limit=2, after_id=first[1].id)) == [5, 4]


async def test_a_batch_is_numbered_in_its_order(log: AuditLog) -> None:
    await log.append([_event(n) for n in range(1, 4)])

    found = await log.query(limit=10)

    assert [e.id for e in found] == sorted((e.id for e in found), reverse=True)
    assert _ns(found) == [3, 2, 1]


async def test_the_memory_log_has_no_way_to_change_or_remove_an_event(database: Any) -> None:
    if database.dialect != "memory":
        pytest.skip("the SQL databases refuse it themselves: see the next test")
    public = {name for name in dir(database.audit) if not name.startswith("_")}

    assert public == {"append", "query"}


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET action = 'nothing happened'",
        "UPDATE audit_events SET detail = '{}' WHERE id = (SELECT MAX(id) FROM audit_events)",
        "DELETE FROM audit_events",
        "DELETE FROM audit_events WHERE actor_id = 'ada'",
        "TRUNCATE audit_events",
    ],
)
async def test_no_sql_statement_changes_or_removes_an_event(
    database: Any, log: AuditLog, statement: str
) -> None:
    if database.dialect == "memory":
        pytest.skip("SQL databases only")
    if statement.startswith("TRUNCATE") and database.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE (its DELETE without WHERE is refused above)")
    await log.append([_event(1), _event(2)])
    before = await log.query(limit=10)

    with pytest.raises(DBAPIError, match="append-only"):
        async with database.engine.begin() as conn:
            await conn.execute(sa.text(statement))

    assert await log.query(limit=10) == before
