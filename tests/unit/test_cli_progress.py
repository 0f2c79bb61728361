"""The watch's progress bar: the estimate between heartbeats, what it shows, how it ends."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from studio9.cli_progress import CEILING, Tracker, bar_line, estimate, final_line, follow

T0 = 1_000_000.0


def test_the_estimate_advances_at_the_pace_the_eta_implies() -> None:
    # 20 % done, 8 s to go: 2 s later, a quarter of the rest is done.
    assert estimate(0.2, T0, 8.0, T0 + 2.0, horizon=5.0) == pytest.approx(0.4)


def test_the_estimate_stops_where_the_next_heartbeat_is_due() -> None:
    at_horizon = estimate(0.2, T0, 8.0, T0 + 5.0, horizon=5.0)
    assert at_horizon == pytest.approx(0.7)
    # A late heartbeat stalls the bar there instead of letting it run on.
    assert estimate(0.2, T0, 8.0, T0 + 30.0, horizon=5.0) == at_horizon


def test_the_estimate_never_shows_a_running_job_done() -> None:
    assert estimate(0.9, T0, 1.0, T0 + 5.0, horizon=5.0) == CEILING < 1.0
    assert estimate(1.0, T0, None, T0 + 5.0, horizon=5.0) == CEILING
    assert estimate(0.5, T0, 0.0, T0 + 1.0, horizon=5.0) == CEILING


@pytest.mark.parametrize("eta", [None, float("nan"), -1.0])
def test_without_a_usable_eta_the_stored_progress_is_shown(eta: float | None) -> None:
    assert estimate(0.3, T0, eta, T0 + 4.0, horizon=5.0) == 0.3


def test_a_heartbeat_stamped_after_now_is_not_extrapolated() -> None:
    assert estimate(0.3, T0, 10.0, T0 - 2.0, horizon=5.0) == 0.3


def _status(progress: float, at: float, eta: float | None = None, **more: Any) -> dict[str, Any]:
    return {
        "status": "running",
        "attempt": 1,
        "progress": progress,
        "eta_seconds": eta,
        "message": None,
        "last_heartbeat_at": datetime.fromtimestamp(at, UTC).isoformat(),
        **more,
    }


def test_the_bar_never_goes_back_when_a_heartbeat_is_behind_the_estimate() -> None:
    tracker = Tracker(interval=5.0)
    tracker.update(_status(0.2, T0, eta=8.0), T0)
    ahead = tracker.fraction(T0 + 5.0)
    tracker.update(_status(0.5, T0 + 5.0, eta=5.0), T0 + 5.0)  # slower than the ETA promised
    assert tracker.fraction(T0 + 5.0) == ahead
    assert tracker.fraction(T0 + 6.0) == ahead  # 0.6 by the new heartbeat: held
    assert tracker.fraction(T0 + 8.0) == pytest.approx(0.8)


def test_a_retry_starts_the_bar_again() -> None:
    tracker = Tracker(interval=5.0)
    tracker.update(_status(0.8, T0), T0)
    assert tracker.fraction(T0) == 0.8
    tracker.update(_status(0.1, T0 + 9.0, attempt=2), T0 + 9.0)
    assert tracker.fraction(T0 + 9.0) == pytest.approx(0.1)


def test_without_an_eta_the_pace_of_two_heartbeats_gives_one() -> None:
    tracker = Tracker(interval=5.0)
    tracker.update(_status(0.1, T0), T0)
    tracker.update(_status(0.2, T0 + 2.0), T0 + 2.0)
    assert tracker.interval == 2.0
    assert tracker.eta_seconds == pytest.approx(16.0)
    assert tracker.fraction(T0 + 3.0) == pytest.approx(0.25)


def test_only_the_end_shows_100_percent() -> None:
    tracker = Tracker(interval=5.0)
    tracker.update(_status(1.0, T0, eta=0.0, message="writing"), T0)
    running = bar_line(tracker, T0 + 1.0, 120)
    assert "99.9% running" in running and "writing" in running
    tracker.update(_status(1.0, T0, status="completed"), T0 + 2.0)
    assert "100.0% completed" in bar_line(tracker, T0 + 2.0, 120)


def test_the_bar_shows_the_eta_and_message_and_fits_the_terminal() -> None:
    tracker = Tracker(interval=5.0)
    tracker.update(_status(0.25, T0, eta=90.0, message="reading rows " * 20), T0)
    line = bar_line(tracker, T0 + 1.0, 80)
    assert "eta 1m29s" in line and "reading rows" in line
    assert len(line) < 80 and line.endswith("...")


def test_the_final_line_says_how_the_job_ended() -> None:
    completed = {
        "status": "completed",
        "started_at": "2026-01-01T00:00:00Z",
        "completed_at": "2026-01-01T00:00:12.3Z",
    }
    assert final_line(completed) == "completed in 12.3 s"
    failed = {"status": "failed", "error": {"code": "not_found", "message": "file 'x'\nnot found"}}
    assert final_line(failed) == "failed: not_found: file 'x' not found"
    assert final_line({"status": "cancelled", "error": None}) == "cancelled"


def test_off_a_terminal_a_line_is_written_only_when_the_state_changes() -> None:
    answers = iter(
        [_status(0.0, T0, status="queued")] * 3
        + [_status(0.4, T0)] * 4
        + [_status(0.4, T0, message="almost")] * 2
        + [_status(1.0, T0, status="completed")]
    )
    stream = io.StringIO()
    last = follow(lambda: next(answers), interval=5.0, stream=stream, poll=0.0)
    assert last["status"] == "completed"
    assert stream.getvalue().splitlines() == ["queued", "running 40%", "running 40%  almost"]
