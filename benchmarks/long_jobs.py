#!/usr/bin/env python
"""What checkpoints cost, and how fast a cron added at run time reaches a running worker.

Usage::

    python benchmarks/long_jobs.py                    # 5,000 checkpoints, 30 cron changes
    python benchmarks/long_jobs.py --checkpoints 20000 --crons 50

- **checkpoint**: one job calls ``ctx.checkpoint({"page": i, "cursor": "..."})`` N times in a
  row. Reported: wall time per call (one round trip to a local Redis), Redis's CPU time per call
  (``INFO cpu``) and the Redis commands each call runs (``INFO commandstats``: the EVALSHA and
  the commands inside it).
- **cron pickup**: a worker runs; ``queue.add_cron`` then ``remove_cron`` a cron, N times.
  Reported: the time from calling ``add_cron`` (3 round trips of its own) to the worker logging
  that it loaded the cron (the change is published; the worker is woken, it does not poll).

One redis-server on a free loopback port, stopped by its PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from redis_process import RedisServer  # noqa: E402

from asyncjobs import Context, Queue, Worker, WorkerSettings, cron, task  # noqa: E402


async def redis_figures(queue: Queue) -> tuple[float, dict[str, int]]:
    """Redis's CPU seconds, and per command its calls (and ``<name>.usec``, its time)."""
    cpu = await queue.client.info("cpu")
    stats = await queue.client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    calls |= {k.removeprefix("cmdstat_") + ".usec": int(v["usec"]) for k, v in stats.items()}
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"]), calls


async def checkpoint_cost(url: str, n: int) -> None:
    timings: list[float] = []

    @task
    async def saves(ctx: Context, count: int) -> None:
        for page in range(count):
            started = time.perf_counter()
            await ctx.checkpoint({"page": page, "cursor": f"orders-after-{page * 500}"})
            timings.append(time.perf_counter() - started)

    async with Queue(url, name="bench-checkpoints") as queue:
        worker = Worker(
            WorkerSettings(redis_url=url, functions=[saves], queues=["bench-checkpoints"])
        )
        run = asyncio.create_task(worker.run(handle_signals=False))
        warm = await queue.enqueue(saves, 50)
        await warm.result(timeout=60)
        timings.clear()
        cpu_before, calls_before = await redis_figures(queue)
        job = await queue.enqueue(saves, n)
        await job.result(timeout=600)
        cpu_after, calls_after = await redis_figures(queue)
        worker.stop()
        await run
    # what the checkpoints ran, less what running one job costs (claim, ack, heartbeats...)
    per_call = {
        name: (calls_after.get(name, 0) - calls_before.get(name, 0)) / n
        for name in ("evalsha", "hget", "hset", "time", "zadd")
    }
    print(f"checkpoint: {n} calls")
    print(f"  wall per call: median {statistics.median(timings) * 1e6:.0f} us, "
          f"p99 {sorted(timings)[int(n * 0.99)] * 1e6:.0f} us, "
          f"{n / sum(timings):,.0f} calls/s from one task")  # fmt: skip
    script_usec = calls_after["evalsha.usec"] - calls_before["evalsha.usec"]
    scripts = calls_after["evalsha"] - calls_before["evalsha"]
    print(f"  Redis CPU per call: {(cpu_after - cpu_before) / n * 1e6:.1f} us (the process), "
          f"{script_usec / scripts:.1f} us (EVALSHA's own time, commandstats)")  # fmt: skip
    print("  Redis commands per call: " + ", ".join(f"{k} {v:.2f}" for k, v in per_call.items()))


class _Loaded(logging.Handler):
    """Notes when the worker logs "cron <name> (...) loaded from queue ...'s crontab"."""

    def __init__(self) -> None:
        super().__init__()
        self.at: dict[str, float] = {}
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if " loaded from queue " in record.getMessage() and record.args:
            self.at.setdefault(str(record.args[0]), time.perf_counter())  # type: ignore[index]
            self.event.set()


async def cron_pickup(url: str, n: int) -> None:
    @task
    async def report(ctx: Context) -> None: ...

    loaded = _Loaded()
    logging.getLogger("asyncjobs.cron").addHandler(loaded)
    logging.getLogger("asyncjobs.cron").setLevel(logging.INFO)
    async with Queue(url, name="bench-cron") as queue:
        worker = Worker(WorkerSettings(redis_url=url, functions=[report], queues=["bench-cron"]))
        run = asyncio.create_task(worker.run(handle_signals=False))
        await asyncio.sleep(1.0)  # the worker is up and subscribed
        latencies = []
        for i in range(n):
            name = f"report-{i}"
            added = time.perf_counter()
            await queue.add_cron(cron(report, "0 6 * * *", name=name))
            while name not in loaded.at:
                loaded.event.clear()
                await asyncio.wait_for(loaded.event.wait(), 10)
            latencies.append(loaded.at[name] - added)
            await queue.remove_cron(name)
        worker.stop()
        await run
    ms = sorted(x * 1000 for x in latencies)
    print(f"cron pickup: {n} run-time crons added to a running worker")
    print(f"  add_cron called -> worker loaded it: median {statistics.median(ms):.1f} ms, "
          f"max {ms[-1]:.1f} ms")  # fmt: skip


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", type=int, default=5000)
    parser.add_argument("--crons", type=int, default=30)
    args = parser.parse_args(argv)
    server = RedisServer().start()
    try:
        asyncio.run(checkpoint_cost(server.url, args.checkpoints))
        asyncio.run(cron_pickup(server.url, args.crons))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
