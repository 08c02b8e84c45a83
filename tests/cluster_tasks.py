"""Worker settings for the multi-process cluster test (run by `asyncjobs worker`)."""

from __future__ import annotations

from asyncjobs import Context, WorkerSettings, task


@task
async def count_run(ctx: Context, counter: str) -> None:
    """Record this run in Redis: the check does not trust the library's own counters."""
    await ctx.queue.client.hincrby(counter, ctx.job_id, 1)


settings = WorkerSettings(functions=[count_run], queues=["q1", "q2", "q3"], lease_seconds=5.0)
