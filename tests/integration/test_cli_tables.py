"""``studio9 tables``, ``studio9 sql`` and ``studio9 lineage`` against a real ``studio9 serve``:
import with --watch end to end, rows (JSON lines off a terminal, an aligned table on one), an
export that reads back as the file imported, a SQL preview, the lineage tree, and a bad file
failing in one clear line with a non-zero exit."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.integration.test_cli import Server

ROWS = 30
SALES = "city,amount\n" + "".join(f"{'Oslo' if i % 3 else 'Rome'},{i}\n" for i in range(ROWS))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server") / "data"
    port = free_port()
    env = studio9_env(data, STUDIO9_PORT=str(port), STUDIO9_HEARTBEAT_INTERVAL="0.5")
    process = start("serve", env=env, log=data.parent / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process)
        yield Server(env=env, url=url, token=(data / "admin-token").read_text().strip())
    finally:
        assert stop(process) == 0


@pytest.fixture(scope="module")
def sales(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The id of a table ``sales`` imported from SALES, the way a user would."""
    path = tmp_path_factory.mktemp("files") / "sales.csv"
    path.write_text(SALES)
    imported = run_cli("tables", "import", str(path), "--name", "sales", "--watch", env=server.env)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr.splitlines()[-1].startswith("completed in "), imported.stderr
    table_id = imported.stdout.strip()
    assert len(table_id.splitlines()) == 1
    return table_id


def test_import_watch_makes_a_table_that_show_and_list_describe(server: Server, sales: str) -> None:
    shown = run_cli("tables", "show", sales, env=server.env)
    assert shown.returncode == 0, shown.stderr
    table = json.loads(shown.stdout)
    assert (table["status"], table["row_count"], table["version"]) == ("active", ROWS, 1)
    assert [(c["name"], c["type"]) for c in table["columns"]] == [("city", "string"), ("amount", "integer")]
    listed = run_cli("tables", "list", env=server.env)
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith(sales) and line.endswith(" sales") for line in listed.stdout.splitlines())


def test_import_options_reach_the_server(server: Server, tmp_path: Path) -> None:
    path = tmp_path / "semi.txt"
    path.write_text("a;b\n1;x\n2;NA\n")
    created = run_cli(
        "tables", "import", str(path), "--name", "semi", "--format", "csv", "--delimiter", ";",
        "--null-value", "NA", env=server.env,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    answer = json.loads(created.stdout)
    watched = run_cli("jobs", "watch", answer["job"]["id"], env=server.env)
    assert watched.returncode == 0, watched.stderr
    rows = run_cli("tables", "rows", answer["table"]["id"], "--order", "a", env=server.env)
    assert [json.loads(line) for line in rows.stdout.splitlines()] == [
        {"a": 1, "b": "x"},
        {"a": 2, "b": None},
    ]


def test_rows_are_json_lines_off_a_terminal_filtered_ordered_and_limited(server: Server, sales: str) -> None:
    rows = run_cli(
        "tables", "rows", sales, "--filter", "\"city\" = 'Rome'", "--order", "amount:desc", "--limit", "3",
        env=server.env,
    )  # fmt: skip
    assert rows.returncode == 0, rows.stderr
    assert [json.loads(line) for line in rows.stdout.splitlines()] == [
        {"city": "Rome", "amount": a} for a in (27, 24, 21)
    ]
    everything = run_cli("tables", "rows", sales, "--limit", "1000", "--columns", "amount", env=server.env)
    assert sorted(json.loads(line)["amount"] for line in everything.stdout.splitlines()) == list(range(ROWS))
    bad = run_cli("tables", "rows", sales, "--filter", '"nope" = 1', env=server.env)
    assert bad.returncode == 1
    assert len(bad.stderr.splitlines()) == 1 and bad.stderr.startswith("studio9: error: "), bad.stderr
    assert "nope" in bad.stderr


def _on_a_terminal(server: Server, *args: str) -> str:
    """Run the CLI with standard output on a pseudo-terminal; what it printed there."""
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "studio9", *args],
        env=server.env,
        stdin=subprocess.DEVNULL,
        stdout=secondary,
        stderr=subprocess.PIPE,
    )
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError as exc:
            if exc.errno != errno.EIO:  # EIO: the process is gone and the terminal with it
                raise
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert process.wait(timeout=60) == 0
    return output.decode().replace("\r\n", "\n")


