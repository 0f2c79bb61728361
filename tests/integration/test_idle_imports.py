"""An idle Studio9 has not imported the heavy libraries: they load with the job that needs them.

pyarrow and numpy alone were about 90 MB of an idle ``studio9 serve``'s 200 MB, for job types
that may never run (``benchmarks/idle_memory.py`` measures it). What ``serve`` does is done in a
fresh interpreter — migrate the embedded defaults, build the app, run its lifespan start-up
(backends, worker threads, supervisor, indexer), answer ``/health`` and run a ``system.noop``
job — and then its ``sys.modules`` is read. A ``data.profile`` job then brings pyarrow in,
which shows that the check sees an import when there is one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imported only where used (docs/decisions.md); the last three are not dependencies yet.
HEAVY = ("pyarrow", "numpy", "pandas", "sklearn", "skops", "scipy", "duckdb")

_SERVE_THEN_REPORT = r"""
import asyncio, json, sys, time
from pathlib import Path

from litestar.testing import AsyncTestClient

from studio9.api.app import create_app
from studio9.bootstrap import migrate
from studio9.config.settings import Settings

HEAVY = json.loads(sys.argv[2])


async def finished(client, headers, body):
    job = (await client.post("/api/v1/jobs", json=body, headers=headers)).json()
    for _ in range(600):
        job = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job["status"]
        await asyncio.sleep(0.05)
    return job["status"]


async def main():
    settings = Settings.from_env({"STUDIO9_DATA_DIR": sys.argv[1], "STUDIO9_LOG_LEVEL": "warning"})
    migrate(settings)
    report = {}
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as client:
        report["health"] = (await client.get("/health")).status_code
        token = (settings.data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        report["noop"] = await finished(client, headers, {"type": "system.noop", "params": {}})
        report["idle"] = [name for name in HEAVY if name in sys.modules]
        upload = await client.post("/api/v1/files?name=t.csv", content=b"a,b\n1,x\n2,y\n", headers=headers)
        body = {"type": "data.profile", "params": {"file": upload.json()["id"]}}
        report["profile"] = await finished(client, headers, body)
        report["after_profile"] = [name for name in HEAVY if name in sys.modules]
    print(json.dumps(report))


asyncio.run(main())
"""


def test_idle_server_has_not_imported_heavy_libraries(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
    done = subprocess.run(
        [sys.executable, "-c", _SERVE_THEN_REPORT, str(tmp_path / "data"), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,  # a hang fails the test instead of the suite; not a timing check
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["health"], report["noop"], report["profile"]) == (200, "completed", "completed")
    assert report["idle"] == []
    assert "pyarrow" in report["after_profile"]
