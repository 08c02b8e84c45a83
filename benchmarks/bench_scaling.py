#!/usr/bin/env python
"""How drain throughput scales with worker processes on one Redis: 1, 2 and 4 workers.

    python benchmarks/bench_scaling.py [--jobs 20000] [--repeat 3] [--workers 1,2,4]

Each round pre-enqueues N no-op jobs (run.py's asyncjobs adapter: the same task body), starts W
`asyncjobs worker --burst --log-level WARNING` processes at once and times from the first job
start to the N-th count, both stamped by the jobs themselves. Redis CPU per job is the server's
INFO cpu delta from the start of the workers to their exit; 1e6 / that is the ceiling of one
Redis core in jobs/s. Its own redis-server on a free loopback port; everything stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "adapters"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncjobs_bench
import redis.asyncio as aioredis
from bench_common import COUNTER_KEY, FIRST_KEY, LAST_KEY
from peers import asyncjobs_worker
from redis_cost import cost, read_usage
from redis_process import RedisServer
from worker_process import WorkerProcess

from asyncjobs import Queue

HERE = Path(__file__).resolve().parent
CHUNK = 5000


def workers(url: str, jobs: int, count: int, logdir: str) -> list[WorkerProcess]:
    cmd, env = asyncjobs_worker(url, jobs, ["--burst", "--log-level", "WARNING"])
    return [WorkerProcess(cmd, env, logdir, f"scaling-{count}") for _ in range(count)]


async def drain(url: str, jobs: int, count: int, logdir: str) -> tuple[float, float]:
    """One round: (jobs/s from the 1st start to the N-th count, Redis CPU µs per job)."""
    admin = aioredis.Redis.from_url(url)
    await admin.flushdb()
    async with Queue(url) as queue:
        for start in range(0, jobs, CHUNK):
            size = min(CHUNK, jobs - start)
            await queue.enqueue_many([(asyncjobs_bench.noop, (), {})] * size)
    before = await read_usage(admin)
    procs = [p.start() for p in workers(url, jobs, count, logdir)]
    try:
        deadline = time.monotonic() + 300
        for p in procs:  # burst workers exit once the queue is empty and nothing runs
            code, _ = await asyncio.to_thread(p.wait_exit, max(1.0, deadline - time.monotonic()))
            if code != 0:
                raise RuntimeError(f"worker exited {code}:\n{p.log_tail()}")
    finally:
        for p in procs:
            p.stop()
    spent = cost(before, await read_usage(admin), jobs, Counter())
    counted, first, last = await admin.mget(COUNTER_KEY, FIRST_KEY, LAST_KEY)
    await admin.aclose()
    if int(counted or 0) != jobs:
        raise RuntimeError(f"counter {counted!r}, expected {jobs}")
    return jobs / (float(last) - float(first)), spent.cpu_us_per_job


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    server = RedisServer().start()
    rates: dict[int, list[float]] = {w: [] for w in counts}
    cpu: dict[int, list[float]] = {w: [] for w in counts}
    try:
        with tempfile.TemporaryDirectory() as logdir:
            for _ in range(args.repeat):
                for w in counts:  # interleaved rounds spread background noise evenly
                    rate, us = await drain(server.url, args.jobs, w, logdir)
                    rates[w].append(rate)
                    cpu[w].append(us)
    finally:
        server.stop()
    base = statistics.median(rates[counts[0]])
    print(
        f"| worker processes | drain jobs/s (median) | min - max | vs {counts[0]} "
        "| Redis CPU µs/job | one Redis core, jobs/s |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for w in counts:
        med, us = statistics.median(rates[w]), statistics.median(cpu[w])
        spread = f"{min(rates[w]):,.0f} - {max(rates[w]):,.0f}"
        print(f"| {w} | {med:,.0f} | {spread} | {med / base:.2f}x | {us:.1f} | {1e6 / us:,.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
