"""Following a job on the terminal: a progress bar that moves between heartbeats, and the end.

A running job's progress is stored by its worker's heartbeat, every
``STUDIO9_HEARTBEAT_INTERVAL`` seconds; in between the stored value is old news. The bar
advances it at the pace the job's ETA implies (``estimate``), never beyond the value the
next heartbeat could plausibly bring, never backwards, and never to 100 % before the job
has ended. On a terminal it is redrawn a few times a second; elsewhere (a log file, CI) a
line is written only when the stored state changes.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import attrs

TERMINAL = frozenset({"completed", "failed", "cancelled"})

#: A running job never shows 100 %: only its end does.
CEILING = 0.999
#: Seconds between two polls of the job's status, and between two redraws on a terminal.
POLL_SECONDS = 0.5
DRAW_SECONDS = 0.2
BAR_WIDTH = 30


def estimate(
    progress: float, reported_at: float, eta_seconds: float | None, now: float, *, horizon: float
) -> float:
    """The fraction of a running job to show at ``now``.

    Args:
        progress: the last stored progress (0..1).
        reported_at: when it was stored, on the same clock as ``now`` (seconds).
        eta_seconds: the seconds left as of ``reported_at``, if the job said (or they were inferred).
        now: the time to estimate for.
        horizon: seconds after ``reported_at`` when the next heartbeat is due. The estimate stops
            there, so a late heartbeat or a job that slowed down stalls the bar instead of letting
            it run ahead of the truth it will have to come back to.
    """
    stored = min(max(progress, 0.0), 1.0)
    if eta_seconds is None or not math.isfinite(eta_seconds) or eta_seconds < 0:
        return min(stored, CEILING)
    elapsed = min(max(now - reported_at, 0.0), max(horizon, 0.0))
    done = 1.0 if eta_seconds == 0 else min(elapsed / eta_seconds, 1.0)
    return min(stored + (1.0 - stored) * done, CEILING)


@attrs.define
class Tracker:
    """What the watcher knows of one job: the last stored state, and what it has shown."""

    #: Seconds between heartbeats: assumed until two have been seen, then measured.
    interval: float
    measured: bool = False
    status: str = "submitted"
    attempt: int = 0
    progress: float = 0.0
    eta_seconds: float | None = None
    message: str | None = None
    #: When the stored progress was written, on this machine's clock (``time.time()``).
    reported_at: float = 0.0
    #: The server's timestamp of the last heartbeat seen, and (time, progress) of the one before.
    heartbeat_at: datetime | None = None
    previous: tuple[datetime, float] | None = None
    shown: float = 0.0

    def update(self, status: dict[str, Any], seen_at: float) -> None:
        """Take in one answer of ``GET /jobs/{id}/status``, received at ``seen_at``."""
        if self.attempt and status["attempt"] != self.attempt:
            # A retry starts from scratch: going backwards is then the truth.
            self.shown, self.previous, self.heartbeat_at = 0.0, None, None
        heartbeat = _parse_time(status.get("last_heartbeat_at"))
        if heartbeat is not None and heartbeat != self.heartbeat_at:
            if self.heartbeat_at is not None and heartbeat > self.heartbeat_at:
                # The smallest gap seen: a poll that missed a heartbeat sees twice the interval.
                gap = (heartbeat - self.heartbeat_at).total_seconds()
                self.interval = min(self.interval, gap) if self.measured else gap
                self.measured = True
                self.previous = (self.heartbeat_at, self.progress)
            self.heartbeat_at = heartbeat
            # The server's clock when it agrees with ours (same host, NTP); else when we saw it,
            # which lags by at most one poll and can only make the bar slower, never ahead.
            age = seen_at - heartbeat.timestamp()
            self.reported_at = heartbeat.timestamp() if 0 <= age <= self.interval else seen_at
        self.status, self.attempt = status["status"], status["attempt"]
        self.message = status.get("message")
        self.progress = min(max(float(status.get("progress") or 0.0), 0.0), 1.0)
        self.eta_seconds = self._eta(status.get("eta_seconds"), heartbeat)

    def _eta(self, reported: Any, heartbeat: datetime | None) -> float | None:
        if isinstance(reported, int | float):
            return float(reported)
        if self.previous is None or heartbeat is None:
            return None
        # No ETA from the job: infer one from its pace between the last two heartbeats.
        then, progress = self.previous
        rate = (self.progress - progress) / max((heartbeat - then).total_seconds(), 1e-9)
        return (1.0 - self.progress) / rate if rate > 0 else None

    def fraction(self, now: float) -> float:
        """The fraction to draw now: the estimate, held where it was rather than going back."""
        if self.status == "completed":
            self.shown = 1.0
        elif self.status == "running":
            guess = estimate(self.progress, self.reported_at, self.eta_seconds, now, horizon=self.interval)
            self.shown = max(self.shown, guess)
        else:
            self.shown = max(self.shown, min(self.progress, CEILING))
        return self.shown

    def eta_left(self, now: float) -> float | None:
        """Seconds left as of ``now``: the stored ETA, counted down since it was stored."""
        if self.eta_seconds is None or self.status != "running":
            return None
        return max(self.eta_seconds - max(now - self.reported_at, 0.0), 0.0)

    def news(self) -> tuple[object, ...]:
        """What a log line reports; a new line is written only when this changes."""
        return (self.status, self.attempt, round(self.progress * 100), self.message)


def bar_line(tracker: Tracker, now: float, width: int) -> str:
    """The terminal's one line: bar, percentage, status, ETA and message, cut to ``width``."""
    fraction = tracker.fraction(now)
    filled = int(fraction * BAR_WIDTH)
    text = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {_percent(fraction)} {tracker.status}"
    return _cut(text + _details(tracker, now), width)


