"""Cron: schedule maths without Redis, and exactly-once ticks across workers on Redis."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from asyncjobs import Context, Queue, Worker, WorkerSettings, cron, task

from .waiting import wait_until


@task
async def tick(ctx: Context, key: str) -> None:
    await ctx.queue.client.rpush(key, ctx.job_id)


def test_field_style_matches_arq() -> None:
    job = cron(tick, minute={0, 30}, args=("k",))
    assert job.expression == "0,30 * * * * 0"
    start = datetime(2026, 1, 1, 10, 10, 5, tzinfo=timezone.utc)
    assert job.next_after(start) == datetime(2026, 1, 1, 10, 30, tzinfo=timezone.utc)
    assert job.previous_before(start) == datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)


def test_expression_form_and_validation() -> None:
    job = cron(tick, "0 6 * * mon-fri", name="morning")
    friday = datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)
    assert job.next_after(friday) == datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)
    with pytest.raises(ValueError):
        cron(tick, "not a schedule")
    with pytest.raises(TypeError):
        cron(lambda: None)  # type: ignore[arg-type]


def _worker(url: str, queue: str, jobs: list[Any]) -> Worker:
    return Worker(WorkerSettings(redis_url=url, functions=[tick], queues=[queue], cron_jobs=jobs))


@pytest.mark.slow
async def test_two_workers_enqueue_each_tick_once(backend_url: str) -> None:
    redis_url = backend_url  # the real server, memory:// and the 3-master cluster
    name = f"cron-{uuid.uuid4().hex[:8]}"
    key = f"test:{name}:runs"
    every_second = [cron(tick, "* * * * * *", args=(key,))]
    workers = [_worker(redis_url, name, every_second) for _ in range(2)]
    runs = [asyncio.create_task(w.run(handle_signals=False)) for w in workers]
    await asyncio.sleep(3.5)
    for w in workers:
        w.stop()
    await asyncio.gather(*runs)
    async with Queue(redis_url, name=name) as queue:
        ran = [r.decode() for r in await queue.client.lrange(key, 0, -1)]
    assert len(ran) >= 3
    assert len(ran) == len(set(ran)), f"a tick ran twice: {ran}"
    ticks = sorted(int(r.rsplit(":", 1)[1]) for r in ran)
    assert all(b - a == 1000 for a, b in itertools.pairwise(ticks)), ticks


@task
async def slow_tick(ctx: Context, key: str) -> None:
    await ctx.queue.client.rpush(key, ctx.job_id)
    await asyncio.sleep(2.2)


@pytest.mark.slow
async def test_unique_cron_skips_ticks_while_the_last_run_is_alive(redis_url: str) -> None:
    name = f"cron-{uuid.uuid4().hex[:8]}"
    key = f"test:{name}:runs"
    worker = Worker(
        WorkerSettings(
            redis_url=redis_url,
            functions=[slow_tick],
            queues=[name],
            cron_jobs=[cron(slow_tick, "* * * * * *", args=(key,), unique=True)],
        )
    )
    run = asyncio.create_task(worker.run(handle_signals=False))
    await asyncio.sleep(4.5)
    worker.stop()
    await run
    async with Queue(redis_url, name=name) as queue:
        ran = await queue.client.lrange(key, 0, -1)
    assert 1 <= len(ran) <= 2, "ticks that came while a run was alive were skipped"


async def test_missed_tick_policy(redis_url: str) -> None:
    name = f"cron-{uuid.uuid4().hex[:8]}"
    key = f"test:{name}:runs"
    hourly_catch_up = cron(tick, "0 * * * *", args=(key,), missed="run_once", name="hourly")
    hourly_skip = cron(tick, "0 * * * *", args=(key,), missed="skip", name="hourly-skip")
    async with Queue(redis_url, name=name) as queue:
        cron_key = queue.keys_for(name).cron
        long_ago = int(datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
        await queue.client.hset(
            cron_key, mapping={"hourly": f"{long_ago} old", "hourly-skip": f"{long_ago} old"}
        )
        worker = _worker(redis_url, name, [hourly_catch_up, hourly_skip])
        # start-up ticks are enqueued before the worker claims: the burst itself runs the catch-up
        await asyncio.wait_for(worker.run(burst=True, handle_signals=False), 20)
        ran = [r.decode() for r in await queue.client.lrange(key, 0, -1)]
    assert len(ran) == 1 and ran[0].startswith("cron:hourly:")


async def test_ticks_follow_redis_clock_not_the_machines(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker whose own clock ran 5 s ahead fired every tick 5 s early. Ticks are decided by
    Redis's clock: each tick's job is created at (or after) its tick, by Redis's clock."""
    from datetime import timedelta

    from asyncjobs import _cron_scheduler

    class AheadOfRedis(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return datetime.now(tz) + timedelta(seconds=5)

    monkeypatch.setattr(_cron_scheduler, "datetime", AheadOfRedis)
    name = f"c-{uuid.uuid4().hex[:8]}"
    key = f"cron-clock:{name}"
    worker = _worker(redis_url, name, [cron(tick, "* * * * * *", args=(key,))])
    run = asyncio.create_task(worker.run(handle_signals=False))
    try:
        async with Queue(redis_url, name=name) as queue:

            async def two_ticks() -> bool:
                return int(await queue.client.llen(key)) >= 2

            await wait_until(two_ticks, 10, "two cron ticks")
            for raw in await queue.client.lrange(key, 0, -1):
                job_id = raw.decode()
                tick_ms = int(job_id.rsplit(":", 1)[1])
                enqueued = (await queue.job(job_id).info()).enqueued_at
                assert enqueued is not None
                assert enqueued.timestamp() * 1000 >= tick_ms, "fired before its tick"
    finally:
        worker.stop()
        await run
