"""Figures of ``jobs_cloud.py``: the overall deadline, one figure per target, and the report.

Apart from the targets themselves so that each module stays one thing: this one measures and
prints, ``jobs_cloud.py`` starts backends and processes and drives jobs through them.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

AIM_RATIO, AIM_JPS, AIM_P50_MS, CELERY_JPS = 0.3, 900.0, 5.0, 484.0
AIM = {True: "met", False: "NOT met"}


@dataclass
class Figure:
    name: str
    jobs_per_s: float = 0.0
    #: CPU milliseconds per job during the throughput run, by who spent them (``CpuMeter``).
    cpu_ms: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)  # seconds, as the client saw them
    stored: list[float] = field(default_factory=list)  # seconds, submitted_at -> completed_at
    to_start: list[float] = field(default_factory=list)  # seconds, submitted_at -> started_at
    failed: int = 0

    def line(self) -> str:
        text = f"{self.name:<29} jobs_per_s={self.jobs_per_s:.1f} " + ms("p", self.latencies)
        if self.stored:
            text += " " + ms("stored_p", self.stored) + f" to_start_p50_ms={pct_ms(self.to_start, 0.5):.2f}"
        split = " ".join(f"{who}={spent:.2f}" for who, spent in self.cpu_ms.items())
        total = sum(self.cpu_ms.values()) if self.cpu_ms else float("nan")
        return text + f" cpu_ms={total:.2f} ({split}) failed={self.failed}"


def pct_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [float("nan")]
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def ms(prefix: str, values: list[float]) -> str:
    return f"{prefix}50_ms={pct_ms(values, 0.5):.2f} {prefix}99_ms={pct_ms(values, 0.99):.2f}"


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
SERVERS = {"postgres": "postgres", "beam.smp": "rabbitmq"}


class CpuMeter:
    """CPU seconds (user + system, from Linux ``/proc``) between ``start`` and ``stop`` of this
    process (``client``), of ``workers``, and of every PostgreSQL and RabbitMQ process (backends
    that connected meanwhile included; one that exited meanwhile is lost)."""

    def __init__(self, workers: list[int]) -> None:
        self._workers = workers

    def start(self) -> None:
        self._before = self._read()

    def stop(self, jobs: int) -> dict[str, float]:
        """Milliseconds per job, by who spent them."""
        after = self._read()
        spent = {who: 0.0 for who in ("client", "workers", *SERVERS.values())}
        for (who, pid), ticks in after.items():
            spent[who] += ticks - self._before.get((who, pid), 0)
        return {who: ticks * 1000 / _HZ / jobs for who, ticks in spent.items()}

    def _read(self) -> dict[tuple[str, int], float]:
        ticks: dict[tuple[str, int], float] = {("client", 0): time.process_time() * _HZ}
        for pid in self._workers:
            ticks["workers", pid] = _ticks(pid) or 0
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    if (who := SERVERS.get((proc / "comm").read_text().strip())) is not None:
                        ticks[who, int(proc.name)] = _ticks(int(proc.name)) or 0
        return ticks


_HZ = os.sysconf("SC_CLK_TCK")


def _ticks(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]) + int(fields[12])
