"""Tasks for the dashboard's browser tests, run by a real `asyncjobs worker` subprocess."""

from __future__ import annotations

import asyncio
import os

from asyncjobs import Context, WorkerSettings, cron, task


@task
async def stepped(ctx: Context, steps: int, pause: float) -> str:
    """Report progress after each of ``steps`` steps of ``pause`` seconds (the work itself)."""
    for step in range(1, steps + 1):
        await asyncio.sleep(pause)
        await ctx.progress(step / steps, stage=f"step {step} of {steps}", message="resizing")
    return "done"


@task(max_tries=1)
async def needs_file(ctx: Context, path: str) -> str:
    """Fails until the file at ``path`` exists (the test creates it before it replays)."""
    if not os.path.exists(path):  # noqa: ASYNC240 - one stat, the test's own gate
        raise FileNotFoundError(f"{path} is not there yet")
    return "ran"


@task
async def quick(ctx: Context, n: int) -> int:
    return n


@task
async def nightly_report(ctx: Context) -> None:
    """A cron job's task (ticks every 5 seconds in these tests)."""


settings = WorkerSettings(
    functions=[stepped, needs_file, quick, nightly_report],
    cron_jobs=[cron(nightly_report, "* * * * * */5", name="report")],
    concurrency=10,
)
