"""Leftovers of a killed upload: ``studio9 serve`` SIGKILLed mid-upload leaves its staged part;
the next start sweeps it (once older than ``STUDIO9_STAGING_MAX_AGE``) and keeps a young one."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.integration.processes import free_port, start, stop, studio9_env, wait_http

MIB = 1 << 20


def _parts(staging: Path) -> list[str]:
    return sorted(p.name for p in staging.glob("*.part")) if staging.is_dir() else []


def _wait_for(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout}s")
        time.sleep(0.05)


def test_a_part_left_by_a_killed_upload_is_swept_at_the_next_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    staging = data_dir / "blobs" / ".staging"
    env = studio9_env(data_dir)
    port = free_port()
    process = start("serve", "--port", str(port), env=env, log=tmp_path / "serve1.log")
    release = threading.Event()
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
        token = (data_dir / "admin-token").read_text().strip()

        def body() -> Iterator[bytes]:
            for _ in range(4):
                yield b"x" * MIB
            release.wait(60)  # the upload hangs here until the server is dead

        def upload() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the server is killed under it
                httpx.post(
                    f"http://127.0.0.1:{port}/api/v1/files?name=big.bin",
                    headers={"Authorization": f"Bearer {token}"},
                    content=body(),
                    timeout=60,
                )

        uploader = threading.Thread(target=upload, daemon=True)
        uploader.start()
        _wait_for(lambda: _parts(staging), "a staged part")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    finally:
        release.set()
        stop(process)
    uploader.join(30)
    (dead,) = _parts(staging)
    two_days_ago = time.time() - 2 * 86400  # the default STUDIO9_STAGING_MAX_AGE is one day
    os.utime(staging / dead, (two_days_ago, two_days_ago))
    (staging / "young.part").write_bytes(b"another process's upload, written to a moment ago")

    port = free_port()
    process = start("serve", "--port", str(port), env=env, log=tmp_path / "serve2.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", process)
        _wait_for(lambda: dead not in _parts(staging), "the start-up sweep")
        assert _parts(staging) == ["young.part"]
    finally:
        assert stop(process) == 0
    log = (tmp_path / "serve2.log").read_text()
    assert '"staging_swept"' in log and '"removed": 1' in log, log
