"""Flow control across workers: concurrency limits, singletons, rate limits, progress watching."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from typing import Any

import pytest

from asyncjobs import Context, JobStatus, Queue, task

from .conftest import one_claimer, run_burst
from .waiting import wait_until

# INCR a running counter and keep its peak, atomically, in Redis: the check does not trust
# the library's own bookkeeping.
ENTER = """
local v = redis.call('INCR', KEYS[1])
if v > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], v) end
return v
"""


def counters() -> tuple[str, str]:
    base = f"test:{{{uuid.uuid4().hex[:8]}}}"  # one hash tag: the EVAL runs on a cluster too
    return f"{base}:running", f"{base}:peak"


@task(max_concurrency=2)
async def limited(ctx: Context, running: str, peak: str) -> None:
    await ctx.queue.client.eval(ENTER, 2, running, peak)
    await asyncio.sleep(0.03)
    await ctx.queue.client.decr(running)


async def test_a_burst_does_not_end_on_a_claim_answered_after_a_job_ended() -> None:
    """On a cluster, claims and acks travel on different connections: Redis can run a claim
    while a concurrency group's slots are still held (every job it finds is blocked), and answer
    it after the acks that freed those slots (and readied the blocked jobs). A burst worker that
    ended on that empty claim stranded the group's jobs; it must claim once more instead."""
    from asyncjobs._running import ClaimedJob, RunningJobs
    from asyncjobs._store import Claim, QueueKeys

    keys = QueueKeys("asyncjobs", "q")
    running = RunningJobs()
    release = asyncio.Event()

    async def holds_its_slot(job: ClaimedJob) -> None:
        await release.wait()

    running.start(ClaimedJob(keys, "held", "t", b"", 1, 1, 0, 0, "w:1"), holds_its_slot)
    claims: list[int] = []

    class Store:
        async def claim(self, *args: Any) -> Claim:
            claims.append(len(running))
            if len(claims) == 1:  # the slot holder's ack lands while this reply is on its way
                running.freed.clear()
                release.set()
                await running.freed.wait()
            return Claim(next_due_ms=-1, now_ms=0, suspects_waiting=False, suspect=None)

    claimer = one_claimer(Store(), keys, "w", burst=True, running=running)
    assert await claimer.step() is False, "a job ended during the claim: claim again"
    assert await claimer.step() is True, "nothing ended during this one: the burst is done"
    assert claims == [1, 0]


async def test_max_concurrency_holds_across_two_workers(queue: Queue, start_worker: Any) -> None:
    running, peak = counters()
    jobs = await queue.enqueue_many([(limited, (running, peak), {}) for _ in range(30)])
    await start_worker([limited], concurrency=10)
    await start_worker([limited], concurrency=10)
    for job in jobs:
        await job.result(timeout=20)
    assert int(await queue.client.get(peak)) == 2


@task(singleton=True, concurrency_key=lambda account, running, peak: account)
async def per_account(ctx: Context, account: str, running: str, peak: str) -> str:
    await ctx.queue.client.eval(ENTER, 2, running, peak)
    await asyncio.sleep(0.03)
    await ctx.queue.client.decr(running)
    return account


async def test_a_worker_without_the_limit_does_not_lift_it(queue: Queue, start_worker: Any) -> None:
    """Two versions of a task side by side (a rolling deploy): one worker's task has
    max_concurrency=2, the other's has none. The stricter declaration holds while its worker
    lives; the other worker must not erase it."""
    running, peak = counters()

    @task(name="limited")  # the same task, without the limit
    async def unlimited(ctx: Context, running: str, peak: str) -> None:
        await ctx.queue.client.eval(ENTER, 2, running, peak)
        await asyncio.sleep(0.03)
        await ctx.queue.client.decr(running)

    await start_worker([limited])
    limits = queue.keys_for(queue.name).limits

    async def declared() -> bool:
        return bool(await queue.client.hget(limits, "limited:concurrency"))

    await wait_until(declared, 5, "the limited worker to declare its limit")
    await start_worker([unlimited])
    jobs = await queue.enqueue_many([(limited, (running, peak), {}) for _ in range(30)])
    for job in jobs:
        await job.result(timeout=20)
    assert int(await queue.client.get(peak)) == 2
    await queue.client.delete(running, peak)


