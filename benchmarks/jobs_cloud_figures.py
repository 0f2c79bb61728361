"""Figures of ``jobs_cloud.py``: one figure per run of a target, CPU per job, and the report.

Apart from the targets themselves so that each module stays one thing: this one measures and
prints, ``jobs_cloud.py`` starts backends and processes and drives jobs through them.
"""

from __future__ import annotations

import contextlib
import math
import os
import statistics
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


def combined(name: str, runs: list[Figure]) -> Figure:
    """One figure for several runs of one target: the median throughput and CPU split, the
    latency samples of every run together, the failures of all."""
    figure = Figure(name, failed=sum(run.failed for run in runs))
    figure.jobs_per_s = statistics.median(run.jobs_per_s for run in runs)
    for run in runs:
        figure.latencies += run.latencies
        figure.stored += run.stored
        figure.to_start += run.to_start
    for who in runs[0].cpu_ms:
        figure.cpu_ms[who] = statistics.median(run.cpu_ms.get(who, math.nan) for run in runs)
    return figure


def report(pairs: list[tuple[Figure, Figure]]) -> None:
    """Print the figures of ``pairs`` (a bare run, then the Studio9 run it is the baseline of),
    and the ratios: per Studio9 target, the median over its rounds of its throughput against
    the bare run just before it, so that the drift of a shared machine between two runs far
    apart does not end up in the ratio."""
    if not pairs:
        return
    print(combined("bare_dramatiq_rabbitmq", [bare for bare, _ in pairs]).line(), flush=True)
    rounds: dict[str, list[tuple[Figure, Figure]]] = {}
    for bare, ours in pairs:
        rounds.setdefault(ours.name, []).append((bare, ours))
    ratios: dict[str, tuple[Figure, float]] = {}
    for name, runs in rounds.items():
        each = sorted(ours.jobs_per_s / bare.jobs_per_s for bare, ours in runs)
        ratios[name] = (combined(name, [ours for _, ours in runs]), statistics.median(each))
        spread = f" ({each[0]:.3f}-{each[-1]:.3f})" if len(each) > 1 else ""
        print(f"{ratios[name][0].line()} ratio={ratios[name][1]:.3f}{spread}", flush=True)
    best, ratio = max(ratios.values(), key=lambda found: found[1])
    count = len(rounds[best.name])
    print(
        f"ratio={ratio:.3f}  ({best.name} / bare_dramatiq_rabbitmq, jobs_per_s; median of {count}"
        " round(s), each against the bare run just before it)"
    )
    print(
        f"aim: ratio >= {AIM_RATIO:g} {AIM[ratio >= AIM_RATIO]}; jobs_per_s >= {AIM_JPS:g}"
        f" {AIM[best.jobs_per_s >= AIM_JPS]}; p50_ms <= {AIM_P50_MS:g}"
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
