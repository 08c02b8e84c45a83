"""Worker settings for bench_asyncjobs.py: ``asyncjobs worker benchmarks.bench_tasks:settings``.

The tasks write their measurements with the worker's own Redis client (``ctx.queue.client``),
so no extra connection pool is opened. Key names come from environment variables that the
harness sets (the defaults match the harness's defaults); the Redis URL comes from the CLI's
``--redis-url`` (or ``ASYNCJOBS_REDIS_URL``).
"""

from __future__ import annotations

import os
import time

from asyncjobs import WorkerSettings, task

COUNTER_KEY = os.environ.get("BENCH_COUNTER_KEY", "bench:counter")
FIRST_START_KEY = os.environ.get("BENCH_FIRST_START_KEY", "bench:first_start")
LATENCY_KEY = os.environ.get("BENCH_LATENCY_KEY", "bench:latency")


@task
async def noop(ctx):  # type: ignore[no-untyped-def]
    """Counts itself; the job that makes the counter 1 records when it started (epoch seconds)."""
    started = time.time()
    client = ctx.queue.client
    if await client.incr(COUNTER_KEY) == 1:
        await client.set(FIRST_START_KEY, repr(started), nx=True)


@task
async def stamp(ctx, i):  # type: ignore[no-untyped-def]
    """Records when job number ``i`` started (epoch seconds), for enqueue→start latency."""
    started = time.time()
    await ctx.queue.client.hset(LATENCY_KEY, str(i), repr(started))


@task
async def echo(ctx, value=None):  # type: ignore[no-untyped-def]
    """Returns its argument: the result round trip."""
    return value


settings = WorkerSettings(
    redis_url=os.environ.get("ASYNCJOBS_REDIS_URL", "redis://127.0.0.1:6379/0"),
    functions=[noop, stamp, echo],
)
