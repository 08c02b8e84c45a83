"""arq adapter: WorkerSettings class for the ``arq`` CLI, and the client side (``create_pool``).

Worker: ``arq arq_bench.WorkerSettings`` (arq's CLI has no concurrency flag: ``max_jobs`` comes
from BENCH_CONCURRENCY when the harness sets it, else arq's default of 10).
"""

from __future__ import annotations

import inspect
import time
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker
from bench_common import (
    CONCURRENCY,
    REDIS_URL,
    bin_path,
    count_job,
    sleep_job,
    stamp_job,
)
from bench_common import (
    Adapter as BaseAdapter,
)


async def noop(ctx: dict[str, Any]) -> None:
    await count_job(time.time())


async def sleeper(ctx: dict[str, Any]) -> None:
    await sleep_job(time.time())


async def stamp(ctx: dict[str, Any], i: int) -> None:
    await stamp_job(i, time.time())


async def echo(ctx: dict[str, Any], value: Any) -> Any:
    return value


class WorkerSettings:
    functions = [noop, sleeper, stamp, echo]
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
    if CONCURRENCY:
        max_jobs = CONCURRENCY


KINDS = {"noop": "noop", "sleep": "sleeper", "stamp": "stamp"}


class Adapter(BaseAdapter):
    name = "arq"
    default_concurrency = int(inspect.signature(Worker).parameters["max_jobs"].default)
    batch_na = "no batch API: ArqRedis.enqueue_job only (one WATCH/MULTI transaction per job)"
    result_api = "await (await pool.enqueue_job(...)).result() — polls every 0.5 s by default"
    burst_args = ("--burst",)

    async def open(self, url: str) -> None:
        self.pool = await create_pool(RedisSettings.from_dsn(url))

    async def close(self) -> None:
        await self.pool.aclose()

    async def enqueue(self, kind: str, *args: Any) -> None:
        await self.pool.enqueue_job(KINDS[kind], *args)

    async def round_trip(self, i: int) -> Any:
        job = await self.pool.enqueue_job("echo", i)
        return await job.result(timeout=30)

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        return [bin_path("arq"), "arq_bench.WorkerSettings"]


if __name__ == "__main__":
    from scenarios import main

    main("arq_bench")
