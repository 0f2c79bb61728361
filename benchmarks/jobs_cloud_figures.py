"""Figures of ``jobs_cloud.py``: the overall deadline, one figure per target, and the report.

Apart from the targets themselves so that each module stays one thing: this one measures and
prints, ``jobs_cloud.py`` starts backends and processes and drives jobs through them.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

AIM_RATIO, AIM_JPS, AIM_P50_MS, CELERY_JPS = 0.3, 900.0, 5.0, 484.0
AIM = {True: "met", False: "NOT met"}


class BenchTimeout(Exception):
    """The overall deadline passed."""


@dataclass(frozen=True)
class Deadline:
    end: float

    def left(self, what: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchTimeout(f"overall deadline passed while {what}")
        return left


@dataclass
class Figure:
    name: str
    jobs_per_s: float = 0.0
    cpu_ms: float = float("nan")  # CPU of this process + the workers per job, during throughput
    backend_cpu_ms: float = float("nan")  # CPU of PostgreSQL's and RabbitMQ's processes per job, meanwhile
    latencies: list[float] = field(default_factory=list)  # seconds, as the client saw them
    stored: list[float] = field(default_factory=list)  # seconds, submitted_at -> completed_at
    to_start: list[float] = field(default_factory=list)  # seconds, submitted_at -> started_at
    failed: int = 0

    def line(self) -> str:
        text = f"{self.name:<29} jobs_per_s={self.jobs_per_s:.1f} " + ms("p", self.latencies)
        if self.stored:
            text += " " + ms("stored_p", self.stored) + f" to_start_p50_ms={pct_ms(self.to_start, 0.5):.2f}"
        return (
            text + f" cpu_ms={self.cpu_ms:.2f} backend_cpu_ms={self.backend_cpu_ms:.2f} failed={self.failed}"
        )


def pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def ms(prefix: str, values: list[float]) -> str:
    return f"{prefix}50_ms={pct_ms(values, 0.5):.2f} {prefix}99_ms={pct_ms(values, 0.99):.2f}"


def cpu_s(pids: list[int]) -> float:
    """CPU seconds (user + system) of this process and of ``pids`` (Linux ``/proc``; NaN elsewhere)."""
    total = time.process_time()
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def report(figures: list[Figure]) -> None:
    for figure in figures:
        print(figure.line(), flush=True)
    bare_jps = next((f.jobs_per_s for f in figures if f.name.startswith("bare")), None)
    if not (ours := [f for f in figures if f.name.startswith("studio9")]):
        return
    best = max(ours, key=lambda f: f.jobs_per_s)
    if bare_jps:
        ratio = best.jobs_per_s / bare_jps
        print(f"ratio={ratio:.3f}  ({best.name} / bare_dramatiq_rabbitmq, jobs_per_s)")
        print(f"aim: ratio >= {AIM_RATIO:g} {AIM[ratio >= AIM_RATIO]}", end="; ")
    print(
        f"jobs_per_s >= {AIM_JPS:g} {AIM[best.jobs_per_s >= AIM_JPS]}; p50_ms <= {AIM_P50_MS:g}"
        f" {AIM[pct_ms(best.latencies, 0.5) <= AIM_P50_MS]}  (Celery on RabbitMQ + PostgreSQL:"
        f" {CELERY_JPS:g} jobs/s here; best Studio9 x{best.jobs_per_s / CELERY_JPS:.2f})"
    )


#: The local servers' process names (``/proc/<pid>/comm``): PostgreSQL's backends, RabbitMQ's VM.
BACKEND_PROCESSES = ("postgres", "beam.smp")


class BackendCpu:
    """CPU seconds of every PostgreSQL and RabbitMQ process between ``start`` and ``stop``,
    including backends that connected meanwhile; a backend that exits meanwhile is lost."""

    def start(self) -> None:
        self._before = _backend_ticks()

    def stop(self) -> float:
        after = _backend_ticks()
        ticks = sum(t - self._before.get(pid, 0) for pid, t in after.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def _backend_ticks() -> dict[int, int]:
    ticks: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() not in BACKEND_PROCESSES:
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(proc.name)] = int(fields[11]) + int(fields[12])
    return ticks
