"""Failure paths at scale: retry storms, kills between tries, bounded stores, hooks, leaks."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest

from asyncjobs import Context, JobFailed, JobStatus, Queue, task
from asyncjobs._store.scripts import KEY_NAMES

from .conftest import run_burst
from .crash_tasks import fail_first_try
from .test_crash import spawn_worker
from .waiting import wait_until


@task(max_tries=3, backoff=0)
async def fails_twice(ctx: Context, runs_key: str) -> int:
    """Counts its own runs in Redis (the check does not trust the library's counters)."""
    await ctx.queue.client.hincrby(runs_key, ctx.job_id, 1)
    if ctx.attempt < 3:
        raise ConnectionError(f"try {ctx.attempt} fails")
    await ctx.queue.client.hincrby(runs_key, f"{ctx.job_id}:ok", 1)
    return ctx.attempt


async def test_retry_storm_ends_with_every_job_succeeded_once(queue: Queue) -> None:
    runs_key = f"test:{uuid.uuid4().hex[:8]}:runs"
    n = scale(queue, 1000)
    jobs = await queue.enqueue_many([(fails_twice, (runs_key,), {}) for _ in range(n)])
    await run_burst(queue, [fails_twice], concurrency=100)
    runs = {k.decode(): int(v) for k, v in (await queue.client.hgetall(runs_key)).items()}
    for job in jobs:
        assert runs[job.id] == 3, "three tries each"
        assert runs[f"{job.id}:ok"] == 1, "succeeded exactly once"
    infos = [await j.info() for j in jobs[:50]]
    assert all(i.status is JobStatus.SUCCEEDED and i.attempts == 3 for i in infos)
    stats = await queue.client.hgetall(queue.keys_for(queue.name).stats)
    assert int(stats[b"retried"]) == 2 * n and int(stats[b"succeeded"]) == n
    assert await queue.dead_letters() == []


@pytest.mark.slow
async def test_worker_killed_between_tries_loses_nothing(redis_url: str, tmp_path: Path) -> None:
    name = f"between-{uuid.uuid4().hex[:8]}"
    marker = f"test:{name}:pid"
    async with Queue(redis_url, name=name) as queue:
        victim = spawn_worker(redis_url, name, tmp_path / "victim.log")
        try:
            job = await queue.enqueue(fail_first_try, marker)
            for _ in range(300):
                if await queue.client.get(marker) and await job.status() is JobStatus.DEFERRED:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("try 1 never failed into a scheduled retry")
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
        finally:
            if victim.poll() is None:
                victim.kill()
                victim.wait()
        assert (await job.info()).attempts == 1
        rescuer = spawn_worker(redis_url, name, tmp_path / "rescuer.log")
        try:
            assert await job.result(timeout=20) == "finished on try 2"
        finally:
            rescuer.send_signal(signal.SIGTERM)
            rescuer.wait(15)


def scale(queue: Queue, jobs: int) -> int:
    """The full size on real Redis; a fifth on memory:// (its Lua runs ~6x slower)."""
    return jobs if queue.url.startswith("redis") else jobs // 5


async def test_dead_letter_stream_stays_within_its_cap(queue: Queue) -> None:
    n = scale(queue, 10_000)
    await queue.enqueue_many([("no_such_task", (i,), {}) for i in range(n)])
    await run_burst(queue, [fails_twice], dead_letter_maxlen=100, concurrency=200)
    length = await queue.client.xlen(queue.keys_for(queue.name).dead_letters)
    # XADD MAXLEN ~ trims whole stream nodes (100 entries each by default), so the cap is
    # exact to within one node.
    assert 100 <= length <= 200
    stats = await queue.client.hgetall(queue.keys_for(queue.name).stats)
    assert int(stats[b"failed"]) == n, "every job was dead-lettered; only the stream is capped"


async def test_idempotency_store_expires_by_itself(queue: Queue) -> None:
    n = scale(queue, 10_000)
    keys = queue.keys_for(queue.name)
    pattern = keys.idempotency_prefix + "*"
    items = [("x", (i,), {"_idempotency_key": f"k{i}", "_idempotency_ttl": 2.0}) for i in range(n)]
    await queue.enqueue_many(items)
    stored = [k async for k in queue.client.scan_iter(match=pattern, count=1000)]
    assert 0 < len(stored) <= n
    assert 0 < await queue.client.pttl(stored[0]) <= 2000

    async def all_expired() -> bool:
        return [k async for k in queue.client.scan_iter(match=pattern, count=1000)] == []

    await wait_until(all_expired, 10, "every idempotency key to expire by itself")


async def test_dead_letter_and_job_end_hooks(queue: Queue) -> None:
    seen: list[Any] = []

    async def on_dead_letter(ctx: Context, exc: BaseException) -> None:
        seen.append(("dead", ctx.job_id, type(exc).__name__))

    async def on_job_end(ctx: Context) -> None:
        seen.append(("end", ctx.task_name, ctx.outcome, ctx.attempt))

    @task(name="bad", max_tries=2, backoff=0)
    async def bad(ctx: Context) -> None:
        raise KeyError("nope")

    job = await queue.enqueue(bad)
    await run_burst(queue, [bad], on_dead_letter=on_dead_letter, on_job_end=on_job_end)
    assert seen == [
        ("end", "bad", "retry", 1),
        ("dead", job.id, "KeyError"),
        ("end", "bad", "failed", 2),
    ]
    with pytest.raises(JobFailed):
        await job.result(timeout=1)


#: The queue's key block (every script's KEYS), and the capped lists of recently finished jobs.
PERSISTENT = set(KEY_NAMES) | {"recent:succeeded", "recent:cancelled", "recent:expired"}


async def test_no_key_is_left_without_a_ttl(queue: Queue) -> None:
    """After a mixed run, every per-job key expires by itself; only the queue's fixed keys stay."""

    @task(name="mixed", max_tries=2, backoff=0, max_concurrency=3)
    async def mixed(ctx: Context, n: int) -> int:
        if n % 5 == 0:
            raise ValueError("permanent-ish")
        return n

    items = [(mixed, (n,), {"_idempotency_key": f"m{n}"}) for n in range(60)]
    await queue.enqueue_many(items)
    cancelled = await queue.enqueue(mixed, 1000, _defer_by=60)
    await cancelled.cancel()
    await run_burst(queue, [mixed], concurrency=10)
    keys = queue.keys_for(queue.name)
    async for key in queue.client.scan_iter(match=keys.tag + "*"):
        name = key.decode().removeprefix(keys.tag + ":")
        if name in PERSISTENT:
            continue
        if await queue.client.pttl(key) <= 0:  # say what the key holds: a stranded job?
            record = await queue.client.hgetall(key) if b":job:" in key else {}
            fields = {k: v for k, v in record.items() if k not in (b"payload", b"traceback")}
            raise AssertionError(f"{key!r} has no TTL: {fields}")
