"""``studio9 share``, ``shares``, ``unshare``, ``projects`` and ``assets`` against a real
``studio9 serve``: a user shares a table with another, who finds it in their library and reads it;
taking the share back takes it away; projects link assets and add members."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.processes import free_port, run_cli, start, stop, studio9_env, wait_http
from tests.integration.test_cli import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("server") / "data"
    port = free_port()
    env = studio9_env(data, STUDIO9_PORT=str(port))
    process = start("serve", env=env, log=data.parent / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", process)
        yield Server(env=env, url=url, token=(data / "admin-token").read_text().strip())
    finally:
        assert stop(process) == 0


def _as(server: Server, name: str) -> dict[str, str]:
    """The environment of a new user ``name`` (created by the admin over HTTP)."""
    created = httpx.post(
        f"{server.url}/api/v1/users",
        headers={"Authorization": f"Bearer {server.token}"},
        json={"username": name},
    )
    assert created.status_code == 201, created.text
    return {**server.env, "STUDIO9_TOKEN": created.json()["token"]["token"]}


def _assets(env: dict[str, str], *args: str, expect: int) -> list[str]:
    """``studio9 assets`` lines, once there are ``expect`` of them (the index follows in ~1 s)."""
    for _ in range(100):
        listed = run_cli("assets", *args, env=env)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.splitlines()
        if len(lines) == expect:
            return lines
        time.sleep(0.1)
    raise AssertionError(f"studio9 assets {args} printed {lines}")


def test_share_a_table_find_it_read_it_and_take_it_back(server: Server, tmp_path: Path) -> None:
    ada, bob = _as(server, "ada"), _as(server, "bob")
    path = tmp_path / "sales.csv"
    path.write_text("city,amount\nOslo,1\nRome,2\n")
    imported = run_cli("tables", "import", str(path), "--name", "sales", "--watch", env=ada)
    assert imported.returncode == 0, imported.stderr
    table = imported.stdout.strip()

    assert _assets(bob, "--shared", expect=0) == []
    shared = run_cli("share", table, "bob", env=ada)
    assert shared.returncode == 0, shared.stderr
    share_id, permission, *_ = shared.stdout.split()
    assert permission == "read"
    (line,) = _assets(bob, "--shared", "sales", expect=1)
    assert line.split()[0] == table
    rows = run_cli("sql", 'SELECT sum(amount) AS total FROM "ada/sales"', "--json", env=bob)
    assert rows.returncode == 0, rows.stderr
    assert json.loads(rows.stdout) == {"total": 3}
    received = run_cli("shares", env=bob)
    assert received.stdout.split()[0] == share_id
    # Bob may not pass it on; taken back, it is gone.
    refused = run_cli("share", table, "ada", env=bob)
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused.stderr
    assert run_cli("unshare", share_id, env=ada).returncode == 0
    assert _assets(bob, "--shared", expect=0) == []

    # A project: ada links the table and makes bob a reader.
    created = run_cli("projects", "create", "survey", env=ada)
    project = created.stdout.strip()
    assert run_cli("projects", "add", project, table, env=ada).returncode == 0
    assert run_cli("projects", "member", project, "bob", env=ada).returncode == 0
    assert run_cli("projects", "list", env=bob).stdout.split()[:2] == [project, "survey"]
    (line,) = _assets(bob, "--shared", expect=1)
    assert line.split()[0] == table
