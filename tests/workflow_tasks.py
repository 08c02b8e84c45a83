"""Tasks for the workflow tests (also run by subprocess workers in the crash test)."""

from __future__ import annotations

import asyncio
import os

from asyncjobs import Context, WorkerSettings, WorkflowFailure, task


@task
async def add(ctx: Context, x: int, y: int) -> int:
    return x + y


@task
async def square(ctx: Context, x: int) -> int:
    return x * x


@task
async def slow_square(ctx: Context, x: int, seconds: float, runs: str) -> int:
    """Counts its runs in Redis, sleeps, squares."""
    await ctx.queue.client.hincrby(runs, str(x), 1)
    await asyncio.sleep(seconds)
    return x * x


@task
async def collect(ctx: Context, results: list[int], calls: str) -> dict[str, int]:
    """The chord callback: counts its own calls in Redis so a test can check 'exactly once'."""
    await ctx.queue.client.incr(calls)
    return {"count": len(results), "total": sum(results), "first": results[0]}


@task(max_tries=1)
async def explode(ctx: Context, x: int) -> int:
    raise ValueError(f"member {x} exploded")


@task
async def describe(ctx: Context, results: list[object]) -> list[str]:
    return ["failed" if isinstance(r, dict) and r.get("failed") else "ok" for r in results]


@task
async def wait_for(ctx: Context, key: str) -> str:
    """Blocks until the key exists (a test releases it), then returns the worker pid."""
    while not await ctx.queue.client.exists(key):  # noqa: ASYNC110 - waits on another process
        await asyncio.sleep(0.02)
    return str(os.getpid())


@task
async def note_failure(ctx: Context, failure: WorkflowFailure, log: str) -> str:
    """An error callback: records each call (the failure it got) in Redis."""
    await ctx.queue.client.rpush(log, failure.model_dump_json())
    return failure.job_id


@task
async def note_call(ctx: Context, log: str) -> None:
    """An immutable error callback (.si): takes no failure."""
    await ctx.queue.client.rpush(log, "called")


@task(max_tries=2)
async def killed_then_fails(ctx: Context, marker: str) -> int:
    """Try 1 announces its worker's pid and hangs (to be killed); try 2 fails."""
    if ctx.attempt == 1:
        await ctx.queue.client.set(marker, os.getpid())
        await asyncio.sleep(3600)
    raise ValueError(f"try {ctx.attempt} failed too")


settings = WorkerSettings(
    functions=[
        add,
        square,
        slow_square,
        collect,
        explode,
        describe,
        wait_for,
        note_failure,
        note_call,
        killed_then_fails,
    ],
    lease_seconds=1.0,
    max_tries=5,
    max_stalls=5,
)