def test_rows_on_a_terminal_are_an_aligned_table(server: Server, sales: str) -> None:
    text = _on_a_terminal(server, "tables", "rows", sales, "--order", "amount", "--limit", "2")
    assert text.splitlines() == ["city  amount", "----  ------", "Rome       0", "Oslo       1", "(2 rows)"]
    forced = _on_a_terminal(server, "tables", "rows", sales, "--order", "amount", "--limit", "1", "--json")
    assert json.loads(forced) == {"city": "Rome", "amount": 0}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trips(server: Server, sales: str, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"sales.{fmt}"
    exported = run_cli("tables", "export", sales, "--format", fmt, "-o", str(out), env=server.env)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.strip() == f"{out}  {out.stat().st_size} bytes"
    if fmt == "csv":
        got = [(r["city"], int(r["amount"])) for r in csv.DictReader(io.StringIO(out.read_text()))]
    else:
        got = list(zip(*pq.read_table(out).to_pydict().values(), strict=True))
    expected = [(r["city"], int(r["amount"])) for r in csv.DictReader(io.StringIO(SALES))]
    assert sorted(got) == sorted(expected)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no partial file left beside it


def test_export_of_an_unknown_table_is_one_line_and_writes_nothing(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "nothing.csv"
    result = run_cli("tables", "export", "no-such-table", "-o", str(out), env=server.env)
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("studio9: error: 404 ")
    assert list(tmp_path.iterdir()) == []


def test_sql_previews_rows(server: Server, sales: str) -> None:
    query = 'SELECT city, count(*) AS n, sum(amount) AS total FROM "admin/sales" GROUP BY city ORDER BY city'
    result = run_cli("sql", query, env=server.env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"city": "Oslo", "n": 20, "total": sum(i for i in range(ROWS) if i % 3)},
        {"city": "Rome", "n": 10, "total": sum(i for i in range(ROWS) if not i % 3)},
    ]
    limited = run_cli("sql", f'SELECT * FROM "{sales}"', "--limit", "4", env=server.env)
    assert len(limited.stdout.splitlines()) == 4
    refused = run_cli("sql", 'DELETE FROM "admin/sales"', env=server.env)
    assert refused.returncode == 1
    assert len(refused.stderr.splitlines()) == 1 and refused.stderr.startswith("studio9: error: 4"), (
        refused.stderr
    )


def test_lineage_prints_the_file_and_the_derived_tables(server: Server, sales: str) -> None:
    derived = run_cli("tables", "show", sales, env=server.env)
    file_id = json.loads(derived.stdout)["source"]["file"]
    up = run_cli("lineage", sales, "--direction", "up", env=server.env)
    assert up.returncode == 0, up.stderr
    lines = up.stdout.splitlines()
    assert lines[0] == f'table "sales" v1  {sales}'
    assert lines[1] == "made from:"
    assert lines[2].startswith('  <- file "sales.csv" v1  ') and file_id in lines[2], lines
    assert "used by:" not in up.stdout
    down = run_cli("lineage", file_id, "--depth", "1", env=server.env)
    assert down.returncode == 0, down.stderr
    assert f'  -> table "sales" v1  {sales}  [v1 -> v1]' in down.stdout.splitlines()
    graph = json.loads(run_cli("lineage", sales, "--json", env=server.env).stdout)
    assert {n["id"] for n in graph["nodes"]} >= {sales, file_id}


def test_a_bad_file_fails_the_import_in_one_clear_line(server: Server, tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b\n1,2\n3,4,5\n")
    result = run_cli("tables", "import", str(ragged), "--name", "ragged", "--watch", env=server.env)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if "fail" in line]
    assert failed == [result.stderr.splitlines()[-1]], result.stderr
    assert failed[0].startswith("failed: ") and "row" in failed[0], failed
    table_id = result.stdout.strip()
    shown = json.loads(run_cli("tables", "show", table_id, env=server.env).stdout)
    assert shown["status"] == "error"
    unready = run_cli("tables", "rows", table_id, env=server.env)
    assert unready.returncode == 1 and unready.stderr.startswith("studio9: error: 409 "), unready.stderr

    missing = run_cli("tables", "import", str(tmp_path / "nope.csv"), "--name", "x", env=server.env)
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [f"studio9: error: FILE: {tmp_path / 'nope.csv'} is not a file"]


@pytest.mark.parametrize(
    "command",
    [["tables"], ["tables", "import"], ["tables", "rows"], ["tables", "export"], ["sql"], ["lineage"]],
)
def test_help_is_useful(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, "--help", env=studio9_env(tmp_path))
    assert result.returncode == 0
    assert "usage: studio9" in result.stdout
    assert len(result.stdout.splitlines()) >= 4
