"""Running ``studio9`` as a real OS process, the way operators and CI do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx


def studio9_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The current environment without STUDIO9_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env.update({"STUDIO9_DATA_DIR": str(data_dir), "STUDIO9_LOG_FORMAT": "json", **settings})
    return env


def run_cli(
    *args: str, env: Mapping[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio9", *args],
        env=dict(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(*args: str, env: Mapping[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "studio9", *args], env=dict(env), stdout=handle, stderr=subprocess.STDOUT
    )


def wait_http(url: str, process: subprocess.Popen[bytes], *, timeout: float = 30) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode} before {url} answered")
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer within {timeout}s")


def stop(process: subprocess.Popen[bytes], *, timeout: float = 30) -> int:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode
