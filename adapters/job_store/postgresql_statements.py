"""PostgreSQL: a job change and all its side rows in ONE statement, run in autocommit.

A change is a data-modifying CTE named ``changed`` (``INSERT``/``UPDATE jobs … RETURNING``);
its events, heartbeat and outbox rows are ``INSERT … SELECT … FROM changed`` CTEs beside
it, so they are written exactly when the change is (a lost compare-and-set writes none),
and the statement is its own transaction: one round trip instead of BEGIN, three or four
statements and COMMIT. Statements are built once per shape (how many events, outbox
rows, heartbeats); ``adapters.job_store.sql`` runs them, and holds the generic path.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from adapters.job_store.sql_rows import (
    EVENT_COLUMNS,
    EVENTS,
    HEARTBEAT_COLUMNS,
    HEARTBEATS,
    JOB_COLUMNS,
    JOBS,
    OUTBOX,
    OUTBOX_COLUMNS,
)

#: The columns that take the changed job's id rather than a bound value.
_JOB_ID = ("job_id", "ref_id")


@functools.cache
def add_statement(events: int, topics: int) -> sa.Select[Any]:
    """Insert a job (``job_params`` of every column) with its side rows; selects 1."""
    added = sa.insert(JOBS).values(_job_values(JOB_COLUMNS)).returning(JOBS.c.id).cte("changed")
    return one_statement(added, events=events, topics=topics, heartbeat=False, returning=False)


@functools.cache
def save_statement(events: int, topics: int, heartbeat: bool) -> sa.Select[Any]:
    """Compare-and-set a job (``b_id``, ``b_expected``, ``job_params`` of all columns but
    ``id``) with its side rows; selects how many jobs changed (0 or 1)."""
    saved = (
        sa.update(JOBS)
        .where(JOBS.c.id == sa.bindparam("b_id"), JOBS.c.version == sa.bindparam("b_expected"))
        .values(_job_values(JOB_COLUMNS[1:]))
        .returning(JOBS.c.id)
        .cte("changed")
    )
    return one_statement(saved, events=events, topics=topics, heartbeat=heartbeat, returning=False)


@functools.cache
def claim_statement(claim: sa.UpdateBase) -> sa.Select[Any]:
    """``claim`` (an ``UPDATE jobs … RETURNING`` every column) with its event and outbox row;
    selects the claimed job, if any."""
    return one_statement(claim.cte("changed"), events=1, topics=1, heartbeat=False, returning=True)


def job_params(columns: Sequence[str], row: Sequence[Any]) -> dict[str, Any]:
    """Bound values of a job's columns, from a ``sql_rows.job_row`` tuple (or its tail)."""
    return {f"v_{name}": value for name, value in zip(columns, row, strict=True)}


def _job_values(columns: Sequence[str]) -> dict[str, Any]:
    # Bound as v_<column>: SQLAlchemy reserves a column's own name for its implicit SET/VALUES.
    return {name: sa.bindparam(f"v_{name}", type_=JOBS.c[name].type) for name in columns}


def _latest_heartbeats() -> sa.Select[Any]:
    ids = sa.func.unnest(sa.bindparam("b_ids", type_=postgresql.ARRAY(sa.String))).table_valued("id")
    ids = ids.render_derived(name="wanted")
    newest = (
        sa.select(*(HEARTBEATS.c[n] for n in HEARTBEAT_COLUMNS))
        .where(HEARTBEATS.c.job_id == ids.c.id)
        .order_by(HEARTBEATS.c.id.desc())
        .limit(sa.bindparam("b_limit"))
        .lateral("newest")
    )
    return sa.select(*(newest.c[n] for n in HEARTBEAT_COLUMNS)).select_from(ids).join(newest, sa.true())


#: The newest ``b_limit`` heartbeats of each job of ``b_ids``: one index scan per job, not a
#: window over every heartbeat of the batch.
LATEST_HEARTBEATS = _latest_heartbeats()


def one_statement(
    changed: sa.CTE, *, events: int, topics: int, heartbeat: bool, returning: bool
) -> sa.Select[Any]:
    """``changed`` with ``events`` events, ``topics`` outbox rows and maybe a heartbeat, all
    bound as ``side_params`` names them; selects the changed job's columns (``returning``)
    or how many jobs changed (0 or 1)."""
    side = []
    if events:
        side.append(_insert(EVENTS, EVENT_COLUMNS, changed, "e", events, "new_events"))
    if heartbeat:
        side.append(_insert(HEARTBEATS, HEARTBEAT_COLUMNS, changed, "h", 1, "new_heartbeat"))
    side.append(_insert(OUTBOX, OUTBOX_COLUMNS, changed, "o", topics, "new_outbox"))
    final = (
        sa.select(*(changed.c[name] for name in JOB_COLUMNS))
        if returning
        else sa.select(sa.func.count()).select_from(changed)
    )
    return final.add_cte(*side)


def side_params(
    events: Sequence[Sequence[Any]], heartbeat: Sequence[Any] | None, outbox: Sequence[Sequence[Any]]
) -> dict[str, Any]:
    """Bound values of ``one_statement``'s side rows, from ``sql_rows`` tuples."""
    params: dict[str, Any] = {}
    for prefix, columns, rows in (
        ("e", EVENT_COLUMNS, events),
        ("h", HEARTBEAT_COLUMNS, [heartbeat] if heartbeat is not None else []),
        ("o", OUTBOX_COLUMNS, outbox),
    ):
        for i, row in enumerate(rows):
            for name, value in zip(columns, row, strict=True):
                if name not in _JOB_ID:
                    params[f"{prefix}{i}_{name}"] = value
    return params


def _insert(
    table: sa.Table, columns: Sequence[str], changed: sa.CTE, prefix: str, count: int, name: str
) -> sa.CTE:
    rows = [
        sa.select(
            *(
                changed.c.id
                if column in _JOB_ID
                else sa.bindparam(f"{prefix}{i}_{column}", type_=table.c[column].type)
                for column in columns
            )
        )
        for i in range(count)
    ]
    source = rows[0] if count == 1 else sa.union_all(*rows)
    return sa.insert(table).from_select(list(columns), source).cte(name)
