"""taskiq adapter (taskiq + taskiq-redis): a broker with its tasks for ``taskiq worker``.

Broker: ``RedisStreamBroker`` (consumer group + XACK: at-least-once, the closest match to the
other systems) with ``RedisAsyncResultBackend``, as in taskiq-redis's README. With
BENCH_TASKIQ_BROKER=list (system ``taskiq_list``) it is ``ListQueueBroker`` (BRPOP, no ack).

Worker: ``taskiq worker taskiq_bench:broker --workers 1 [--max-async-tasks C]``. taskiq's CLI
defaults to 2 worker processes; ``--workers 1`` gives the one worker process the benchmark
compares (plus taskiq's supervising parent process, included in the RSS figure).
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench_common import REDIS_URL, bin_path, count_job, sleep_job, stamp_job
from bench_common import Adapter as BaseAdapter
from taskiq.cli.worker.args import WorkerArgs
from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend, RedisStreamBroker

BROKER = os.environ.get("BENCH_TASKIQ_BROKER", "stream")
_broker_cls = ListQueueBroker if BROKER == "list" else RedisStreamBroker
broker = _broker_cls(REDIS_URL).with_result_backend(RedisAsyncResultBackend(REDIS_URL))


@broker.task
async def noop() -> None:
    await count_job(time.time())


@broker.task
async def sleeper() -> None:
    await sleep_job(time.time())


@broker.task
async def stamp(i: int) -> None:
    await stamp_job(i, time.time())


@broker.task
async def echo(value: Any) -> Any:
    return value


KINDS = {"noop": noop, "sleep": sleeper, "stamp": stamp}


class Adapter(BaseAdapter):
    name = "taskiq" if BROKER != "list" else "taskiq_list"
    default_concurrency = WorkerArgs.max_async_tasks  # per worker process
    batch_na = "no batch API: .kiq() sends one message per call (one XADD/LPUSH each)"
    result_api = "await (await task.kiq(...)).wait_result() — polls every 0.2 s by default"
    burst_na = "no burst mode: `taskiq worker` runs until it is stopped"

    async def open(self, url: str) -> None:
        await broker.startup()  # client side too: creates the stream's consumer group

    async def close(self) -> None:
        await broker.shutdown()

    async def enqueue(self, kind: str, *args: Any) -> None:
        await KINDS[kind].kiq(*args)

    async def round_trip(self, i: int) -> Any:
        task = await echo.kiq(i)
        result = await task.wait_result(timeout=30)
        return result.return_value

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        cmd = [bin_path("taskiq"), "worker", "taskiq_bench:broker", "--workers", "1"]
        return cmd + (["--max-async-tasks", str(concurrency)] if concurrency else [])


if __name__ == "__main__":
    from scenarios import main

    main("taskiq_bench")
