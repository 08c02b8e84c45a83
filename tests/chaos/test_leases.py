"""Scenario 5: long jobs keep their leases; a blocked event loop is noticed, and its job is
recovered only once its lease has really run out."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from asyncjobs import JobStatus, Queue

from ..redis_server import RedisServer
from .chaos_tasks import settings, timed
from .helpers import WorkerProcess, unique, wait_until

LEASE_MS = int(settings.lease_seconds * 1000)


def _runs(entries: list[bytes]) -> list[tuple[int, int, int]]:
    """The task's log of its runs: (worker pid, try, claim time in Redis ms)."""
    out = []
    for entry in entries:
        pid, attempt, claimed = entry.decode().split()
        out.append((int(pid), int(attempt), int(claimed)))
    return out


async def _workers_ready(queue: Queue, count: int) -> None:
    async def registered() -> bool:
        return await queue.client.zcard(queue.keys_for(queue.name).workers) >= count

    await wait_until(registered, 20, f"{count} workers to register")


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_a_job_three_leases_long_keeps_its_lease(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    url, name = chaos_redis.url, unique("long")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    workers = [spawn(url, name) for _ in range(2)]  # a second worker that could steal it
    async with Queue(url, name=name) as queue:
        await _workers_ready(queue, 2)
        job = await queue.enqueue(timed, runs_key, 3 * settings.lease_seconds)
        pid = await job.result(timeout=30)
        info = await job.info()
        runs = _runs(await queue.client.lrange(runs_key, 0, -1))
        await queue.client.delete(runs_key)
    codes = [await w.astop() for w in workers]
    logs = "".join(w.log_text() for w in workers)
    lease = settings.lease_seconds
    figures(f"job of {3 * lease:g}s, lease {lease:g}s: runs={len(runs)}")
    assert info.status is JobStatus.SUCCEEDED and info.attempts == 1
    assert [r[0] for r in runs] == [pid], "it ran once, in the worker that returned"
    assert "lost the lease" not in logs and "outcome refused" not in logs, logs
    assert codes == [0, 0]


@pytest.mark.chaos
@pytest.mark.timeout(60)
async def test_a_blocked_event_loop_is_detected_and_its_job_recovered_after_the_lease(
    chaos_redis: RedisServer,
    spawn: Callable[..., WorkerProcess],
    no_key_leaks: Callable[[str, str], None],
    figures: Callable[[str], None],
) -> None:
    url, name = chaos_redis.url, unique("block")
    runs_key = f"chaos-runs:{name}"
    no_key_leaks(url, name)
    workers = [spawn(url, name) for _ in range(2)]
    async with Queue(url, name=name) as queue:
        await _workers_ready(queue, 2)
        # Blocked for half a lease: renewals are late, but the lease never runs out.
        short = await queue.enqueue(timed, runs_key + ":short", 0.0, 0.5 * settings.lease_seconds)
        await short.result(timeout=20)
        short_runs = _runs(await queue.client.lrange(runs_key + ":short", 0, -1))
        # Blocked for 2.5 leases: the other worker must take the job over, but only after the
        # lease deadline the claim set (claim time + lease), never before.
        job = await queue.enqueue(timed, runs_key, 0.0, 2.5 * settings.lease_seconds)
        winner = await job.result(timeout=30)
        info = await job.info()
        runs = _runs(await queue.client.lrange(runs_key, 0, -1))
        (blocked_pid, _, first_claim), *_ = runs
        blocked = next(w for w in workers if w.pid == blocked_pid)

        async def refused() -> bool:
            return "outcome refused" in blocked.log_text()

        await wait_until(refused, 15, "the blocked worker's late outcome to be refused")
        assert await job.result(timeout=1) == winner, "the refused outcome changed nothing"
        succeeded = int(await queue.client.hget(queue.keys_for(name).stats, "succeeded") or 0)
        await queue.client.delete(runs_key, runs_key + ":short")
    codes = [await w.astop() for w in workers]
    figures(
        f"short block runs={len(short_runs)}; long block runs={len(runs)}, "
        f"taken over {runs[-1][2] - first_claim} ms after the claim (lease {LEASE_MS} ms)"
    )
    assert len(short_runs) == 1, f"a block shorter than the lease costs no second run: {short_runs}"
    assert len(runs) == 2, f"ran twice, not more: {runs}"
    (_, try1, _), (rescuer_pid, try2, second_claim) = runs
    assert (try1, try2) == (1, 2) and rescuer_pid != blocked_pid
    assert second_claim - first_claim >= LEASE_MS, "recovered only after the lease ran out"
    assert winner == rescuer_pid and info.attempts == 2
    assert info.status is JobStatus.SUCCEEDED and succeeded == 2, "each job recorded once"
    assert "event loop was blocked" in blocked.log_text()
    assert codes == [0, 0]