async def test_singleton_per_key_runs_keys_in_parallel_but_one_per_key(queue: Queue) -> None:
    a_running, a_peak = counters()
    b_running, b_peak = counters()
    items = []
    for _ in range(5):
        items.append((per_account, ("a", a_running, a_peak), {}))
        items.append((per_account, ("b", b_running, b_peak), {}))
    jobs = await queue.enqueue_many(items)
    started = time.monotonic()
    await run_burst(queue, [per_account], concurrency=10)
    took = time.monotonic() - started
    assert [await j.result(timeout=1) for j in jobs] == ["a", "b"] * 5
    assert int(await queue.client.get(a_peak)) == 1
    assert int(await queue.client.get(b_peak)) == 1
    assert took < 10 * 0.03 * 1.5 + 1, "a and b ran side by side, not one after another"


async def test_cancelling_a_blocked_job_keeps_the_group_moving(queue: Queue) -> None:
    first_started = asyncio.Event()
    release = asyncio.Event()
    ran: list[int] = []

    @task(name="one_at_a_time", singleton=True)
    async def one_at_a_time(ctx: Context, n: int) -> None:
        ran.append(n)
        if n == 1:
            first_started.set()
            await release.wait()

    jobs = [await queue.enqueue(one_at_a_time, n) for n in (1, 2, 3)]
    from asyncjobs import Worker, WorkerSettings

    worker = Worker(
        WorkerSettings(redis_url=queue.url, functions=[one_at_a_time], queues=[queue.name])
    )
    run = asyncio.create_task(worker.run(handle_signals=False))
    await asyncio.wait_for(first_started.wait(), 5)
    await asyncio.sleep(0.05)
    assert await jobs[1].status() is JobStatus.QUEUED, "waiting for the slot, not failed"
    assert await jobs[1].cancel()
    release.set()
    assert await jobs[2].result(timeout=5) is None
    worker.stop()
    await run
    assert ran == [1, 3]


@task(rate_limit="20/s")
async def paced(ctx: Context) -> None:
    pass


@pytest.mark.slow
async def test_rate_limit_holds_across_two_workers(queue: Queue, start_worker: Any) -> None:
    """80 jobs at 20/s shared by two workers: every start is 50 ms or more after the last.

    Measured on the starts the limiter controls, each job's `started_at` (Redis clock, set when
    it is claimed); a job's body may begin a few ms later on a busy worker, which no limiter
    can promise away.
    """
    jobs = await queue.enqueue_many([(paced, (), {}) for _ in range(80)])
    await start_worker([paced], concurrency=50)
    await start_worker([paced], concurrency=50)
    for job in jobs:
        await job.result(timeout=30)
    infos = [await job.info() for job in jobs]
    starts = sorted(info.started_at.timestamp() for info in infos if info.started_at)
    assert len(starts) == 80
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert min(gaps) >= 0.050 - 1e-6, f"two starts {min(gaps) * 1000:.1f} ms apart"
    span = starts[-1] - starts[0]
    assert span >= 3.95, "79 gaps of at least 50 ms"
    for i in range(len(starts)):  # so no one-second window holds more than 20
        assert len([t for t in starts[i:] if t - starts[i] < 1.0 - 1e-6]) <= 20
    assert all(info.attempts == 1 for info in infos), "waiting for a rate slot is not a try"


async def test_watch_yields_progress_in_order(queue: Queue, start_worker: Any) -> None:
    steps = [asyncio.Event() for _ in range(3)]

    @task(name="stepper")
    async def stepper(ctx: Context) -> str:
        for i, step in enumerate(steps):
            await ctx.progress((i + 1) / 4, stage=f"step {i + 1}")
            await step.wait()
        return "done"

    await start_worker([stepper])
    job = await queue.enqueue(stepper)
    seen: list[tuple[str, float | None]] = []
    async for info in job.watch():
        seen.append((info.status.value, info.progress))
        if info.progress is not None and info.status is JobStatus.IN_PROGRESS:
            assert info.eta is not None
            steps[round(info.progress * 4) - 1].set()
    progress = [p for s, p in seen if s == "in_progress" and p is not None]
    assert progress == [0.25, 0.5, 0.75]
    assert seen[-1] == ("succeeded", 0.75)
    assert await job.result(timeout=1) == "done"
