"""Tasks and worker settings for the chaos suite, run in subprocesses by `asyncjobs worker`.

Every task records its own runs in Redis (the checks never trust the library's counters), but
``record_in_file``, for faults that cut the task's own Redis calls too.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from asyncjobs import Context, WorkerSettings, cron, task


@task
async def record(ctx: Context, runs_key: str, sleep_ms: int = 0, touch_after: bool = False) -> int:
    """Count this run in ``runs_key`` (HINCRBY job id), then hold the slot ``sleep_ms``; with
    ``touch_after``, use Redis again at the end (as most real tasks do)."""
    await ctx.queue.client.hincrby(runs_key, ctx.job_id, 1)
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    if touch_after:
        await ctx.queue.client.hincrby(runs_key + ":done", ctx.job_id, 1)
    return os.getpid()


@task
async def record_in_file(ctx: Context, path: str, sleep_ms: int = 0) -> int:
    """Append this run's job id to ``path`` (one line, O_APPEND), then hold the slot: a record
    that no Redis fault can cut or double (a task's own command, cut after Redis ran it, fails
    the try, and the retry counts again: at-least-once working as it should)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (ctx.job_id + "\n").encode())  # one write: lines never interleave
    finally:
        os.close(fd)
    if sleep_ms:
        await asyncio.sleep(sleep_ms / 1000)
    return os.getpid()


@task
async def timed(ctx: Context, runs_key: str, hold_s: float, block_s: float = 0.0) -> int:
    """Log each run as ``<pid> <try> <claim ms>``; hold ``hold_s`` awaiting, or block the loop
    ``block_s`` with time.sleep (on try 1 only) to starve the worker's lease upkeep."""
    job_key = ctx.queue.keys_for(ctx.queue.name).job(ctx.job_id)
    started_at = await ctx.queue.client.hget(job_key, "started_at")  # the claim's Redis time
    await ctx.queue.client.rpush(runs_key, f"{os.getpid()} {ctx.attempt} {int(started_at or 0)}")
    if block_s and ctx.attempt == 1:
        time.sleep(block_s)  # noqa: ASYNC251 - starving the event loop is the point
    if hold_s:
        await asyncio.sleep(hold_s)
    return os.getpid()


@task
async def kill_my_worker(ctx: Context, runs_key: str) -> None:
    """A poison pill: SIGKILLs the worker process that runs it, every time."""
    await ctx.queue.client.hincrby(runs_key, ctx.job_id, 1)
    os.kill(os.getpid(), signal.SIGKILL)


class Flaky(ConnectionError):
    """A transient failure: retried."""


@task(max_tries=3, backoff=0, retry_on=(Flaky,))
async def churn(ctx: Context, n: int) -> str:
    """Every 10th job fails its first try (a retry); every 100th fails for good (a dead letter);
    the rest return a small result that is kept for keep_result."""
    if n % 100 == 0:
        raise ValueError(f"job {n} is bad for good")
    if n % 10 == 0 and ctx.attempt == 1:
        raise Flaky(f"job {n} fails its first try")
    return f"result {n}"


FUNCTIONS = [record, record_in_file, timed, kill_my_worker]

#: Short leases so a killed worker's jobs come back within about a second; tries and stalls
#: high enough that a job in flight during every kill of a run still succeeds.
settings = WorkerSettings(functions=FUNCTIONS, lease_seconds=1.0, max_tries=50, max_stalls=50)

#: For the poison-pill scenario: a job may lose its lease 3 times, then it is dead-lettered.
poison_settings = WorkerSettings(functions=FUNCTIONS, lease_seconds=1.0, max_tries=10, max_stalls=3)


# -- the soak (test_soak.py): every body adds its job id to a set, so completions are counted
# exactly (a job that ran twice after a kill still counts once).

SOAK_DONE = "chaos-soak:done"


@task(max_tries=50)
async def soak_plain(ctx: Context, n: int) -> int:
    await asyncio.sleep(0.005)
    await ctx.queue.client.sadd(SOAK_DONE, ctx.job_id)
    return n


@task(max_tries=50, backoff=0.2, retry_on=(Flaky,))
async def soak_flaky(ctx: Context, n: int) -> int:
    if ctx.attempt == 1:
        raise Flaky(f"soak job {n} fails its first try")
    await ctx.queue.client.sadd(SOAK_DONE, ctx.job_id)
    return n


@task(max_tries=50, rate_limit="50/s")
async def soak_rated(ctx: Context, n: int) -> int:
    await ctx.queue.client.sadd(SOAK_DONE, ctx.job_id)
    return n


@task(max_tries=50)
async def soak_step(ctx: Context, previous: int, n: int) -> int:
    await ctx.queue.client.sadd(SOAK_DONE, ctx.job_id)
    return previous + n


@task
async def soak_tick(ctx: Context) -> None:
    await ctx.queue.client.incr("chaos-soak:ticks")


#: Results kept 5 s, so that Redis's memory reaches a steady state within the run.
soak_settings = WorkerSettings(
    functions=[soak_plain, soak_flaky, soak_rated, soak_step, soak_tick],
    cron_jobs=[cron(soak_tick, "* * * * * *")],
    lease_seconds=1.0,
    max_tries=50,
    max_stalls=50,
    keep_result=5.0,
    concurrency=50,
)

#: For a part that cannot recover: the worker gives up after 2 s instead of 60.
give_up_settings = WorkerSettings(functions=FUNCTIONS, lease_seconds=1.0, give_up_after=2.0)
