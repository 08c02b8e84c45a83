"""Scenario 8: memory is bounded: after a big run with results, retries, dead letters and
idempotency keys, and once their TTLs pass, Redis is back where it started."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from asyncjobs import Queue, Worker, WorkerSettings

from ..redis_server import RedisServer
from .chaos_tasks import churn
from .conftest import FIXED_KEYS
from .helpers import scaled, unique, wait_until

#: used_memory may end this far above the baseline: the capped dead-letter stream (XADD MAXLEN ~
#: trims whole 100-entry nodes, so up to ~2 x DEAD_LETTER_MAXLEN entries of payload + traceback,
#: ~200 KB), hash tables Redis grew for 20,000+ keys and shrinks only down to a power of two, and
#: allocator slack. Observed: +0.1 MiB. A leak of 100 bytes a job (2 MB over 20,000) breaks it.
MB = 1024 * 1024
MEMORY_BOUND = 2 * MB
KEEP = 1.0  # seconds a result, a dead job's record and an idempotency key live
DEAD_LETTER_MAXLEN = 100


async def _used_memory(queue: Queue) -> int:
    return int((await queue.client.info("memory"))["used_memory"])


async def _queue_keys(queue: Queue) -> set[str]:
    """The queue's keys but the history's minute buckets (one a minute, whatever the jobs; they
    expire after 8 hours)."""
    tag = queue.keys_for(queue.name).tag
    return {
        k.decode().removeprefix(tag + ":")
        async for k in queue.client.scan_iter(match=tag + ":*", count=5000)
        if not k.decode().startswith(tag + ":minute:")
    }


async def _run(queue: Queue, numbers: list[int]) -> None:
    """Enqueue churn(i) for each number (with an idempotency key), run a burst worker."""
    for first in range(0, len(numbers), 2000):
        batch = [
            (churn, (i,), {"_idempotency_key": f"k{i}", "_idempotency_ttl": KEEP})
            for i in numbers[first : first + 2000]
        ]
        await queue.enqueue_many(batch)
    settings = WorkerSettings(
        redis_url=queue.url,
        queues=[queue.name],
        functions=[churn],
        concurrency=200,
        keep_result=KEEP,
        dead_letter_maxlen=DEAD_LETTER_MAXLEN,
        log_successes=False,
    )
    await asyncio.wait_for(Worker(settings).run(burst=True, handle_signals=False), 180)


@pytest.mark.chaos
@pytest.mark.timeout(200)
async def test_memory_and_keys_return_to_baseline_after_ttls(
    redis_factory: Callable[..., RedisServer],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("CRITICAL", logger="asyncjobs")  # 1% of the jobs fail on purpose
    server = redis_factory()
    n = scaled(20_000)
    name = unique("memory")
    no_key_leaks(server.url, name)
    async with Queue(server.url, name=name) as queue:

        async def only_fixed_keys() -> bool:
            return await _queue_keys(queue) <= FIXED_KEYS

        # Warm-up: the fixed keys exist, the scripts are loaded, and the dead-letter stream is
        # full (every 100th job is a dead letter; these are all such jobs).
        await _run(queue, [10**9 + 100 * i for i in range(2 * DEAD_LETTER_MAXLEN)])
        await wait_until(only_fixed_keys, 30, "the warm-up's per-job keys to expire", 0.5)
        baseline = await _used_memory(queue)
        stats_key = queue.keys_for(name).stats
        before = {k.decode(): int(v) for k, v in (await queue.client.hgetall(stats_key)).items()}

        samples: list[int] = []

        async def sample() -> None:
            while True:
                samples.append(await _used_memory(queue))
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        try:
            await _run(queue, list(range(n)))
        finally:
            sampler.cancel()
        ran = time.monotonic() - started
        peak = max([*samples, await _used_memory(queue)])
        peak_keys = len(await _queue_keys(queue))
        stats = await queue.client.hgetall(stats_key)
        await wait_until(only_fixed_keys, 60, "every per-job key to expire", 0.5)
        expired_after = time.monotonic() - started - ran
        after = await _used_memory(queue)
        fixed = await _queue_keys(queue)
        dead = await queue.client.xlen(queue.keys_for(name).dead_letters)
    counts = {k.decode(): int(v) - before.get(k.decode(), 0) for k, v in stats.items()}
    figures(
        f"jobs={n} run_s={ran:.1f} used_memory baseline={baseline / MB:.2f}MiB "
        f"peak={peak / MB:.2f}MiB after={after / MB:.2f}MiB (bound +{MEMORY_BOUND / MB:g}MiB) "
        f"keys after_run={peak_keys} after={sorted(fixed)} expired_within_s={expired_after:.1f} "
        f"dead_letters_kept={dead} stats={counts}"
    )
    bad = len(range(0, n, 100))
    assert counts["succeeded"] == n - bad and counts["failed"] == bad
    assert counts["retried"] == len(range(0, n, 10)) - bad
    assert peak > baseline + MEMORY_BOUND, "the run did use memory (the check means something)"
    assert after <= baseline + MEMORY_BOUND
    assert fixed <= FIXED_KEYS
    assert dead <= 2 * DEAD_LETTER_MAXLEN
