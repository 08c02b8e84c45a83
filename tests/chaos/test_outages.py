"""Scenarios 2 and 3: Redis restarts and cut connections; the worker and client ride them out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from asyncjobs import JobStatus, Queue

from ..redis_server import RedisServer
from .chaos_tasks import record, timed
from .helpers import WorkerProcess, scaled, unique, wait_until
from .outages import problem_lines, run_through_outages
from .proxy import ChaosProxy

#: A worker logs the loss of Redis a bounded number of times per outage, not once per attempt:
#: the claim loop once, lease upkeep once per tick (every lease_seconds/3), each pending report
#: once per backoff step. 25 lines per outage of about a second leaves room for all of that.
LOG_LINES_PER_OUTAGE = 25


@pytest.mark.chaos
@pytest.mark.timeout(120)
async def test_redis_restarts_lose_no_enqueued_job(
    redis_factory: Callable[..., RedisServer],
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    server = redis_factory("--appendonly", "yes", "--appendfsync", "always")
    name = unique("restart")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(server.url, name)
    restarts = scaled(2)

    async def restart(_: int) -> None:
        await asyncio.to_thread(server.stop)  # SIGTERM to its PID; AOF keeps the data
        await asyncio.sleep(1.0)
        await asyncio.to_thread(server.start)  # same port, same dir

    worker = spawn(server.url, name)
    async with Queue(server.url, name=name) as queue:
        run = await run_through_outages(queue, worker, runs_key, restart, restarts)
        await queue.client.delete(runs_key)
    code = await worker.astop()
    log = worker.log_text()
    problems = problem_lines(log)
    figures(f"restarts={restarts} {run.summary()} worker_log_lines={len(problems)}")
    assert run.not_succeeded == 0, run.summary()
    assert set(run.enqueue_errors) <= {"RedisUnavailable"}, "every Redis fault is one error"
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert any("lost Redis" in line for line in problems), "the outage is logged"
    assert len(problems) <= LOG_LINES_PER_OUTAGE * restarts, "\n".join(problems)


@pytest.mark.chaos
@pytest.mark.timeout(120)
async def test_cut_connections_lose_no_enqueued_job(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    proxy = await ChaosProxy("127.0.0.1", chaos_redis.port).start()
    name = unique("cut")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(chaos_redis.url, name)
    cuts = scaled(4, minimum=3)
    cut_sizes: list[int] = []

    async def cut(_: int) -> None:
        cut_sizes.append(proxy.cut())

    try:
        worker = spawn(proxy.url, name)
        async with Queue(proxy.url, name=name) as queue:
            run = await run_through_outages(queue, worker, runs_key, cut, cuts)
            await queue.client.delete(runs_key)
        code = await worker.astop()
    finally:
        await proxy.close()
    log = worker.log_text()
    problems = problem_lines(log)
    figures(
        f"cuts={cuts} connections_cut={cut_sizes} {run.summary()} worker_log_lines={len(problems)}"
    )
    assert run.not_succeeded == 0, run.summary()
    assert min(cut_sizes) >= 2, "each cut hit the worker's and the client's connections"
    assert set(run.enqueue_errors) <= {"RedisUnavailable"}, "every Redis fault is one error"
    assert code == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert len(problems) <= LOG_LINES_PER_OUTAGE * cuts, "\n".join(problems)


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_latency_does_not_cost_a_healthy_job_its_lease(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    """40 ms each way (80 ms round trips) against a 1 s lease renewed every third of it."""
    proxy = await ChaosProxy("127.0.0.1", chaos_redis.port, latency=0.04).start()
    name = unique("latency")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(chaos_redis.url, name)
    try:
        worker = spawn(proxy.url, name)
        async with Queue(proxy.url, name=name) as queue:
            long_job = await queue.enqueue(timed, runs_key, 3.0)  # 3x lease_seconds
            quick = await queue.enqueue_many([(record, (runs_key + ":q",), {}) for _ in range(50)])
            pid = await long_job.result(timeout=30)
            for job in quick:
                await job.result(timeout=30)
            info = await long_job.info()
            runs = await queue.client.lrange(runs_key, 0, -1)
            await queue.client.delete(runs_key, runs_key + ":q")
        code = await worker.astop()
    finally:
        await proxy.close()
    log = worker.log_text()
    figures(f"latency=40ms/direction long_job_runs={len(runs)} attempts={info.attempts}")
    assert pid == worker.pid
    assert info.status is JobStatus.SUCCEEDED and info.attempts == 1
    assert len(runs) == 1, f"the long job ran exactly once: {runs}"
    assert "lost the lease" not in log and "outcome refused" not in log, log[-3000:]
    assert code == 0


@pytest.mark.chaos
@pytest.mark.timeout(90)
async def test_an_outage_under_load_is_logged_a_bounded_number_of_times(
    redis_factory: Callable[..., RedisServer],
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    server = redis_factory("--appendonly", "yes", "--appendfsync", "always")
    name = unique("loud")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(server.url, name)
    worker = spawn(server.url, name)
    async with Queue(server.url, name=name) as queue:
        # 100 jobs (the worker's concurrency) that each use Redis again after 1.5 s, as most
        # real tasks do: Redis goes away while all of them are running, and stays away past
        # their end, so each one's failure report has to wait for it.
        jobs = await queue.enqueue_many([(record, (runs_key, 1500, True), {}) for _ in range(100)])

        async def all_running() -> bool:
            return await queue.client.zcard(queue.keys_for(name).leases) == 100

        await wait_until(all_running, 20, "all 100 jobs to be running")
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(2.5)
        await asyncio.to_thread(server.start)
        for job in jobs:
            await job.result(timeout=60)
        await queue.client.delete(runs_key, runs_key + ":done")
    assert worker.alive(), worker.log_text()[-3000:]
    code = await worker.astop()
    problems = problem_lines(worker.log_text())
    figures(f"jobs_in_flight=100 outage_s=2.5 worker_log_lines={len(problems)}")
    assert code == 0 and not [p for p in problems if "Traceback" in p]
    assert len(problems) <= LOG_LINES_PER_OUTAGE, f"{len(problems)} lines:\n" + "\n".join(
        problems[:40]
    )
