#!/usr/bin/env python
"""How drain throughput scales with worker processes on one Redis: 1, 2 and 4 workers.

    python benchmarks/bench_scaling.py [--jobs 20000] [--repeat 3] [--workers 1,2,4]

Each round pre-enqueues N no-op jobs, starts W `asyncjobs worker --burst` processes at once and
times from the first job start to the N-th completion, counted by the jobs themselves (INCR).
Its own redis-server on a free loopback port; everything stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_tasks
from bench_asyncjobs import WorkerProcess
from redis_process import RedisServer

from asyncjobs import Queue


async def drain(url: str, jobs: int, workers: int, logdir: str) -> float:
    async with Queue(url, name="default") as queue:
        await queue.client.flushdb()
        for start in range(0, jobs, 5000):
            batch = [(bench_tasks.noop, (), {}) for _ in range(min(5000, jobs - start))]
            await queue.enqueue_many(batch)
        procs = [
            WorkerProcess(url, logdir, burst=True, log_level="WARNING").start()
            for _ in range(workers)
        ]
        try:
            deadline = time.monotonic() + 300
            while int(await queue.client.get(bench_tasks.COUNTER_KEY) or 0) < jobs:
                if time.monotonic() > deadline:
                    raise RuntimeError("drain did not finish within 300 s")
                await asyncio.sleep(0.005)
            done_at = time.time()
            first = float(await queue.client.get(bench_tasks.FIRST_START_KEY))
        finally:
            for p in procs:
                p.stop()
        return jobs / (done_at - first)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    server = RedisServer().start()
    rates: dict[int, list[float]] = {w: [] for w in counts}
    try:
        with tempfile.TemporaryDirectory() as logdir:
            for _ in range(args.repeat):
                for w in counts:  # interleaved rounds spread background noise evenly
                    rates[w].append(await drain(server.url, args.jobs, w, logdir))
    finally:
        server.stop()
    base = statistics.median(rates[counts[0]])
    print(f"| worker processes | drain jobs/s (median) | min - max | vs {counts[0]} |")
    print("|---:|---:|---:|---:|")
    for w in counts:
        med = statistics.median(rates[w])
        spread = f"{min(rates[w]):,.0f} - {max(rates[w]):,.0f}"
        print(f"| {w} | {med:,.0f} | {spread} | {med / base:.2f}x |")


if __name__ == "__main__":
    asyncio.run(main())
