"""The edge install (no ``cloud`` extra) runs on its defaults: no cloud SDK is imported.

The dev install has every extra, so an import of psycopg or aiormq slipping onto the edge path
would pass every other test and break ``make serve`` on a fresh machine. Here the cloud
packages are made unimportable in a child interpreter, which then migrates, builds every
service on the default settings and runs a job through the HTTP API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLOUD_PACKAGES = ("psycopg", "psycopg_pool", "aiormq", "pamqp", "pika", "boto3", "aioboto3", "opensearchpy")

SCRIPT = """
import asyncio, importlib.abc, sys
from pathlib import Path

BLOCKED = set(sys.argv[2].split(","))

class NoCloud(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: edge install)", name=name)
        return None

sys.meta_path.insert(0, NoCloud())

from litestar.testing import AsyncTestClient
from studio9 import bootstrap
from studio9.api import create_app
from studio9.config import Settings

async def main() -> None:
    settings = Settings(data_dir=Path(sys.argv[1]))
    bootstrap.migrate(settings)
    async with AsyncTestClient(app=create_app(settings, run_workers=True)) as client:
        token = (settings.data_dir / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        job = (await client.post("/api/v1/jobs", json={"type": "system.noop"}, headers=headers)).json()
        for _ in range(200):
            job = (await client.get(f"/api/v1/jobs/{job['id']}", headers=headers)).json()
            if job["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "completed", job
    loaded = sorted(n for n in sys.modules if n.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("edge ok")

asyncio.run(main())
"""


def test_the_edge_defaults_run_without_any_cloud_package(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "data"), ",".join(CLOUD_PACKAGES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("STUDIO9_")}
        | {"STUDIO9_LOG_LEVEL": "warning"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "edge ok" in done.stdout
