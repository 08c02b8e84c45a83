"""Two apps' worker settings for the CLI tests (`asyncjobs worker tests.ops_apps:app_a`)."""

from __future__ import annotations

import asyncio

from asyncjobs import Context, WorkerSettings, cron, task


@task
async def a_task(ctx: Context, n: int) -> int:
    return n


@task
async def b_task(ctx: Context, n: int) -> int:
    return -n


@task
async def slow_steps(ctx: Context, steps: int) -> str:
    """Reports progress after each step, then waits a little (for --watch and --wait)."""
    for step in range(steps):
        await ctx.progress((step + 1) / steps, stage="working", message=f"step {step + 1}")
        await asyncio.sleep(0.05)
    return "done"


@task
async def nightly(ctx: Context) -> None:
    pass


app_a = WorkerSettings(functions=[a_task, slow_steps], lease_seconds=1.0)
app_b = WorkerSettings(functions=[b_task], lease_seconds=1.0)

try:
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")
except Exception:  # pragma: no cover - no tz database
    from datetime import timezone

    paris = timezone.utc  # type: ignore[assignment]

with_cron = WorkerSettings(
    functions=[a_task], cron_jobs=[cron(nightly, "0 3 * * *", timezone=paris, name="nightly")]
)
