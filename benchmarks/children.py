"""Child processes the benchmarks start (``studio9 serve``, a bare Litestar app): one way to
start, stop and wait for them, shared by the scripts here (imported by module name, as
``deadline``)."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from deadline import Deadline

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Seconds a child has to stop after SIGINT before it is killed.
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def child(cmd: list[str], env: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``cmd`` with its output in ``log_path``; stop it on the way out, whatever happened."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)  # does nothing if it has already exited
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def log_tail(log_path: Path, lines: int = 20) -> str:
    return "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def check_alive(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    if proc.poll() is not None:
        raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}:\n{log_tail(log_path)}")


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, deadline: Deadline) -> None:
    """Return once ``url`` answers 200; raise if the child exits or the deadline passes."""
    while deadline.left(f"waiting for {url} to answer"):
        check_alive(proc, log_path)
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
