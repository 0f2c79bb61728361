"""``studio9 serve`` as a real process: migrates, writes the admin token, answers, stops cleanly."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.processes import free_port, start, stop, studio9_env, wait_http


def test_serve_starts_on_embedded_defaults_and_the_admin_token_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    process = start("serve", "--port", str(port), env=studio9_env(data_dir), log=tmp_path / "serve.log")
    try:
        health = wait_http(f"http://127.0.0.1:{port}/health", process)
        assert health.status_code == 200
        assert set(health.json()["backends"]) == {"database", "broker", "index", "blobs", "sink", "events"}
        token_file = data_dir / "admin-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        token = token_file.read_text().strip()
        me = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
        assert me.json()["username"] == "admin"
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me").status_code == 401
    finally:
        code = stop(process)
    log = (tmp_path / "serve.log").read_text()
    assert code == 0, log
    assert token not in log  # the log names the file, never the token
    assert str(token_file) in log or "admin-token" in log


def test_a_restart_keeps_users_and_does_not_rewrite_the_token(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = studio9_env(data_dir)
    for attempt in range(2):
        port = free_port()
        process = start("serve", "--port", str(port), env=env, log=tmp_path / f"serve{attempt}.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/health", process)
            if attempt == 0:
                first_token = (data_dir / "admin-token").read_text()
                mtime = (data_dir / "admin-token").stat().st_mtime_ns
        finally:
            assert stop(process) == 0
    assert (data_dir / "admin-token").read_text() == first_token
    assert (data_dir / "admin-token").stat().st_mtime_ns == mtime
