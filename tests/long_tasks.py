"""Tasks for the long-job tests (checkpoints, soft timeouts), also run by subprocess workers."""

from __future__ import annotations

import asyncio
import os
import time

import redis

from asyncjobs import Context, LeaseLost, WorkerSettings, task


@task(max_tries=3)
async def hundred_steps(ctx: Context, steps: str, reached: str) -> int:
    """100 steps, each counted in Redis and checkpointed. Try 1 stops at step 60 (after
    counting it, before its checkpoint) and waits there to be killed. Returns where it began."""
    start = ctx.last_checkpoint or 0
    client = ctx.queue.client
    await client.rpush(f"{steps}:starts", start)
    for step in range(start, 100):
        await client.hincrby(steps, str(step), 1)
        if step == 60 and ctx.attempt == 1:
            await client.set(reached, os.getpid())
            await asyncio.sleep(3600)
        await ctx.checkpoint(step + 1)
    return start


@task(max_tries=5)
async def zombie_probe(ctx: Context, log: str, job_key: str, url: str) -> str:
    """Try 1 saves a checkpoint, waits for the go, then blocks its event loop (sync code) until
    another try has saved one, and saves again: a zombie. Try 2 saves, then waits for release.

    The zombie writes its records with a sync client, so nothing else on its loop runs between
    "attempting" and the checkpoint's command being sent."""
    client = ctx.queue.client
    if ctx.attempt == 1:
        await ctx.checkpoint("try 1")
        while not await client.exists(f"{log}:go"):  # noqa: ASYNC110 - set by the test
            await asyncio.sleep(0.02)
        sync = redis.Redis.from_url(url)
        try:
            deadline = time.monotonic() + 30
            while sync.hget(job_key, "checkpoint") != b'"try 2"' and time.monotonic() < deadline:
                time.sleep(0.02)  # noqa: ASYNC251 - blocks the loop on purpose: the lease runs out
            sync.rpush(log, "attempting")
            try:
                await ctx.checkpoint("zombie")
            except LeaseLost:
                sync.rpush(log, "refused")
                raise
            except asyncio.CancelledError:  # its worker learnt of the lost lease first
                sync.rpush(log, "stopped")
                raise
            sync.rpush(log, "stored")
        finally:
            sync.close()
        return "zombie"
    await client.rpush(log, f"try {ctx.attempt} resumed from {ctx.last_checkpoint}")
    await ctx.checkpoint("try 2")
    while not await client.exists(f"{log}:release"):  # noqa: ASYNC110 - set by the test
        await asyncio.sleep(0.02)
    return "try 2"


@task
async def record_tick(ctx: Context, key: str) -> None:
    """A cron's task: records which tick job ran (its id says which tick), once per run."""
    await ctx.queue.client.rpush(key, ctx.job_id)


settings = WorkerSettings(
    functions=[hundred_steps, zombie_probe, record_tick],
    lease_seconds=1.0,
    max_tries=3,
    shutdown_grace=1.0,
)
