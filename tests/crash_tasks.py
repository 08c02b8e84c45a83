"""Worker settings for the crash test, run in a subprocess by `asyncjobs worker`."""

from __future__ import annotations

import asyncio
import os

from asyncjobs import Context, WorkerSettings, task


@task
async def hang_first_try(ctx: Context, marker: str) -> str:
    """On try 1: announce the PID, then hang until killed. Later tries finish at once."""
    if ctx.attempt == 1:
        await ctx.queue.client.set(marker, os.getpid())
        await asyncio.sleep(3600)
    return f"finished on try {ctx.attempt}"


@task
async def quick(ctx: Context, n: int) -> int:
    return n


settings = WorkerSettings(functions=[hang_first_try, quick], lease_seconds=1.0, max_tries=3)


@task(max_tries=3, backoff=1.5)
async def fail_first_try(ctx: Context, marker: str) -> str:
    """Try 1 fails (retry in 1.5 s) after announcing itself; later tries succeed."""
    if ctx.attempt == 1:
        await ctx.queue.client.set(marker, os.getpid())
        raise ConnectionError("first try always fails")
    return f"finished on try {ctx.attempt}"


settings.functions.append(fail_first_try)
