#!/usr/bin/env python
"""What one job costs the asyncjobs worker process in CPU, at default settings.

    python benchmarks/worker_cost.py [--jobs 20000] [--repeat 5]

Each round pre-enqueues N jobs, runs `asyncjobs worker --burst` (default concurrency and log
level: one INFO line per job, written to a file) until it exits, and reads the CPU the process
used (user + system, from the kernel's accounting of waited-for children). A round with no job
at all gives the fixed cost (imports, connect, shutdown); per job = (CPU with N - CPU with 0) / N.
Two task bodies: `empty` (no body: the worker alone) and `noop`, run.py's task (one INCR
through a redis-py client of its own, the same in every system), so the harness's figure can
be split. The worker runs on asyncjobs's runtime-only venv (run.py --install makes it), as
run.py's do, else on this interpreter. Its own redis-server on a free loopback port;
everything stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "adapters"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import asyncjobs_bench
import redis.asyncio as aioredis
from peers import asyncjobs_worker
from redis_process import RedisServer
from worker_process import WorkerProcess

from asyncjobs import Queue

HERE = Path(__file__).resolve().parent
CHUNK = 5000


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def burst(url: str, kind: str, jobs: int, logdir: str) -> float:
    """One burst worker over ``jobs`` pre-enqueued jobs: the CPU seconds it used."""
    admin = aioredis.Redis.from_url(url)
    await admin.flushdb()
    await admin.aclose()
    async with Queue(url) as queue:
        for start in range(0, jobs, CHUNK):
            size = min(CHUNK, jobs - start)
            await queue.enqueue_many([(getattr(asyncjobs_bench, kind), (), {})] * size)
    cmd, env = asyncjobs_worker(url, jobs, ["--burst"])
    worker = WorkerProcess(cmd, env, logdir, f"cost-{kind}")
    before = children_cpu_s()
    worker.start()
    try:
        code, _ = await asyncio.to_thread(worker.wait_exit, 120 + jobs / 100)
    finally:
        worker.stop()
    if code != 0:
        raise RuntimeError(f"worker exited {code}:\n{worker.log_tail()}")
    return children_cpu_s() - before


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = RedisServer().start()
    per_job: dict[str, list[float]] = {"empty": [], "noop": []}
    fixed: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as logdir:
            for _ in range(args.repeat):  # interleaved rounds spread background noise evenly
                zero = await burst(server.url, "empty", 0, logdir)
                fixed.append(zero)
                for kind in per_job:
                    spent = await burst(server.url, kind, args.jobs, logdir)
                    per_job[kind].append((spent - zero) * 1e6 / args.jobs)
    finally:
        server.stop()
    print(f"worker CPU, {args.jobs} jobs per round, {args.repeat} rounds (median, min - max)")
    print(f"  fixed (start-up and exit, no job)  {statistics.median(fixed):.2f} s")
    for kind, values in per_job.items():
        spread = f"{min(values):.1f} - {max(values):.1f}"
        median = statistics.median(values)
        print(f"  per job, task {kind:6}              {median:6.1f} µs ({spread})")


if __name__ == "__main__":
    asyncio.run(main())
