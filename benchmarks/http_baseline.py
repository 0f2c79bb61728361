"""HTTP baseline: Studio9's authenticated ``GET /api/v1/auth/me`` against a bare Litestar app.

Two real server processes run under the same ASGI server (uvicorn, one worker, no access
log, log level warning, no ``server`` header) on free loopback ports:

* Studio9: ``studio9 migrate`` then ``studio9 api`` on a fresh temporary data directory
  (SQLite file database, other settings at their defaults). The first admin's token,
  written to ``<data dir>/admin-token`` on first start, is the bearer token.
* ``bare_app`` below: one async ``GET /me`` answering JSON the size of ``/auth/me``'s, nothing else.

Both are warmed up, then loaded one after the other with the same duration and keep-alive
connections; requests/s and latency p50/p99 are printed per target, then ``ratio_rps``
(Studio9 / bare; the aim is >= 0.5). Load comes from ``wrk --latency`` when on PATH (a Lua
script reads the token file: the token is never in a command line or the output), else
from an asyncio keep-alive client in this file. Run from the repository root:

    .venv/bin/python benchmarks/http_baseline.py [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

try:  # run as a script: its directory is on the path
    from children import HOST, REPO_ROOT, child, free_port, log_tail
except ImportError:  # imported by uvicorn as benchmarks.http_baseline, for ``bare_app``
    from benchmarks.children import HOST, REPO_ROOT, child, free_port, log_tail
from litestar import Litestar, get

STUDIO9_PATH = "/api/v1/auth/me"
BARE_PATH = "/me"
ADMIN_TOKEN_FILE = "admin-token"  # studio9.bootstrap.ADMIN_TOKEN_FILE
AIM_RATIO = 0.5
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 5.0
UVICORN_FLAGS = ("--no-access-log", "--log-level", "warning", "--lifespan", "on", "--no-server-header")


@get(BARE_PATH)
async def bare_me() -> dict[str, str]:
    """A constant answer shaped like Studio9's ``MeOut``."""
    return {
        "id": "01JBENCHMARKUSER0000000000",
        "username": "admin",
        "role": "admin",
        "token_id": "01JBENCHMARKTOKEN000000000",
        "token_expires_at": "2030-01-01T00:00:00Z",
    }


bare_app = Litestar(route_handlers=[bare_me], logging_config=None, debug=False)


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    token_file: Path | None = None

    def headers(self) -> dict[str, str]:
        token = self.token_file.read_text(encoding="utf-8").strip() if self.token_file else None
        return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int

    def line(self, name: str) -> str:
        return (
            f"{name:<16} rps={self.rps:.1f} p50_ms={self.p50_ms:.2f} p99_ms={self.p99_ms:.2f}"
            f" errors={self.errors}"
        )


# -- servers -------------------------------------------------------------------------------
def studio9_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without any STUDIO9_* setting, plus a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env.update(
        STUDIO9_DATA_DIR=str(data_dir),
        STUDIO9_LOG_LEVEL="warning",
        STUDIO9_LOG_FORMAT="json",
        STUDIO9_SHUTDOWN_TIMEOUT="5",
    )
    return env


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_tail(log_path)}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1.0) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {READY_TIMEOUT_S:.0f}s:\n{log_tail(log_path)}")


def check_answer(target: Target) -> None:
    """One request first, so a wrong token fails loudly instead of timing 401s."""
    request = urllib.request.Request(target.url, headers=target.headers())
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            response.read()
    except urllib.request.HTTPError as exc:
        raise RuntimeError(f"{target.name}: {target.url} answered {exc.code}") from None


