"""``studio9 tables …``, ``studio9 sql`` and ``studio9 lineage``: tables through the HTTP API.

Rows (``tables rows``, ``sql``) print as an aligned table on a terminal and as JSON lines (one
object per row) with ``--json`` or when standard output is not a terminal, so that a pipe into
``jq`` or a file gets data rather than a picture of it. Errors are the client's one line
(``studio9.client``): 404 unknown table, 409 a table without data yet, 422 a bad filter or SQL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio9.cli_client import follow_job
from studio9.config.settings import Settings
from studio9.errors import ConfigError

#: The most rows the server gives in one page of ``/rows``; more are fetched page by page.
PAGE_ROWS = 1000
#: A cell wider than this is cut on the terminal (the JSON lines carry it whole).
MAX_CELL = 40


def add_commands(commands: Any, common: list[argparse.ArgumentParser]) -> None:
    """Add ``tables``, ``sql`` and ``lineage`` to ``commands``; ``common`` holds the shared flags."""
    tables = commands.add_parser(
        "tables",
        help="import, list, show, read and export tables (via the API)",
        description="Talk to the server at STUDIO9_API_URL with STUDIO9_TOKEN.",
    )
    tables.set_defaults(client=True)  # quiet logging unless -v (see studio9.cli)
    sub = tables.add_subparsers(title="table commands", metavar="TABLE_COMMAND", required=True)
    imp = sub.add_parser(
        "import",
        parents=common,
        help="upload a file and import it as a table",
        description="Upload FILE and import it as the table NAME (a tables.import job). Prints the "
        "table and its job as JSON; with --watch, prints the table id and follows the job: exit 0 "
        "when the table is ready, 1 when the import failed (its last line says why).",
    )
    imp.add_argument("path", type=Path, metavar="FILE")
    imp.add_argument("--name", required=True, help="the table's name")
    imp.add_argument("--description")
    imp.add_argument("--format", choices=["csv", "parquet", "jsonl"], help="default: told from the file")
    imp.add_argument("--delimiter", help="CSV field delimiter (default: detected)")
    imp.add_argument("--encoding", help="text encoding (default: utf-8)")
    imp.add_argument("--null-value", action="append", dest="null_values", metavar="TEXT", help="repeatable")
    imp.add_argument("--no-header", action="store_true", help="the CSV has no header row")
    imp.add_argument("--on-error", choices=["fail", "skip"], help="skip: keep going past bad rows")
    imp.add_argument("--watch", action="store_true", help="follow the import job until it ends")
    imp.set_defaults(run=_import)
    listing = sub.add_parser("list", parents=common, help="list your tables", description="List tables.")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_list)
    show = sub.add_parser("show", parents=common, help="print a table as JSON", description="Print a table.")
    show.add_argument("id", help="table id")
    show.set_defaults(run=_show)
    rows = sub.add_parser(
        "rows",
        parents=common,
        help="print a table's rows",
        description="Print rows: a table on a terminal, JSON lines with --json or into a pipe. "
        "Filter syntax: \"age\" >= 18 and \"city\" in ('Oslo', 'Rome') (see the README).",
    )
    rows.add_argument("id", help="table id")
    rows.add_argument("--limit", type=int, default=100, help="rows to print (default: 100)")
    rows.add_argument("--filter", help="a filter expression")
    rows.add_argument("--order", metavar="COL[:desc]", help="sort by a column")
    rows.add_argument("--columns", metavar="A,B", help="only these columns")
    rows.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    rows.set_defaults(run=_rows)
    export = sub.add_parser(
        "export", parents=common, help="download a table as CSV or Parquet", description="Export a table."
    )
    export.add_argument("id", help="table id")
    export.add_argument("--format", choices=["csv", "parquet"], default="csv")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="PATH")
    export.set_defaults(run=_export)

    sql = commands.add_parser(
        "sql",
        parents=common,
        help="preview a read-only SQL query over tables (via the API)",
        description='Run one SELECT over tables named "username/name" or "<table id>" and print its '
        "first rows: a table on a terminal, JSON lines with --json or into a pipe.",
    )
    sql.add_argument("sql", metavar="SQL")
    sql.add_argument("--limit", type=int, default=100, help="rows to print (default: 100, at most 1000)")
    sql.add_argument("--json", action="store_true", help="JSON lines even on a terminal")
    sql.set_defaults(run=_sql, client=True)

    lineage = commands.add_parser(
        "lineage",
        parents=common,
        help="print what an asset was made from and what was made from it (via the API)",
        description="Print the lineage of an asset (table, file) as a tree; --json for the graph.",
    )
    lineage.add_argument("id", metavar="ASSET_ID")
    lineage.add_argument("--direction", choices=["up", "down", "both"], default="both")
    lineage.add_argument("--depth", type=int, default=3, help="edges away (default: 3)")
    lineage.add_argument("--json", action="store_true", help="the {nodes, edges} answer as JSON")
    lineage.set_defaults(run=_lineage, client=True)


def _client(settings: Settings) -> Any:
    from studio9.client import StudioClient

    return StudioClient(settings)


def _print(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True))


def _import(settings: Settings, args: argparse.Namespace) -> int:
    if not args.path.is_file():
        raise ConfigError(f"{args.path} is not a file", setting="FILE")
    given = {
        "description": args.description,
        "format": args.format,
        "delimiter": args.delimiter,
        "encoding": args.encoding,
        "null_values": args.null_values,
        "header": False if args.no_header else None,
        "on_error": args.on_error,
    }
    with _client(settings) as client:
        uploaded = client.upload(args.path)
        body = {
            "name": args.name,
            "file": uploaded["id"],
            **{k: v for k, v in given.items() if v is not None},
        }
        created = client.request("POST", "/tables", json=body)
        if not args.watch:
            _print(created)
            return 0
        print(created["table"]["id"], flush=True)
        return follow_job(client, created["job"]["id"], settings)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        page = client.request("GET", "/tables", params={"limit": args.limit})
    for table in page["items"]:
        print(f"{table['id']}  {table['status']:<7} v{table['latest_version']:<3} {table['name']}")
    return 0


def _show(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        _print(client.request("GET", f"/tables/{args.id}"))
    return 0


def _rows(settings: Settings, args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ConfigError("expected a positive number of rows", setting="--limit")
    query: dict[str, Any] = {k: v for k, v in (("filter", args.filter), ("order", args.order)) if v}
    if args.columns:
        query["columns"] = [c.strip() for c in args.columns.split(",") if c.strip()]
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    with _client(settings) as client:
        cursor: str | None = None
        while len(rows) < args.limit:
            params = {**query, "limit": min(args.limit - len(rows), PAGE_ROWS)}
            page = client.request(
                "GET", f"/tables/{args.id}/rows", params={**params, **({"cursor": cursor} if cursor else {})}
            )
            columns, cursor = page["columns"], page["next_cursor"]
            rows.extend(page["rows"])
            if cursor is None:
                break
    _emit(columns, [[row.get(c) for c in columns] for row in rows], as_json=args.json)
    return 0


def _sql(settings: Settings, args: argparse.Namespace) -> int:
    with _client(settings) as client:
        result = client.request("POST", "/sql/preview", json={"sql": args.sql, "limit": args.limit})
    columns = [c["name"] for c in result["columns"]]
    _emit(columns, result["rows"], as_json=args.json)
    if result["truncated"] and _terminal(args.json):
        print(f"(first {len(result['rows'])} rows; --limit for more)", file=sys.stderr)
    return 0


def _terminal(as_json: bool) -> bool:
    return not as_json and sys.stdout.isatty()


def _emit(columns: list[str], rows: list[list[Any]], *, as_json: bool) -> None:
    """The rows as an aligned table on a terminal, else one JSON object per line."""
    if not _terminal(as_json):
        for row in rows:
            print(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False, default=str))
        return
    for line in table_lines(columns, rows):
        print(line)
    print(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")


def table_lines(columns: list[str], rows: list[list[Any]]) -> list[str]:
    """An aligned text table: a header, a rule, then the rows; numbers right-aligned, nulls blank."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    numeric = [
        all(
            isinstance(row[i], int | float) and not isinstance(row[i], bool)
            for row in rows
            if row[i] is not None
        )
        for i in range(len(columns))
    ]

    def line(values: list[str]) -> str:
        parts = [v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    return [line([_cut(c) for c in columns]), "  ".join("-" * w for w in widths), *(line(r) for r in cells)]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return _cut(" ".join(text.split()))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def _export(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    from studio9.client import ApiError, api_base, api_token

    path, params = f"/tables/{args.id}/export", {"format": args.format}
    partial = args.output.with_name(f".{args.output.name}.part")
    written = 0
    with _client(settings) as client:
        try:
            with (
                httpx.Client(
                    base_url=api_base(settings),
                    timeout=settings.backend_timeout * 6,
                    headers={"Authorization": f"Bearer {api_token(settings)}"},
                ) as http,
                http.stream("GET", "/api/v1" + path, params=params) as response,
            ):
                if response.status_code >= 400:
                    # The same request again, through the client that turns a problem into one line.
                    client.request("GET", path, params=params)
                    raise ApiError(f"{response.status_code} {response.reason_phrase}")
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        written += out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            client.request("GET", f"/tables/{args.id}")  # unreachable or refused: its one line
            raise ApiError(f"the export of {args.id} broke off after {written} bytes: {exc}") from None
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ConfigError(f"cannot write {args.output}: {exc.strerror}", setting="--output") from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    # Whole or not at all: a broken download never leaves a file that looks like the table.
    os.replace(partial, args.output)
    print(f"{args.output}  {written} bytes")
    return 0


def _lineage(settings: Settings, args: argparse.Namespace) -> int:
    params = {"direction": args.direction, "depth": args.depth}
    with _client(settings) as client:
        graph = client.request("GET", f"/assets/{args.id}/lineage", params=params)
    if args.json:
        _print(graph)
        return 0
    for line in lineage_lines(args.id, graph, args.direction):
        print(line)
    return 0


def lineage_lines(root: str, graph: dict[str, Any], direction: str) -> list[str]:
    """The lineage as a tree: the asset, then ``made from`` (up) and ``used by`` (down) branches.

    An asset reached twice is printed once in full, then as ``(see above)``: a graph that
    joins (two tables derived from one file, then joined) would otherwise repeat whole subtrees.
    """
    nodes = {node["id"]: node for node in graph["nodes"]}
    lines = [_node(nodes.get(root, {"id": root}))]
    for way, title in (("up", "made from"), ("down", "used by")):
        if direction not in (way, "both"):
            continue
        lines.append(f"{title}:")
        seen: set[str] = {root}
        branch = list(_branch(root, graph["edges"], nodes, way, seen, "  "))
        lines.extend(branch or ["  (nothing)"])
    if graph.get("truncated"):
        lines.append("(more beyond --depth)")
    return lines


def _branch(
    asset: str, edges: list[dict[str, Any]], nodes: dict[str, Any], way: str, seen: set[str], indent: str
) -> Iterator[str]:
    near, far = ("output_id", "input_id") if way == "up" else ("input_id", "output_id")
    arrow = "<-" if way == "up" else "->"
    for edge in sorted((e for e in edges if e[near] == asset), key=lambda e: (e[far], e["input_version"])):
        other = edge[far]
        versions = f"v{edge['input_version']} -> v{edge['output_version']}"
        repeat = other in seen
        yield f"{indent}{arrow} {_node(nodes.get(other, {'id': other}))}  [{versions}]" + (
            "  (see above)" if repeat else ""
        )
        if not repeat:
            seen.add(other)
            yield from _branch(other, edges, nodes, way, seen, indent + "   ")


def _node(node: dict[str, Any]) -> str:
    if node.get("deleted") or node.get("kind") is None:
        return f"(deleted) {node['id']}"
    version = f" v{node['version']}" if node.get("version") else ""
    status = "" if node.get("status") in (None, "active") else f" [{node['status']}]"
    return f'{node["kind"]} "{node["name"]}"{version}{status}  {node["id"]}'