def state_line(tracker: Tracker, now: float) -> str:
    """A line for a log (not a terminal): the stored state, without estimates."""
    percent = f" {tracker.progress * 100:.0f}%" if tracker.status == "running" else ""
    attempt = f" (attempt {tracker.attempt})" if tracker.attempt > 1 else ""
    return f"{tracker.status}{attempt}{percent}{_details(tracker, now)}"


def _details(tracker: Tracker, now: float) -> str:
    eta = tracker.eta_left(now)
    text = f"  eta {format_seconds(eta)}" if eta is not None else ""
    return text + (f"  {tracker.message}" if tracker.message else "")


def _percent(fraction: float) -> str:
    # Rounded down, so that 99.95 % of a running job does not print as 100.0 %.
    return f"{math.floor(fraction * 1000) / 10:5.1f}%"


def _cut(text: str, width: int) -> str:
    # A line longer than the terminal wraps, and "\r" then redraws only its last part.
    text = " ".join(text.split("\n"))
    return text if len(text) < width else text[: max(width - 4, 1)] + "..."


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _columns(out: TextIO) -> int:
    # The width of the terminal the bar is drawn on (stdout may be a pipe: `… --watch | jq`).
    try:
        return os.get_terminal_size(out.fileno()).columns or shutil.get_terminal_size().columns
    except (OSError, ValueError):
        return shutil.get_terminal_size().columns


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def final_line(job: dict[str, Any]) -> str:
    """How the job ended, in one line: ``completed in 12.3 s``, ``failed: code: message``, ``cancelled``."""
    status = job["status"]
    if status == "completed":
        started, ended = _parse_time(job.get("started_at")), _parse_time(job.get("completed_at"))
        if started is None or ended is None:
            return "completed"
        return f"completed in {(ended - started).total_seconds():.1f} s"
    error = job.get("error")
    if status == "failed" and error:
        return " ".join(f"failed: {error['code']}: {error['message']}".split())
    return str(status)


def follow(
    fetch_status: Callable[[], dict[str, Any]],
    *,
    interval: float,
    stream: TextIO | None = None,
    poll: float = POLL_SECONDS,
) -> dict[str, Any]:
    """Show the job's progress on ``stream`` until it ends; return its last status.

    Args:
        fetch_status: one answer of ``GET /jobs/{id}/status``.
        interval: the heartbeat interval to assume until two heartbeats have been seen.
        stream: standard error by default; a terminal gets a bar, anything else lines.
        poll: seconds between two calls of ``fetch_status``.

    ``KeyboardInterrupt`` propagates, after the bar's line is ended.
    """
    out = stream or sys.stderr
    tty = out.isatty()
    tracker = Tracker(interval=interval)
    drawn, next_poll = False, 0.0
    news: tuple[object, ...] | None = None
    status: dict[str, Any] = {}
    try:
        while True:
            now = time.time()
            if now >= next_poll:
                status = fetch_status()
                tracker.update(status, time.time())
                next_poll = now + poll
            if tty:
                out.write("\r" + bar_line(tracker, time.time(), _columns(out)) + "\033[K")
                out.flush()
                drawn = True
            elif tracker.news() != news and tracker.status not in TERMINAL:
                out.write(state_line(tracker, now) + "\n")
                out.flush()
                news = tracker.news()
            if status.get("status") in TERMINAL:
                return status
            time.sleep(min(DRAW_SECONDS, poll) if tty else poll)
    finally:
        if drawn:
            out.write("\n")
            out.flush()
