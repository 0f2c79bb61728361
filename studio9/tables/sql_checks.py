"""The checks ``studio9.tables.sql`` runs on a query before DuckDB binds or runs it.

One statement of type SELECT, the table names it references (from the parse tree, without
binding), and names that SQL can tell apart. Each function parses with the locked connection
it is given; duckdb is imported inside them, as in ``studio9.tables.sql``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from studio9.errors import InvalidInput

if TYPE_CHECKING:
    import duckdb

#: Longer SQL is refused before parsing; no hand-written query comes near it.
MAX_SQL_CHARS = 100_000


def single_select(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The one statement of ``sql``, which must be a SELECT; anything else is ``InvalidInput``."""
    import duckdb

    if len(sql) > MAX_SQL_CHARS:
        raise InvalidInput(f"the query is longer than {MAX_SQL_CHARS} characters", field="sql")
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise InvalidInput(first_paragraph(str(exc)), field="sql") from exc
    if len(statements) != 1:
        raise InvalidInput(f"send exactly one statement, not {len(statements)}", field="sql")
    statement = statements[0]
    if statement.type != duckdb.StatementType.SELECT:
        kind = statement.type.name.replace("_", " ")
        raise InvalidInput(
            f"only a SELECT (or WITH … SELECT) query is allowed; this is a {kind} statement", field="sql"
        )
    return statement


def table_names(con: duckdb.DuckDBPyConnection, sql: str) -> set[str]:
    """Every table reference in the parsed query, minus the query's own CTE names.

    ``get_table_names`` would bind the query, which fails on ``JOIN … USING`` between tables
    that do not exist yet; the serialized parse tree needs no binding. A CTE name shadows a
    table anywhere in the query here (scoping is not followed): a table so hidden is not
    reported, and if the query does read it, the engine's "does not exist" still becomes
    ``UnknownTable``.
    """
    ((serialized,),) = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
    tree = json.loads(serialized)
    if tree.get("error"):
        raise InvalidInput(first_paragraph(str(tree.get("error_message"))), field="sql")
    ctes: set[str] = set()
    refs: list[tuple[str, str, str]] = []
    for node in _nodes(tree):
        if isinstance(cte_map := node.get("cte_map"), dict):
            ctes.update(str(entry["key"]).casefold() for entry in cte_map.get("map", ()))
        if node.get("type") == "BASE_TABLE":
            refs.append(
                (str(node.get("catalog_name")), str(node.get("schema_name")), str(node["table_name"]))
            )
    names = set()
    for catalog, schema, name in refs:
        if catalog not in ("", "memory") or schema not in ("", "main"):
            qualified = ".".join(part for part in (catalog, schema, name) if part)
            raise InvalidInput(
                f'"{qualified}" is not a table name: write "owner/name" or the table id in double quotes',
                field="sql",
            )
        if schema or name.casefold() not in ctes:
            names.add(name)
    return names


def _nodes(tree: Any) -> Iterator[dict[str, Any]]:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def distinct_names(names: Iterable[str]) -> None:
    """Refuse table names that DuckDB, matching identifiers case-insensitively, would confuse."""
    seen: dict[str, str] = {}
    for name in names:
        if (other := seen.setdefault(name.casefold(), name)) != name:
            raise InvalidInput(
                f'"{other}" and "{name}" differ only in case, which SQL does not tell apart; '
                "name one of them by its id",
                field="sql",
            )


def unique_columns(columns: list[str]) -> None:
    """Refuse a result with two columns of the same name (a table's columns are named uniquely)."""
    seen: set[str] = set()
    for name in columns:
        if name.casefold() in seen:
            raise InvalidInput(f'the result has two columns named "{name}"; rename one with AS', field="sql")
        seen.add(name.casefold())


def first_paragraph(message: str) -> str:
    """DuckDB's message up to its first blank line (the "did you mean", not the caret drawing)."""
    paragraph = message.strip().split("\n\n", 1)[0]
    return " ".join(line.strip() for line in paragraph.splitlines())
