"""A bounded soak: retries, cron, a rate limit and workflows under a steady load, with a worker
SIGKILLed every interval. Worker RSS, Redis memory and key count stay flat; every job completes
(counted exactly, by id).

    ASYNCJOBS_SOAK_SECONDS=1200 python -m pytest tests/chaos/test_soak.py   # 20 min, a kill / 30 s

The default (60 s, a kill every 15 s) runs with the suite.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable

import pytest

from asyncjobs import Queue, chain

from ..redis_server import RedisServer
from .chaos_tasks import SOAK_DONE, soak_flaky, soak_plain, soak_rated, soak_step
from .helpers import WorkerProcess, unique, wait_until

SECONDS = float(os.environ.get("ASYNCJOBS_SOAK_SECONDS", "60"))
KILL_EVERY = max(15.0, min(30.0, SECONDS / 4))
SETTINGS = "tests.chaos.chaos_tasks:soak_settings"
#: Jobs enqueued per second, in a mix of the four kinds.
RATE = 80


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.chaos
@pytest.mark.timeout(SECONDS + 240)
async def test_a_soak_with_kills_stays_flat_and_completes_every_job(
    redis_factory: Callable[..., RedisServer],
    spawn: Callable[..., WorkerProcess],
    figures: Callable[[str], None],
) -> None:
    server = redis_factory()
    name = unique("soak")
    rng = random.Random(name)
    # Workflows keep their record as long as the producer's keep_result says: 5 s, as workers.
    async with Queue(server.url, name=name, keep_result=5.0) as queue:
        steady = spawn(server.url, name, settings=SETTINGS)  # never killed: its RSS is watched
        victim = spawn(server.url, name, settings=SETTINGS)
        expected: list[str] = []  # ids of jobs whose body adds itself to SOAK_DONE
        samples: list[tuple[float, float, float, int]] = []  # (t, rss MB, redis MB, keys)
        kills = 0
        started = time.monotonic()
        next_kill = started + KILL_EVERY
        next_sample = started + 5
        n = 0
        while (now := time.monotonic()) - started < SECONDS:
            batch = []
            for _ in range(RATE // 10):
                n += 1
                kind = n % 4
                if kind == 3:
                    flow = await queue.enqueue(chain(soak_plain.s(n), soak_step.s(1)))
                    expected += [f"{flow.id}.0", f"{flow.id}.1"]
                else:
                    batch.append(((soak_plain, soak_flaky, soak_rated)[kind], (n,), {}))
            expected += [j.id for j in await queue.enqueue_many(batch)]
            if now >= next_kill:
                victim.kill()
                victim = spawn(server.url, name, settings=SETTINGS)
                kills += 1
                next_kill = now + KILL_EVERY * rng.uniform(0.8, 1.2)
            if now >= next_sample:
                memory = (await queue.client.info("memory"))["used_memory"] / 2**20
                keys = int(await queue.client.dbsize())
                samples.append((now - started, _rss_mb(steady.pid), memory, keys))
                next_sample = now + 5
            await asyncio.sleep(0.1)
        produced_for = time.monotonic() - started

        async def all_done() -> bool:
            return int(await queue.client.scard(SOAK_DONE)) >= len(expected)

        await wait_until(all_done, 120, f"all {len(expected)} job bodies to complete", 0.5)
        done = {m.decode() for m in await queue.client.smembers(SOAK_DONE)}
        ticks = int(await queue.client.get("chaos-soak:ticks") or 0)
        dead = await queue.dead_letters()
        codes = [await steady.astop(), await victim.astop()]
    third = samples[len(samples) // 3]
    last = samples[-1]
    figures(
        f"seconds={produced_for:.0f} jobs={len(expected)} kills={kills} cron_ticks={ticks} "
        f"completed={len(done & set(expected))} dead_letters={len(dead)} "
        f"worker_rss_mb={third[1]:.1f}->{last[1]:.1f} redis_mb={third[2]:.1f}->{last[2]:.1f} "
        f"keys={third[3]}->{last[3]}"
    )
    assert set(expected) <= done, f"{len(set(expected) - done)} job(s) never completed"
    assert dead == []
    assert kills >= 3
    assert ticks >= produced_for * 0.8, "cron kept ticking through the kills"
    assert codes == [0, 0]
    # Flat: from a third of the way in (warm) to the end, under a steady load.
    assert last[1] - third[1] < 15, f"worker RSS grew {third[1]:.1f} -> {last[1]:.1f} MB"
    assert last[2] < third[2] * 1.5 + 5, f"Redis memory grew {third[2]:.1f} -> {last[2]:.1f} MB"
    assert last[3] < third[3] * 1.5 + 500, f"keys grew {third[3]} -> {last[3]}"
