"""The README's embedding example runs as a plain script, with no server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.processes import studio9_env

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embedded_job.py"


def test_embedded_example_runs_a_custom_job_type(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        env=studio9_env(tmp_path / "data"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "completed {'square': 49.0}"
    assert (tmp_path / "data" / "studio9.db").exists()
