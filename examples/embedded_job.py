"""Run a job of your own through Studio9 from a plain Python script: no server needed.

python examples/embedded_job.py          # data goes to ./studio9-data (STUDIO9_DATA_DIR)
"""

from __future__ import annotations

import asyncio

import msgspec

from studio9.config import Settings
from studio9.embedded import open_studio9
from studio9.jobs.ports import JobContext, JobType


class SquareParams(msgspec.Struct):
    x: float


def square(ctx: JobContext, params: SquareParams) -> dict[str, float]:
    ctx.report(0.5, message="multiplying")
    return {"square": params.x * params.x}


async def main() -> None:
    async with open_studio9(Settings.from_env()) as s9:
        s9.register(JobType(name="demo.square", handler=square, params=SquareParams))
        job = await s9.submit("demo.square", {"x": 7})
        done = await s9.wait(job.id, timeout=30)
        print(done.status.value, done.result)


if __name__ == "__main__":
    asyncio.run(main())
