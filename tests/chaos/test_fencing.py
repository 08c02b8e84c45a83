"""Scenario 6: fencing by lease token, racing claimers, and a job that kills its workers."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable

import pytest

from asyncjobs import JobStatus, Queue

from ..redis_server import RedisServer
from .chaos_tasks import kill_my_worker, poison_settings, record, timed
from .helpers import WorkerProcess, run_counts, scaled, stat, statuses, unique, wait_until


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_a_paused_worker_cannot_overwrite_the_outcome_of_the_one_that_reclaimed(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    url, name = chaos_redis.url, unique("fence")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    workers = [spawn(url, name) for _ in range(2)]
    async with Queue(url, name=name) as queue:
        keys = queue.keys_for(name)

        async def registered() -> bool:
            return await queue.client.zcard(keys.workers) >= 2

        await wait_until(registered, 20, "both workers to register")
        job = await queue.enqueue(timed, runs_key, 1.0)  # holds its slot 1 s, awaiting

        async def first_run() -> bytes | None:
            return await queue.client.lindex(runs_key, 0)

        paused_pid = int((await wait_until(first_run, 20, "the first try to start")).split()[0])
        paused = next(w for w in workers if w.pid == paused_pid)
        paused.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            winner = await job.result(timeout=20)  # the other worker reclaims and finishes it
            took_over = time.monotonic() - stopped_at
        finally:
            paused.signal(signal.SIGCONT)

        async def refused() -> bool:
            return "outcome refused" in paused.log_text()

        await wait_until(refused, 15, "the paused worker's outcome to be refused")
        info = await job.info()
        runs = await queue.client.lrange(runs_key, 0, -1)
        succeeded = await stat(queue.client, keys.stats, "succeeded")
        await queue.client.delete(runs_key)
    codes = [await w.astop() for w in workers]
    figures(f"runs={len(runs)} recorded={succeeded} taken_over_after_s={took_over:.2f}")
    assert winner != paused_pid and winner in {w.pid for w in workers}
    assert info.result == winner, "the reclaimer's outcome stays"
    # At least twice: the paused try and the reclaimer's. There can be one more: the paused
    # worker's claim, pipelined behind its blocking wait, is still run by Redis when the
    # recovery wakes it, so that frozen worker may hold the job for one more lease (its try
    # then starts, and is refused, after SIGCONT). What may never happen is a second outcome.
    assert info.status is JobStatus.SUCCEEDED and info.attempts == len(runs) >= 2
    assert succeeded == 1, "the job is recorded once, however often it ran"
    tries = sorted(int(run.split()[1]) for run in runs)
    assert tries == list(range(1, len(runs) + 1)), "each try ran once"
    assert codes == [0, 0]


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_racing_workers_run_each_ready_job_exactly_once(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    n = scaled(2000)
    url, name = chaos_redis.url, unique("race")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    async with Queue(url, name=name) as queue:
        jobs = await queue.enqueue_many([(record, (runs_key,), {}) for _ in range(n)])
        workers = [spawn(url, name, extra=("--burst",)) for _ in range(4)]  # all race at once
        started = time.monotonic()
        codes = await asyncio.gather(
            *(asyncio.to_thread(w.proc.wait, 60) for w in workers)  # type: ignore[union-attr]
        )
        took = time.monotonic() - started
        runs = await run_counts(queue.client, runs_key)
        states = await statuses(queue.client, queue.keys_for(name).job_prefix, [j.id for j in jobs])
        await queue.client.delete(runs_key)
    per_worker = [w.log_text().count("Traceback") for w in workers]
    figures(f"jobs={n} workers=4 duplicates={sum(1 for v in runs.values() if v > 1)} s={took:.1f}")
    assert codes == [0, 0, 0, 0] and per_worker == [0, 0, 0, 0]
    assert states == ["succeeded"] * n
    assert sorted(runs) == sorted(j.id for j in jobs)
    assert set(runs.values()) == {1}, "each job ran exactly once"


async def _run_poison_pill(
    url: str, name: str, spawn: Callable[..., WorkerProcess], others: int
) -> tuple[dict[str, object], list[WorkerProcess]]:
    """Two workers (max_stalls 3); one pill enqueued first, then ``others`` jobs; every killed
    worker is replaced at once. Returns the figures and every worker process started."""
    runs_key = f"chaos-runs:{name}"
    settings = "tests.chaos.chaos_tasks:poison_settings"
    async with Queue(url, name=name) as queue:
        keys = queue.keys_for(name)
        pill = await queue.enqueue(kill_my_worker, runs_key)
        jobs = await queue.enqueue_many([(record, (runs_key, 20), {}) for _ in range(others)])
        started = [spawn(url, name, settings=settings) for _ in range(2)]
        live = list(started)
        restarts = 0

        async def settled() -> bool:
            nonlocal restarts
            for i, worker in enumerate(live):
                if not worker.alive():
                    worker.kill()  # reap it
                    live[i] = spawn(url, name, settings=settings)
                    started.append(live[i])
                    restarts += 1
            states = await statuses(queue.client, keys.job_prefix, [pill.id] + [j.id for j in jobs])
            return all(s in ("succeeded", "failed") for s in states)

        await wait_until(settled, 60, "the pill to be dead-lettered and every other job to end")
        # The restarted workers keep serving: a fresh batch runs to the end.
        later = await queue.enqueue_many([(record, (runs_key,), {}) for _ in range(50)])
        for job in later:
            await job.result(timeout=30)
        dead = {d.id: d for d in await queue.dead_letters(limit=10_000)}
        runs = await run_counts(queue.client, runs_key)
        states = await statuses(queue.client, keys.job_prefix, [j.id for j in jobs])
        await queue.client.delete(runs_key)
    collateral = [d.error for i, d in dead.items() if i != pill.id]
    out = {
        "pill_error": dead[pill.id].error if pill.id in dead else None,
        "pill_runs": runs.get(pill.id, 0),
        "restarts": restarts,
        "others_succeeded": states.count("succeeded"),
        "collateral": len(collateral),
        "collateral_errors": sorted({(e or "").split(":")[0] for e in collateral}),
    }
    for worker in live:
        await worker.astop()
    return out, started


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_a_job_that_kills_its_workers_ends_as_a_poison_pill(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    url, name = chaos_redis.url, unique("pill")
    no_key_leaks(url, name)
    seen, started = await _run_poison_pill(url, name, spawn, others=300)
    figures(" ".join(f"{k}={v}" for k, v in seen.items()))
    assert str(seen["pill_error"]).split(":")[0] in ("PoisonPill", "WorkerLost")
    # Deaths in company are not blamed: the pill's first crash puts it (and the jobs that died
    # with it) first in line at full concurrency; a second crash in company makes it a suspect,
    # run one per worker; then it is dead-lettered after killing its worker max_stalls times as
    # the suspect. So at most two runs in company, then max_stalls on its own.
    stalls = poison_settings.max_stalls
    assert stalls <= seen["pill_runs"] <= stalls + 2
    assert seen["restarts"] == seen["pill_runs"], "one killed worker per run of it"
    assert seen["others_succeeded"] + seen["collateral"] == 300, "no other job was lost"
    assert all("Traceback" not in w.log_text() for w in started)


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_jobs_claimed_alongside_a_poison_pill_are_not_dead_lettered(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
) -> None:
    url, name = chaos_redis.url, unique("pill2")
    no_key_leaks(url, name)
    seen, _ = await _run_poison_pill(url, name, spawn, others=300)
    assert seen["collateral"] == 0, seen
