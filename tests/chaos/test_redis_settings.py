"""Redis settings and accidents: an evicting Redis is flagged, a full one refuses enqueues
clearly, and data that vanishes under a worker is survived."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asyncjobs import Queue, RedisUnavailable, Worker, WorkerSettings

from ..redis_server import RedisServer
from .chaos_tasks import record
from .helpers import WorkerProcess, unique, wait_until


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_an_evicting_redis_is_flagged_with_noeviction_advice(
    redis_factory: Callable[..., RedisServer],
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = redis_factory("--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru")
    worker = spawn(server.url, unique("lru"))

    async def warned() -> bool:
        return "noeviction" in worker.log_text()

    try:
        await wait_until(warned, 20, "the eviction warning")
    finally:
        code = await worker.astop()
    line = next(ln for ln in worker.log_text().splitlines() if "noeviction" in ln)
    assert " WARNING " in line and "allkeys-lru" in line, line
    assert code == 0
    # The suite's own server keeps the default policy (noeviction): no warning there.
    caplog.set_level("WARNING", logger="asyncjobs")
    settings = WorkerSettings(redis_url=chaos_redis.url, queues=[unique("ok")], functions=[record])
    await Worker(settings).run(burst=True, handle_signals=False)
    assert not [r for r in caplog.records if "noeviction" in r.getMessage()]


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_an_enqueue_redis_cannot_store_fails_clearly_and_writes_nothing(
    redis_factory: Callable[..., RedisServer],
) -> None:
    """Out of memory (maxmemory with noeviction): enqueue raises an asyncjobs error naming the
    cause, a batch stores nothing at all, and once memory is free the same calls work."""
    server = redis_factory("--maxmemory-policy", "noeviction")
    name = unique("oom")
    async with Queue(server.url, name=name) as queue:
        await queue.enqueue(record, "warm-up")  # scripts loaded, queue registered
        before = await queue.client.dbsize()
        await queue.client.config_set("maxmemory", "1")
        try:
            with pytest.raises(RedisUnavailable, match="out of memory"):
                await queue.enqueue(record, "one")
            with pytest.raises(RedisUnavailable, match="out of memory"):
                await queue.enqueue_many([(record, (f"k{i}",), {}) for i in range(500)])
        finally:
            await queue.client.config_set("maxmemory", "0")
        assert await queue.client.dbsize() == before, "nothing was written half-way"
        jobs = await queue.enqueue_many([(record, (f"k{i}",), {}) for i in range(500)])
        assert len({j.id for j in jobs}) == 500


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_jobs_whose_records_vanish_are_reported_once_and_the_worker_goes_on(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    figures: Callable[[str], None],
) -> None:
    """Someone runs FLUSHDB (or Redis restarts without persistence) while a worker holds 50
    jobs: the worker neither crashes nor loops, says so a bounded number of times, and serves
    the jobs enqueued afterwards."""
    url, name = chaos_redis.url, unique("flushed")
    runs_key = f"chaos-runs:{name}"
    worker = spawn(url, name)
    try:
        async with Queue(url, name=name) as queue:
            keys = queue.keys_for(name)
            await queue.enqueue_many([(record, (runs_key, 1500), {}) for _ in range(50)])

            async def holding() -> bool:
                return await queue.client.zcard(keys.leases) == 50

            await wait_until(holding, 20, "the worker to hold the 50 jobs")
            await queue.client.flushdb()
            later = await queue.enqueue_many([(record, (runs_key,), {}) for _ in range(20)])
            for job in later:
                await job.result(timeout=30)
            await queue.client.delete(runs_key)
    finally:
        code = await worker.astop()
    log = worker.log_text()
    problems = [ln for ln in log.splitlines() if " WARNING " in ln or " ERROR " in ln]
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    figures(f"jobs_vanished=50 worker_log_lines={len(problems)}")
    assert len(problems) <= 50 + 5, "\n".join(problems[-20:])
