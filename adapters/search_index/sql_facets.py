"""The facet counts of a search on SQL, in one statement (``adapters.search_index.sql``).

The documents the search matches are selected once, in a materialised CTE that each facet
reads, except on SQLite for a cheap selection (``materialise=False``: a reader-filtered
search without words), which each facet selects again in its own subquery: reading the
materialised CTE from three ``UNION ALL`` branches took twice as long as selecting a caller's
~1,400 documents three times (21 vs 11 ms, benchmarks/library.py), while a full-text match or
a scan of every document is worth computing once.
Each facet is a ``GROUP BY`` over them (over ``search_terms`` joined to them for a
``terms.<key>`` facet), and ``row_number()`` keeps each
facet's top ``FACET_SIZE`` values by count, then value. Values tie-break by code point as
in Python: PostgreSQL compares them with the "C" collation, SQLite's BINARY does already.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from adapters.search_index.sql_models import SearchTermRow
from studio9.metadata.domain import FACET_SIZE, facet_source

TERMS: sa.Table = SearchTermRow.__table__  # type: ignore[assignment]


def facet_statement(
    matched: sa.Select[Any], facets: Sequence[str], *, dialect: str, materialise: bool = True
) -> sa.Select[Any]:
    """Rows ``(facet, value, n)``: the top values of each of ``facets`` among ``matched``.

    ``matched`` selects the ``seq``, ``kind``, ``owner_id`` and ``fields`` of ``search_documents``
    that the search matches, with every condition of the search (readers included) and no order.
    """
    sources: list[sa.FromClause]
    if materialise or dialect != "sqlite":
        # Computed once, however many facets read it (SQLite 3.35+ and PostgreSQL 12+ take the hint).
        sources = [matched.cte("matched").prefix_with("MATERIALIZED")] * len(facets)
    else:
        sources = [matched.subquery(f"matched_{i}") for i in range(len(facets))]
    counts = [_counts(source, name, dialect) for source, name in zip(sources, facets, strict=True)]
    union = counts[0] if len(counts) == 1 else sa.union_all(*counts)
    counted = union.subquery("counted")
    value: ColumnElement[Any] = counted.c.value
    if dialect == "postgresql":
        value = sa.collate(value, "C")
    rank = (
        sa.func.row_number()
        .over(partition_by=counted.c.facet, order_by=(counted.c.n.desc(), value.asc()))
        .label("rank")
    )
    ranked = sa.select(counted.c.facet, counted.c.value, counted.c.n, rank).subquery("ranked")
    return sa.select(ranked.c.facet, ranked.c.value, ranked.c.n).where(ranked.c.rank <= FACET_SIZE)


def _counts(documents: sa.FromClause, name: str, dialect: str) -> sa.Select[Any]:
    source, key = facet_source(name)
    label = sa.literal(name, sa.String()).label("facet")
    count = sa.func.count().label("n")
    if source == "terms":
        term_key: ColumnElement[str] = TERMS.c.key
        if dialect == "sqlite":
            # ``key || ''`` is no column SQLite can index: it then reads each matched
            # document's terms by primary key, instead of every value of the key (it cannot
            # tell how few documents the CTE holds).
            term_key = TERMS.c.key.concat("")
        return (
            sa.select(label, TERMS.c.value.label("value"), count)
            .select_from(documents.join(TERMS, TERMS.c.seq == documents.c.seq))
            .where(term_key == key)
            .group_by(TERMS.c.value)
        )
    column: ColumnElement[Any]
    if source == "fields":
        assert key is not None
        column = documents.c.fields[key].as_string()
    else:
        column = documents.c[source]
    return (
        sa.select(label, column.label("value"), count)
        .select_from(documents)
        .where(column.is_not(None))
        .group_by(column)
    )
