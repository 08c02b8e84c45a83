"""Scenario 1: workers SIGKILLed again and again under load; nothing is lost."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable

import pytest

from asyncjobs import Queue

from ..redis_server import RedisServer
from .chaos_tasks import record
from .helpers import SCALE, WorkerProcess, run_counts, scaled, stat, statuses, unique, wait_until

#: 10,000 jobs at scale 1. Each holds its slot HOLD_MS, so three workers of concurrency 100
#: need at least 10,000 x 0.5 s / 300 slots = 17 s for them, while the kills take about 1.6 s
#: each (a pause, then the lease of 1 s running out): every kill hits a worker under load.
#: Below scale 1 the jobs hold their slots longer, so the run still outlasts the kills.
JOBS = 10_000
HOLD_MS = round(500 * max(1.0, 1 / SCALE))
WORKERS = 3


async def _victim_in_flight(queue: Queue, leases_key: str, pid: int) -> int:
    """How many leased jobs the worker with this PID holds (its id is host:pid:random)."""
    ids = await queue.client.zrange(leases_key, 0, -1)
    prefix = queue.keys_for(queue.name).job_prefix
    async with queue.client.pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(prefix + job_id.decode(), "worker")
        owners = await pipe.execute()
    return sum(1 for o in owners if o and f":{pid}:" in o.decode())


@pytest.mark.chaos
@pytest.mark.timeout(180)
async def test_sigkilled_workers_lose_no_job(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    n, kills_wanted = scaled(JOBS), scaled(6, minimum=5)
    url, name = chaos_redis.url, unique("kill")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    rng = random.Random(name)
    async with Queue(url, name=name) as queue:
        keys = queue.keys_for(name)
        jobs = []
        for start in range(0, n, 2000):
            batch = [(record, (runs_key, HOLD_MS), {}) for _ in range(min(2000, n - start))]
            jobs += await queue.enqueue_many(batch)
        t0 = time.monotonic()
        workers = [spawn(url, name) for _ in range(WORKERS)]
        in_flight_at_kills, victim_jobs, recover_times = 0, [], []
        while len(victim_jobs) < kills_wanted:
            await asyncio.sleep(rng.uniform(0.3, 0.8))
            # Kill only a worker that holds jobs (a fresh one may not have claimed yet).
            held_by = {w.pid: await _victim_in_flight(queue, keys.leases, w.pid) for w in workers}
            busy = [w for w in workers if held_by[w.pid] > 0]
            if not busy:
                assert time.monotonic() - t0 < 60, "the workers never got busy"
                continue
            victim = rng.choice(busy)
            in_flight_at_kills += await queue.client.zcard(keys.leases)
            held = held_by[victim.pid]
            recovered_before = await stat(queue.client, keys.stats, "recovered")
            victim.kill()
            killed_at = time.monotonic()
            workers[workers.index(victim)] = spawn(url, name)
            victim_jobs.append(held)

            async def recovered(before: int = recovered_before) -> bool:
                return await stat(queue.client, keys.stats, "recovered") > before

            await wait_until(recovered, 15, "the killed worker's jobs to be put back")
            recover_times.append(time.monotonic() - killed_at)
        last_kill = time.monotonic()
        remaining = n - await stat(queue.client, keys.stats, "succeeded")
        assert remaining > 0, "the kills all happened under load"

        async def all_done() -> bool:
            return await stat(queue.client, keys.stats, "succeeded") >= n

        await wait_until(all_done, 120, f"all {n} jobs to succeed", interval=0.2)
        drained = time.monotonic()
        codes = [w.stop() for w in workers]

        states = await statuses(queue.client, keys.job_prefix, [j.id for j in jobs])
        runs = await run_counts(queue.client, runs_key)
        await queue.client.delete(runs_key)
        dead = await queue.dead_letters()
    lost = sum(1 for s in states if s != "succeeded")
    duplicates = sum(1 for j in jobs if runs.get(j.id, 0) >= 2)
    figures(
        f"jobs={n} kills={kills_wanted} lost={lost} duplicates={duplicates} "
        f"in_flight_at_kills={in_flight_at_kills} victims_held={victim_jobs} "
        f"recover_s=[{', '.join(f'{t:.2f}' for t in recover_times)}] left_at_last_kill={remaining} "
        f"drain_after_last_kill_s={drained - last_kill:.1f} total_s={drained - t0:.1f}"
    )
    assert lost == 0, f"{lost} job(s) did not succeed"
    assert dead == []
    assert all(runs.get(j.id, 0) >= 1 for j in jobs), "every job ran at least once"
    assert duplicates <= in_flight_at_kills
    assert max(runs.values()) <= kills_wanted + 1
    assert codes == [0] * WORKERS, "the surviving workers stop cleanly on SIGTERM"
    for worker in workers:
        assert "Traceback" not in worker.log_text()


@pytest.mark.chaos
@pytest.mark.timeout(120)
async def test_a_crashed_workers_jobs_finish_about_one_lease_later(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    """One worker holds 100 jobs of 3 s and is SIGKILLed while two others, with free slots,
    run jobs enqueued after them. Its jobs run again at full concurrency, first in line: they
    finish within the lease (1 s) plus about one job duration, not one at a time per worker
    (which took 150 s here)."""
    url, name = chaos_redis.url, unique("collateral")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    hold_ms = 3000
    async with Queue(url, name=name) as queue:
        keys = queue.keys_for(name)
        victim = spawn(url, name, extra=("--concurrency", "100"))
        crashed = await queue.enqueue_many([(record, (runs_key, hold_ms), {}) for _ in range(100)])

        async def all_claimed() -> bool:
            return await queue.client.zcard(keys.leases) == 100

        await wait_until(all_claimed, 20, "the victim to hold all 100 jobs")
        survivors = [spawn(url, name, extra=("--concurrency", "100")) for _ in range(2)]

        async def three_alive() -> bool:
            return await queue.client.zcard(keys.workers) == 3

        await wait_until(three_alive, 20, "the other two workers to start")
        waiting = await queue.enqueue_many([(record, (runs_key, 500), {}) for _ in range(100)])
        victim.kill()
        killed_at = time.monotonic()

        async def collateral_done() -> bool:
            states = await statuses(queue.client, keys.job_prefix, [j.id for j in crashed])
            return all(s == "succeeded" for s in states)

        await wait_until(collateral_done, 180, "the crashed worker's jobs to succeed")
        took = time.monotonic() - killed_at

        async def all_done() -> bool:
            states = await statuses(queue.client, keys.job_prefix, [j.id for j in waiting])
            return all(s == "succeeded" for s in states)

        await wait_until(all_done, 60, "every other job to succeed")
        runs = await run_counts(queue.client, runs_key)
        await queue.client.delete(runs_key)
        for worker in survivors:
            await worker.astop()
    figures(
        f"collateral=100 job_s={hold_ms / 1000} lease_s=1.0 collateral_done_after_kill_s={took:.2f}"
    )
    assert all(runs[j.id] == 2 for j in crashed), "each crashed job ran once more"
    assert all(runs[j.id] == 1 for j in waiting)
    assert took < 1.0 * 4 / 3 + 2 * hold_ms / 1000 + 2, f"the collateral took {took:.1f}s"
