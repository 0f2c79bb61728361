"""The job store's units of work on a stdlib ``sqlite3`` connection, each run whole in one call.

Every function takes the connection first and is called on the store's database thread
(``adapters.sql.sqlite_thread.SqliteThread``): reads (``get``, ``list_jobs``, …) outside any
transaction, writes (``add``, ``save``, ``claim``, ``acknowledge``) inside the thread's
``BEGIN IMMEDIATE`` transaction, each in a savepoint of its own, so a write unit neither
begins nor commits. SQL is plain text built once; rows are encoded by ``sql_rows``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from adapters.job_store.sql_rows import (
    EVENT_COLUMNS,
    HEARTBEAT_COLUMNS,
    JOB_COLUMNS,
    OUTBOX_COLUMNS,
    TERMINAL,
    change_time,
    event_from_row,
    event_rows,
    heartbeat_from_row,
    heartbeat_row,
    job_from_row,
    job_row,
    outbox_rows,
    sqlite_doc,
    sqlite_read_doc,
    sqlite_read_time,
    sqlite_time,
)
from studio9.jobs.domain import Claim, Heartbeat, Job, JobEvent, JobExists, JobStatus
from studio9.jobs.ports import DueCriteria, JobQuery
from studio9.metadata.ports import Change


def _insert(table: str, columns: Sequence[str]) -> str:
    # SQL text is assembled from our own table and column names and placeholder counts only
    # (hence the S608 waivers here and below); every value travels as a bound parameter.
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608


_COLUMNS = ", ".join(JOB_COLUMNS)
_SELECT_JOBS = f"SELECT {_COLUMNS} FROM jobs"  # noqa: S608
_GET_JOB = f"{_SELECT_JOBS} WHERE id = ?"
_INSERT_JOB = _insert("jobs", JOB_COLUMNS)
_SAVE_JOB = "UPDATE jobs SET {} WHERE id = ? AND version = ?".format(  # noqa: S608
    ", ".join(f"{c} = ?" for c in JOB_COLUMNS[1:])
)
_INSERT_EVENT = _insert("job_events", EVENT_COLUMNS)
_INSERT_HEARTBEAT = _insert("job_heartbeats", HEARTBEAT_COLUMNS)
_INSERT_OUTBOX = _insert("outbox", OUTBOX_COLUMNS)
_EVENTS = f"SELECT {', '.join(EVENT_COLUMNS)} FROM job_events WHERE job_id = ? ORDER BY id"  # noqa: S608
_HEARTBEATS = (
    f"SELECT {', '.join(HEARTBEAT_COLUMNS)} FROM job_heartbeats"  # noqa: S608
    " WHERE job_id = ? ORDER BY id DESC LIMIT ?"
)
_COUNTS = "SELECT status, count(*) FROM jobs GROUP BY status"
_PENDING = "SELECT id, topic, ref_id FROM outbox ORDER BY id LIMIT ?"
_QUEUED, _RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
_DUE = f"""{_SELECT_JOBS} WHERE
    (status IN ('{_QUEUED}', '{JobStatus.SUBMITTED.value}')
     AND (dispatched_at IS NULL OR dispatched_at <= :redeliver_before)
     AND (not_before IS NULL OR not_before <= :now))
 OR (status = '{_RUNNING}'
     AND (lease_expires_at <= :now OR deadline_at <= :now
          OR (cancel_requested = 1 AND cancel_requested_at <= :cancel_before)))
 OR (status IN ({", ".join(f"'{s}'" for s in TERMINAL)}) AND cleaned_at IS NULL)
 ORDER BY id LIMIT :limit"""
#: How many ids go in one ``IN (…)`` (SQLite allows 32766 variables since 3.32, far fewer before).
_CHUNK = 500


def add(conn: sqlite3.Connection, job: Job, events: Sequence[JobEvent]) -> None:
    try:
        conn.execute(_INSERT_JOB, job_row(job, sqlite_time, sqlite_doc))
    except sqlite3.IntegrityError as exc:  # the primary key: nothing else of a job is unique
        raise JobExists(job.id) from exc
    _side_rows(conn, job.id, events, None, job.submitted_at)


def get(conn: sqlite3.Connection, job_id: str) -> Job | None:
    row = conn.execute(_GET_JOB, (job_id,)).fetchone()
    return None if row is None else _job(row)


def save(
    conn: sqlite3.Connection,
    job: Job,
    expected_version: int,
    events: Sequence[JobEvent],
    heartbeat: Heartbeat | None,
) -> Job | None:
    stored = attrs.evolve(job, version=expected_version + 1)
    row = job_row(stored, sqlite_time, sqlite_doc)
    if conn.execute(_SAVE_JOB, (*row[1:], job.id, expected_version)).rowcount != 1:
        return None
    _side_rows(conn, job.id, events, heartbeat, change_time(job, events, heartbeat))
    return stored


def claim(conn: sqlite3.Connection, job_id: str, claim: Claim) -> Job | None:
    types = list(claim.deadlines)
    if not types:
        return None
    params: dict[str, Any] = {
        "id": job_id,
        "at": sqlite_time(claim.at),
        "worker": claim.worker,
        "lease": sqlite_time(claim.lease_expires_at),
    }
    for i, name in enumerate(types):
        params[f"t{i}"], params[f"d{i}"] = name, sqlite_time(claim.deadlines[name])
    # fetchall: the statement must be finished before the transaction can end.
    rows = conn.execute(_claim_sql(len(types)), params).fetchall()
    if not rows:
        return None
    _side_rows(conn, job_id, [claim.event(job_id)], None, claim.at)
    return _job(rows[0])


@functools.cache
def _claim_sql(types: int) -> str:
    """The claim, as ``Claim.apply`` describes it, for a worker running ``types`` job types."""
    deadline = " ".join(f"WHEN :t{i} THEN :d{i}" for i in range(types))
    known = ", ".join(f":t{i}" for i in range(types))
    return f"""UPDATE jobs SET status = '{_RUNNING}', started_at = :at, attempt = attempt + 1,
        lease_owner = :worker, lease_expires_at = :lease, deadline_at = CASE type {deadline} END,
        last_heartbeat_at = :at, cancel_requested = 0, progress = 0.0, eta_seconds = NULL,
        message = NULL, version = version + 1
    WHERE id = :id AND status = '{_QUEUED}' AND (not_before IS NULL OR not_before <= :at)
        AND type IN ({known})
    RETURNING {_COLUMNS}"""  # noqa: S608


def list_jobs(conn: sqlite3.Connection, query: JobQuery) -> list[Job]:
    where: list[str] = []
    params: list[Any] = []
    for column, value in (("owner_id", query.owner_id), ("type", query.type)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.status is not None:
        where.append("status = ?")
        params.append(query.status.value)
    if query.ids is not None:
        ids = list(dict.fromkeys(query.ids))
        if not ids:
            return []
        where.append(f"id IN ({', '.join('?' * len(ids))})")
        params.extend(ids)
    if query.before is not None:
        where.append("id < ?")
        params.append(query.before)
    condition = f" WHERE {' AND '.join(where)}" if where else ""
    sql = f"{_SELECT_JOBS}{condition} ORDER BY id DESC LIMIT ?"
    return [_job(row) for row in conn.execute(sql, (*params, query.limit))]


def due(conn: sqlite3.Connection, criteria: DueCriteria) -> list[Job]:
    params = {
        "now": sqlite_time(criteria.now),
        "redeliver_before": sqlite_time(criteria.redeliver_before),
        "cancel_before": sqlite_time(criteria.cancel_before),
        "limit": criteria.limit,
    }
    return [_job(row) for row in conn.execute(_DUE, params)]


def counts(conn: sqlite3.Connection) -> Mapping[JobStatus, int]:
    found = {JobStatus(status): int(count) for status, count in conn.execute(_COUNTS)}
    return {status: found.get(status, 0) for status in JobStatus}


def events(conn: sqlite3.Connection, job_id: str) -> list[JobEvent]:
    return [
        event_from_row(row, sqlite_read_time, sqlite_read_doc) for row in conn.execute(_EVENTS, (job_id,))
    ]


def heartbeats(conn: sqlite3.Connection, job_id: str, limit: int) -> list[Heartbeat]:
    return [heartbeat_from_row(row, sqlite_read_time) for row in conn.execute(_HEARTBEATS, (job_id, limit))]


def heartbeats_for(
    conn: sqlite3.Connection, job_ids: Sequence[str], limit_each: int
) -> dict[str, list[Heartbeat]]:
    # One indexed LIMIT query per job beats a window over every heartbeat of the batch, and
    # in this thread a query costs microseconds, not a round trip.
    found = {job_id: heartbeats(conn, job_id, limit_each) for job_id in dict.fromkeys(job_ids)}
    return {job_id: beats for job_id, beats in found.items() if beats}


def pending(conn: sqlite3.Connection, limit: int) -> list[Change]:
    return [Change(id=i, topic=topic, ref_id=ref) for i, topic, ref in conn.execute(_PENDING, (limit,))]


def acknowledge(conn: sqlite3.Connection, change_ids: Sequence[int]) -> None:
    ids = list(change_ids)
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)  # noqa: S608


def _side_rows(
    conn: sqlite3.Connection,
    job_id: str,
    events: Sequence[JobEvent],
    heartbeat: Heartbeat | None,
    at: datetime,
) -> None:
    if events:
        conn.executemany(_INSERT_EVENT, event_rows(events, sqlite_time, sqlite_doc))
    if heartbeat is not None:
        conn.execute(_INSERT_HEARTBEAT, heartbeat_row(heartbeat, sqlite_time))
    conn.executemany(_INSERT_OUTBOX, outbox_rows(job_id, events, at, sqlite_time))


def _job(row: Sequence[Any]) -> Job:
    return job_from_row(row, sqlite_read_time, sqlite_read_doc)