def migrate(env: dict[str, str], log_path: Path) -> None:
    with log_path.open("wb") as log:
        done = subprocess.run(
            [sys.executable, "-m", "studio9", "migrate"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    if done.returncode:
        raise RuntimeError(f"studio9 migrate exited with {done.returncode}:\n{log_tail(log_path)}")


def start_studio9(stack: contextlib.ExitStack, workdir: Path) -> Target:
    data_dir, log_path, port = workdir / "data", workdir / "studio9.log", free_port()
    migrate(env := studio9_env(data_dir), workdir / "migrate.log")
    cmd = [sys.executable, "-m", "studio9", "api", "--host", HOST, "--port", str(port)]
    proc = stack.enter_context(child(cmd, env, log_path))
    wait_ready(f"http://{HOST}:{port}/health", proc, log_path)
    return Target("studio9_auth_me", f"http://{HOST}:{port}{STUDIO9_PATH}", data_dir / ADMIN_TOKEN_FILE)


def start_bare(stack: contextlib.ExitStack, workdir: Path) -> Target:
    log_path, port = workdir / "bare.log", free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.http_baseline:bare_app",
        "--host",
        HOST,
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]
    proc = stack.enter_context(child(cmd, dict(os.environ), log_path))
    wait_ready(url := f"http://{HOST}:{port}{BARE_PATH}", proc, log_path)
    return Target("bare_litestar", url)


# -- load: wrk -----------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def run_wrk(target: Target, duration: int, connections: int, threads: int, workdir: Path) -> Result:
    cmd = [
        "wrk",
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        f"--timeout={REQUEST_TIMEOUT_S:g}s",
    ]
    if target.token_file is not None:
        script = workdir / "auth.lua"
        script.write_text(
            f"local f = assert(io.open({json.dumps(str(target.token_file))}, 'r'))\n"
            "wrk.headers['Authorization'] = 'Bearer ' .. f:read('*l')\nf:close()\n"
        )
        cmd += ["-s", str(script)]
    done = subprocess.run(
        [*cmd, target.url], capture_output=True, text=True, check=True, timeout=duration + 30
    )
    return parse_wrk(done.stdout)


def parse_wrk(text: str) -> Result:
    def latency(pct: str) -> float:
        found = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no {pct}% latency in wrk output:\n{text}")
        return float(found[1]) * _UNITS_MS[found[2]]

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    if rps is None:
        raise RuntimeError(f"no Requests/sec in wrk output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non_2xx[1]) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    return Result(float(rps[1]), latency("50"), latency("99"), errors)


# -- load: asyncio fallback ----------------------------------------------------------------
async def _connection(request: bytes, port: int, deadline: float, latencies: list[float]) -> int:
    """Keep-alive requests on one connection until ``deadline``; returns the error count."""
    errors = 0
    async with asyncio.timeout(REQUEST_TIMEOUT_S):
        reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with asyncio.timeout(REQUEST_TIMEOUT_S):
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                await reader.readexactly(int(length[1]) if length else 0)
            latencies.append(time.perf_counter() - started)
            errors += not head.startswith(b"HTTP/1.1 2")
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        errors += 1  # this connection is done; the others go on
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return errors


def percentile_ms(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else 0.0


async def python_load(target: Target, duration: int, connections: int) -> Result:
    url = urllib.parse.urlsplit(target.url)
    lines = [
        f"GET {url.path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Connection: keep-alive",
        *(f"{k}: {v}" for k, v in target.headers().items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    started = time.perf_counter()
    async with asyncio.timeout(duration + 2 * REQUEST_TIMEOUT_S):
        errors = await asyncio.gather(
            *(_connection(request, url.port or 80, started + duration, latencies) for _ in range(connections))
        )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Result(
        len(ordered) / elapsed, percentile_ms(ordered, 0.5), percentile_ms(ordered, 0.99), sum(errors)
    )


# -- main ----------------------------------------------------------------------------------
def measure(target: Target, args: argparse.Namespace, duration: int, workdir: Path) -> Result:
    if args.load_generator == "wrk":
        return run_wrk(target, duration, args.connections, args.threads, workdir)
    return asyncio.run(python_load(target, duration, args.connections))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per target (default 10)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds per target (default 2)")
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk when on PATH, else the asyncio client",
    )
    args = parser.parse_args()
    if args.duration <= 0 or args.connections < 1 or args.threads < 1 or args.warmup < 0:
        parser.error("--duration and --connections, --threads must be positive, --warmup not negative")
    if args.load_generator == "auto":
        args.load_generator = "wrk" if shutil.which("wrk") else "python"
    return args


def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="studio9-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        targets = [start_bare(stack, workdir), start_studio9(stack, workdir)]
        for target in targets:
            check_answer(target)
            if args.warmup:
                measure(target, args, args.warmup, workdir)
        results = {t.name: measure(t, args, args.duration, workdir) for t in targets}
    print(f"load_generator={args.load_generator} connections={args.connections} duration_s={args.duration}")
    for name, result in results.items():
        print(result.line(name))
    ratio = results["studio9_auth_me"].rps / results["bare_litestar"].rps
    print(f"ratio_rps={ratio:.3f}  (aim: >= {AIM_RATIO}; {'met' if ratio >= AIM_RATIO else 'NOT met'})")
    return 1 if any(r.errors for r in results.values()) else 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped on SIGTERM too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
