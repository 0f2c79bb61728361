"""The training engine's own errors; no heavy imports, so callers can catch them cheaply."""

from __future__ import annotations

__all__ = ["Cancelled"]


class Cancelled(Exception):
    """``should_stop()`` answered true between two fits: the run stopped and produced nothing."""
