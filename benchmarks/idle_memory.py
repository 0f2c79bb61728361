"""Idle memory: the resident set of an idle ``studio9 serve`` against a bare Litestar app.

Three processes, one after the other in the same run, each started, left idle for ``--idle``
seconds, measured from ``/proc/<pid>/status`` and stopped:

* ``bare_python``: ``python -c`` sleeping; what any Python process costs on this machine.
* ``bare_litestar``: a one-route Litestar app served by uvicorn the way ``studio9 serve``
  serves Studio9 (same ``uvicorn.Config`` options, uvloop and httptools when installed).
* ``studio9_serve``: ``python -m studio9 serve`` on a free loopback port and a fresh temporary
  data dir, every other setting at its embedded default (SQLite, file blobs, ``memory://``
  broker, in-process worker threads; any ``STUDIO9_*`` variable in your environment is
  ignored). Measured once ``/health`` answers 200.

Per process: ``rss_mb`` (``VmRSS``), split into ``anon_mb`` (``RssAnon``: the heap, the
interpreter's objects) and ``file_mb`` (``RssFile``: mapped code, shared libraries included),
and ``peak_mb`` (``VmHWM``: start-up included). For Studio9 also whether Arrow's and numpy's
shared libraries are mapped (``/proc/<pid>/maps``): they should not be until a job needs them.
Then ``ratio_rss`` (Studio9 / bare Litestar) and the aim (<= 150 MB). Everything has an
overall ``--deadline``; servers are stopped and temporary directories removed whatever
happens. Run from the repository root:

    .venv/bin/python benchmarks/idle_memory.py [--idle 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

# Run as a script: its directory is on the path.
from children import HOST, check_alive, child, free_port, wait_ready
from deadline import BenchTimeout, Deadline

AIM_RSS_MB = 150.0
# Shared libraries whose mapping says the library was imported: Arrow's C++ core and numpy's.
HEAVY_LIBRARIES = {"libarrow": "libarrow.so", "numpy": "_multiarray_umath"}

SERVE_FLAGS = ("--host", "{host}", "--port", "{port}")  # filled in by measure()
BARE_PYTHON = "import time; time.sleep(3600)"
# The same server options as studio9.cli._serve_http, around one route.
BARE_LITESTAR = textwrap.dedent(
    """
    import sys
    import uvicorn
    from litestar import Litestar, get

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app = Litestar(route_handlers=[health], logging_config=None, debug=False)
    config = uvicorn.Config(app, host=sys.argv[1], port=int(sys.argv[2]), log_config=None,
                            access_log=False, lifespan="on", server_header=False)
    uvicorn.Server(config).run()
    """
)


@dataclass(frozen=True)
class Figure:
    rss_mb: float
    anon_mb: float
    file_mb: float
    peak_mb: float
    mapped: dict[str, bool]

    def line(self, name: str) -> str:
        text = (
            f"{name:<14} rss_mb={self.rss_mb:.1f} anon_mb={self.anon_mb:.1f}"
            f" file_mb={self.file_mb:.1f} peak_mb={self.peak_mb:.1f}"
        )
        return text + "".join(f" {lib}={'yes' if on else 'no'}" for lib, on in self.mapped.items())


def read_memory(pid: int, *, libraries: bool) -> Figure:
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "RssAnon", "RssFile", "VmHWM"}:
            fields[key] = int(value.split()[0]) / 1024  # kB -> MB
    mapped: dict[str, bool] = {}
    if libraries:
        maps = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8")
        mapped = {name: marker in maps for name, marker in HEAVY_LIBRARIES.items()}
    return Figure(fields["VmRSS"], fields["RssAnon"], fields["RssFile"], fields["VmHWM"], mapped)


def idle(proc: subprocess.Popen[bytes], log_path: Path, seconds: float, deadline: Deadline) -> None:
    time.sleep(min(seconds, deadline.left("idling")))
    deadline.left("idling")  # a sleep cut short by the deadline measures nothing
    check_alive(proc, log_path)


def measure(
    name: str, cmd: list[str], env: dict[str, str], args: argparse.Namespace, work: Path, deadline: Deadline
) -> Figure:
    """Start ``cmd``, wait until it answers ``/health`` (servers), idle, read its memory."""
    log_path, port = work / f"{name}.log", free_port()
    cmd = [{"{host}": HOST, "{port}": str(port)}.get(part, part) for part in cmd]
    with child(cmd, env, log_path) as proc:
        if name != "bare_python":
            wait_ready(f"http://{HOST}:{port}/health", proc, log_path, deadline)
        idle(proc, log_path, args.idle, deadline)
        return read_memory(proc.pid, libraries=name == "studio9_serve")


def clean_env(data_dir: Path) -> dict[str, str]:
    """This process's environment without any STUDIO9_* setting, plus a fresh data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    env["STUDIO9_DATA_DIR"] = str(data_dir)
    return env


def report(results: dict[str, Figure]) -> None:
    for name, figure in results.items():
        print(figure.line(name), flush=True)
    studio9, bare = results.get("studio9_serve"), results.get("bare_litestar")
    if studio9 is not None and bare is not None:
        print(f"ratio_rss={studio9.rss_mb / bare.rss_mb:.2f}  (studio9_serve / bare_litestar)")
    if studio9 is not None:
        met = "met" if studio9.rss_mb <= AIM_RSS_MB else "NOT met"
        print(f"aim: studio9_serve rss_mb <= {AIM_RSS_MB:g} {met} ({studio9.rss_mb:.1f})")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds idle before measuring (default 5)")
    parser.add_argument("--deadline", type=float, default=180.0, help="overall limit in seconds (180)")
    args = parser.parse_args()
    if args.idle < 0 or args.deadline <= 0:
        parser.error("--idle must not be negative and --deadline must be positive")
    return args


def run(args: argparse.Namespace) -> int:
    deadline = Deadline(time.monotonic() + args.deadline)
    print(f"idle_s={args.idle:g} cpus={os.cpu_count()} python={sys.version.split()[0]}", flush=True)
    results: dict[str, Figure] = {}
    with tempfile.TemporaryDirectory(prefix="studio9-idle-bench-") as tmp:
        work = Path(tmp)
        env = clean_env(work / "data")
        targets = {
            "bare_python": [sys.executable, "-c", BARE_PYTHON],
            "bare_litestar": [sys.executable, "-c", BARE_LITESTAR, "{host}", "{port}"],
            "studio9_serve": [sys.executable, "-m", "studio9", "serve", *SERVE_FLAGS],
        }
        try:
            for name, cmd in targets.items():
                results[name] = measure(name, cmd, env, args, work, deadline)
        except (BenchTimeout, TimeoutError) as exc:
            report(results)
            print(f"idle_memory: gave up after --deadline {args.deadline:g}s: {exc}", file=sys.stderr)
            return 2
    report(results)
    return 0


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped on SIGTERM too
    return run(parse_args())


if __name__ == "__main__":
    sys.exit(main())
