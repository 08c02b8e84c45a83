"""streaq adapter: a ``Worker`` with its tasks for ``streaq run``, and the client side.

Worker: ``streaq run streaq_bench:worker`` (one process; the CLI has no concurrency flag: the
Worker takes BENCH_CONCURRENCY when the harness sets it, else streaq's default of 16). streaq
talks to Redis through coredis; the tasks' counter uses redis-py like every other adapter.
"""

from __future__ import annotations

import inspect
import time
from contextlib import AsyncExitStack
from typing import Any

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
from streaq import Worker

DEFAULT_CONCURRENCY = int(inspect.signature(Worker).parameters["concurrency"].default)
worker = Worker(redis_url=REDIS_URL, concurrency=CONCURRENCY or DEFAULT_CONCURRENCY)


@worker.task()
async def noop() -> None:
    await count_job(time.time())


@worker.task()
async def sleeper() -> None:
    await sleep_job(time.time())


@worker.task()
async def stamp(i: int) -> None:
    await stamp_job(i, time.time())


@worker.task()
async def echo(value: Any) -> Any:
    return value


KINDS = {"noop": noop, "sleep": sleeper, "stamp": stamp}


class Adapter(BaseAdapter):
    name = "streaq"
    default_concurrency = DEFAULT_CONCURRENCY
    batch_api = "Worker.enqueue_many (one pipeline per chunk)"
    result_api = "await (await task.enqueue(...)).result() (pub/sub)"
    burst_args = ("--burst",)

    async def open(self, url: str) -> None:
        # the module-level worker was built with BENCH_REDIS_URL = url (bench_common.main)
        self.stack = AsyncExitStack()
        await self.stack.enter_async_context(worker)

    async def close(self) -> None:
        await self.stack.aclose()

    async def enqueue(self, kind: str, *args: Any) -> None:
        await KINDS[kind].enqueue(*args)

    async def enqueue_batch(self, kind: str, count: int) -> None:
        fn = KINDS[kind]
        await worker.enqueue_many([fn.enqueue() for _ in range(count)])

    async def round_trip(self, i: int) -> Any:
        task = await echo.enqueue(i)
        return (await task.result(timeout=30)).result

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        return [bin_path("streaq"), "run", "streaq_bench:worker"]


if __name__ == "__main__":
    from scenarios import main

    main("streaq_bench")
