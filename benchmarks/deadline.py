"""The overall time limit every benchmark takes (``--deadline``), shared by the scripts here.

Run as scripts (``python benchmarks/<name>.py``), they import it by module name: their
directory is on the path.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class BenchTimeout(Exception):
    """The overall deadline passed."""


@dataclass(frozen=True)
class Deadline:
    end: float  # time.monotonic()

    def left(self, what: str) -> float:
        """Seconds left; raises BenchTimeout, naming ``what`` was going on, when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise BenchTimeout(f"overall deadline passed while {what}")
        return left
