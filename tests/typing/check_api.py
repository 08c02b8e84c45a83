"""Type-checked (mypy --strict), never run: pins what the typed API accepts and rejects."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from typing_extensions import assert_type

from asyncjobs import (
    Chain,
    Context,
    CronInfo,
    Job,
    JobInfo,
    JobStatus,
    Queue,
    QueueStats,
    Signature,
    WorkerInfo,
    WorkflowFailure,
    chain,
    cron,
    group,
    task,
)


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


async def uses(queue: Queue) -> None:
    job = await queue.enqueue(add, 1, 2)
    assert_type(job, Job[int])  # the task's return type flows to the job and its result
    total = await job.result()
    assert_type(total, int)
    assert_type(await queue.enqueue(add, 1, 2, _defer_by=5), Job[int])
    assert_type(await queue.enqueue("add", 1, 2), Job[Any])  # a name carries no types
    sig: Signature[int] = add.si(1, 2)
    add.si("one", 2)  # type: ignore[arg-type]
    add.si(1)  # type: ignore[call-arg]
    await queue.enqueue(chain(sig, add.s(3)))
    direct: int = await add(None, 1, 2)
    del total, direct
    undo_flow: Chain = chain(sig, add.s(3)).on_error(undo.s("order-1"))
    await queue.enqueue(undo_flow)
    await queue.enqueue(group(sig).on_error(undo.s("order-1")))
    chain(sig).on_error(undo)  # type: ignore[arg-type]
    info: CronInfo = await queue.add_cron(cron(report, "0 6 * * *", name="daily"))
    assert_type(await queue.crons(), list[CronInfo])
    assert_type(await queue.remove_cron(info.name), bool)


@task(timeout=60, soft_timeout=50)
async def sync_orders(ctx: Context, shop: str) -> int:
    start: Any = ctx.last_checkpoint
    await ctx.checkpoint((start or 0) + 1)
    return int(start or 0)


@task
async def undo(ctx: Context, failure: WorkflowFailure, order: str) -> list[str]:
    return [step.job_id for step in failure.succeeded]


@task
async def report(ctx: Context) -> None: ...


async def operating(queue: Queue) -> None:
    """The operating API is typed (version 2 of the contract)."""
    paused: bool = await queue.pause("emails")
    stats: QueueStats = await queue.stats("emails")
    minute: datetime = stats.history[0].minute
    page: list[JobInfo] = await queue.jobs(JobStatus.QUEUED, "emails", offset=0, limit=50)
    dropped: int = await queue.purge("emails")
    replayed: int = await queue.replay_dead_letters("emails", task=None)
    workers: list[WorkerInfo] = await queue.workers("emails")
    print(paused, minute, page, dropped, replayed, workers[0].running, stats.paused)
