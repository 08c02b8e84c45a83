"""Operating queues from Python on every backend: pause, stats with history, browsing,
purge, forget, workers, and jobs whose task a worker does not know."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Awaitable
from typing import Any

import pytest

from asyncjobs import Context, JobFailed, JobStatus, Queue, task
from asyncjobs._errors import QueueInUse
from asyncjobs._presence import app_fingerprint
from asyncjobs._store import Store

from .conftest import run_burst
from .waiting import wait_until


@task(name="ops_add", backoff=0)
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


@task(name="ops_flaky", backoff=0, max_tries=2)
async def flaky(ctx: Context) -> str:
    if ctx.attempt == 1:
        raise ConnectionError("first try fails")
    return "ok"


@task(name="ops_broken", retry_on=())
async def broken(ctx: Context) -> None:
    raise ValueError("always")


@pytest.fixture
def claims(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts every claim a worker makes (each claim reply passes through parse_claim)."""
    seen: list[int] = []
    original = Store.parse_claim

    def counted(reply: list[Any]) -> Any:
        claim = original(reply)
        seen.append(len(claim.jobs))
        return claim

    monkeypatch.setattr(Store, "parse_claim", staticmethod(counted))
    return seen


# -- pause ------------------------------------------------------------------------------------


async def test_a_paused_queue_holds_its_jobs_while_its_worker_blocks(
    queue: Queue, start_worker: Any, claims: list[int]
) -> None:
    assert await queue.pause() and not await queue.pause(), "the second pause changes nothing"
    worker = await start_worker([add], queues=[queue.name, f"{queue.name}-open"])
    # its first round claims each of its two queues once, then it blocks
    await wait_until(lambda: _true(len(claims) >= 2), what="the worker's first claims")
    made = len(claims)
    jobs = [await queue.enqueue(add, i, i) for i in range(3)]
    await asyncio.sleep(1.0)  # a window to watch: nothing may claim in it
    assert len(claims) == made, "an idle worker of a paused queue blocks; it does not poll"
    assert [await j.status() for j in jobs] == [JobStatus.QUEUED] * 3
    elsewhere = await queue.enqueue(add, 5, 5, _queue_name=f"{queue.name}-open")
    assert await elsewhere.result(timeout=5) == 10, "the worker woke for its other queue"
    assert [await j.status() for j in jobs] == [JobStatus.QUEUED] * 3, "and claimed none here"
    stats = await queue.stats()
    assert stats.paused and stats.paused_at is not None and stats.queued == 3
    assert stats.workers == 1 and await queue.is_paused()

    started = time.monotonic()
    assert await queue.resume() and not await queue.resume()
    assert [await j.result(timeout=5) for j in jobs] == [0, 2, 4]
    assert time.monotonic() - started < 1.0, "resume wakes the blocked worker at once"
    assert not await queue.is_paused()
    # the count follows the ack's reply, a moment after the results are readable
    await wait_until(lambda: _true(worker.jobs_done == 4), what="the worker to count 4 jobs")


async def test_running_jobs_finish_while_paused_and_pause_outlives_a_restart(
    queue: Queue, start_worker: Any
) -> None:
    gate = asyncio.Event()

    @task(name="ops_gated")
    async def gated(ctx: Context) -> str:
        await gate.wait()
        return "done"

    first = await start_worker([gated, add])
    running = await queue.enqueue(gated)
    await wait_until(lambda: _is(running.status(), JobStatus.IN_PROGRESS), what="the job to start")
    await queue.pause()
    waiting = await queue.enqueue(add, 1, 1)
    gate.set()
    assert await running.result(timeout=5) == "done", "a running job finishes normally"
    first.stop()
    await wait_until(lambda: _true(not queue.store or first.jobs_done >= 1))

    await run_burst(queue, [add])  # a new worker: the queue is still paused
    assert await waiting.status() is JobStatus.QUEUED
    await start_worker([add])
    await queue.resume()
    assert await waiting.result(timeout=5) == 2


async def test_deferred_jobs_of_a_paused_queue_wait_past_their_due_time(
    queue: Queue, start_worker: Any, claims: list[int]
) -> None:
    await queue.pause()
    # due after the worker's first claim (a claim past the due time moves the job to the
    # paused ready set, as it should: a loaded machine can take longer than 0.2 s to start one)
    job = await queue.enqueue(add, 2, 3, _defer_by=1.0)
    due = time.monotonic() + 1.0
    await start_worker([add])
    await wait_until(lambda: _true(len(claims) >= 1), what="the worker's first claim")
    made = len(claims)
    first_claim_before_due = time.monotonic() < due
    await asyncio.sleep(due + 0.3 - time.monotonic())  # past the due time
    assert len(claims) == made, "no timer wakes a paused queue's worker"
    if first_claim_before_due:
        assert await job.status() is JobStatus.DEFERRED
    await queue.resume()
    assert await job.result(timeout=5) == 5


# -- stats and history -----------------------------------------------------------------------


async def test_stats_count_what_ran_per_minute_and_per_hour(queue: Queue) -> None:
    for i in range(3):
        await queue.enqueue(add, i, 1)
    await queue.enqueue(flaky)
    await queue.enqueue(broken)
    cancelled = await queue.enqueue(add, 0, 0, _defer_by=60)
    await cancelled.cancel()
    await run_burst(queue, [add, flaky, broken])

    stats = await queue.stats()
    assert (stats.succeeded, stats.failed, stats.retried, stats.cancelled) == (4, 1, 1, 1)
    assert stats.enqueued == 6 and stats.dead_letters == 1 and not stats.paused
    assert len(stats.history) == 60
    minutes = [b.minute for b in stats.history]
    assert minutes == sorted(minutes) and minutes[-1] <= stats.as_of
    assert (stats.as_of - minutes[-1]).total_seconds() < 60, "the last bucket is the current minute"
    for outcome, n in (("succeeded", 4), ("failed", 1), ("retried", 1), ("cancelled", 1)):
        assert sum(getattr(b, outcome) for b in stats.history) == n, outcome
        assert sum(getattr(b, outcome) for b in stats.hourly) == n, outcome
    assert len(stats.hourly) == 72
    short = await queue.stats(minutes=5, hours=0)
    assert len(short.history) == 5 and short.hourly == []
    with pytest.raises(ValueError, match="480 minutes"):
        await queue.stats(minutes=481)


async def test_minute_buckets_expire_eight_hours_after_their_minute(redis_url: str) -> None:
    async with Queue(redis_url, name=f"hist-{os.urandom(4).hex()}") as queue:
        await queue.enqueue(add, 1, 2)
        await run_burst(queue, [add])
        keys = queue.keys_for(queue.name)
        [bucket] = [k async for k in queue.client.scan_iter(match=keys.minute_prefix + "*")]
        minute = int(bucket.decode().rsplit(":", 1)[1])
        expires = await queue.client.execute_command("PEXPIRETIME", bucket)
        assert expires == (minute + 1) * 60_000 + 8 * 3_600_000
        assert await queue.client.hgetall(bucket) == {b"succeeded": b"1"}


# -- browsing -------------------------------------------------------------------------------


async def test_jobs_lists_each_status_in_its_order(queue: Queue, start_worker: Any) -> None:
    low = await queue.enqueue(add, 1, 0)
    high = await queue.enqueue(add, 2, 0, _priority=5)
    later = await queue.enqueue(add, 3, 0, _defer_by=120)
    sooner = await queue.enqueue(add, 4, 0, _defer_by=60)
    queued = await queue.jobs(JobStatus.QUEUED)
    assert [j.id for j in queued] == [high.id, low.id], "in the order they will be claimed"
    assert [j.id for j in await queue.jobs("deferred")] == [sooner.id, later.id]
    assert [j.id for j in await queue.jobs(JobStatus.QUEUED, offset=1, limit=1)] == [low.id]
    assert await queue.jobs(JobStatus.QUEUED, offset=2) == []

    await later.cancel()
    await sooner.cancel()
    await queue.enqueue(broken)
    await run_burst(queue, [add, broken])
    done = await queue.jobs(JobStatus.SUCCEEDED)
    assert [j.id for j in done] == [low.id, high.id], "newest first"
    assert {j.id for j in await queue.jobs(JobStatus.CANCELLED)} == {later.id, sooner.id}
    [dead] = await queue.jobs(JobStatus.FAILED)
    assert dead.task == "ops_broken" and dead.dead_letter_id and dead.error_type == "ValueError"

    gate = asyncio.Event()

    @task(name="ops_wait")
    async def wait(ctx: Context) -> None:
        await gate.wait()

    worker = await start_worker([wait])
    busy = await queue.enqueue(wait)
    await wait_until(lambda: _is(busy.status(), JobStatus.IN_PROGRESS))
    [running] = await queue.jobs(JobStatus.IN_PROGRESS)
    assert running.id == busy.id and running.worker == worker.id
    gate.set()
    with pytest.raises(ValueError, match="unknown job status 'lost'"):
        await queue.jobs("lost")
    with pytest.raises(ValueError, match="limit"):
        await queue.jobs(limit=0)


async def test_find_job_looks_in_every_known_queue(queue: Queue) -> None:
    other = f"{queue.name}-other"
    job = await queue.enqueue(add, 1, 1, _queue_name=other)
    found = await queue.find_job(job.id)
    assert found is not None and found.queue == other and found.status is JobStatus.QUEUED
    assert await queue.find_job("no-such-job") is None


async def test_paging_100k_queued_jobs_reads_one_page(redis_url: str) -> None:
    """The Redis commands one page costs, counted by the server: one range, one read per job."""
    async with Queue(redis_url, name=f"page-{os.urandom(4).hex()}", keep_result=1) as queue:
        ids = [f"j{i:06d}" for i in range(100_000)]
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            await queue.enqueue_many([(add, (1, 1), {"_job_id": i}) for i in chunk])
        r = queue.client

        async def calls() -> dict[str, int]:
            stats = await r.info("commandstats")
            return {name: int(v["calls"]) for name, v in stats.items()}

        for offset in (0, 70_000, 99_950):
            await queue.partitions()  # the layout read now, so the page does not re-read it
            before = await calls()
            page = await queue.jobs(JobStatus.QUEUED, offset=offset, limit=50)
            after = await calls()
            assert [j.id for j in page] == ids[offset : offset + 50]
            used = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k)}
            used.pop("cmdstat_info", None)
            assert used == {"cmdstat_zrange": 1, "cmdstat_hgetall": 50}, used
        assert await queue.purge() == 100_000


# -- purge ------------------------------------------------------------------------------------


async def test_purge_cancels_ready_blocked_and_deferred_jobs_but_not_running_ones(
    queue: Queue,
) -> None:
    store, keys = queue.store, queue.keys_for(queue.name)
    await store.heartbeat(keys, "w", 60_000, limits=[("ops_one", 1, 0, 0)])
    limited = [await queue.enqueue("ops_one") for _ in range(3)]
    claim = await store.claim(keys, "w", 3, 60_000, False)
    assert [j.id for j in claim.jobs] == [limited[0].id], "the others wait for the slot"
    ready = [await queue.enqueue(add, 1, 1) for _ in range(2)]
    deferred = [await queue.enqueue(add, 1, 1, _defer_by=60) for _ in range(2)]
    assert (await queue.stats()).blocked == 2

    progress: list[tuple[int, int]] = []
    assert await queue.purge(on_progress=lambda d, t: progress.append((d, t))) == 6
    assert progress[-1] == (6, 6)
    for job in limited[1:] + ready + deferred:
        assert await job.status() is JobStatus.CANCELLED
    assert await limited[0].status() is JobStatus.IN_PROGRESS
    stats = await queue.stats()
    assert (stats.queued, stats.deferred, stats.blocked, stats.in_progress) == (0, 0, 0, 1)
    assert stats.cancelled == 6 and sum(b.cancelled for b in stats.history) == 6
    assert not await queue.client.exists(keys.groups), "no group is left listed"
    assert await queue.purge() == 0


# -- forget -----------------------------------------------------------------------------------


async def test_forget_queue_only_when_nothing_is_left(queue: Queue, start_worker: Any) -> None:
    job = await queue.enqueue(add, 1, 1)
    with pytest.raises(QueueInUse, match="1 job"):
        await queue.forget_queue(queue.name)
    worker = await start_worker([add])
    assert await job.result(timeout=5) == 2
    with pytest.raises(QueueInUse, match="live worker"):
        await queue.forget_queue(queue.name)
    worker.stop()
    await wait_until(lambda: _true_async(queue.workers()), what="the worker to leave")
    await queue.enqueue(broken)
    await run_burst(queue, [broken])
    with pytest.raises(QueueInUse, match="dead letter"):
        await queue.forget_queue(queue.name)
    await queue.purge_dead_letters()
    assert queue.name in await queue.queue_names()
    await queue.pause()
    await queue.forget_queue(queue.name)
    assert queue.name not in await queue.queue_names()
    stats = await queue.stats()
    assert (
        stats.succeeded == 0 and not stats.paused and sum(b.succeeded for b in stats.history) == 0
    )
    assert await job.result(timeout=1) == 2, "finished jobs' records stay until they expire"


# -- workers ----------------------------------------------------------------------------------


async def test_workers_describe_themselves(queue: Queue, start_worker: Any) -> None:
    worker = await start_worker([add, flaky], concurrency=7)
    await wait_until(lambda: _nonempty(queue.workers()), what="the worker's heartbeat")
    [info] = await queue.workers()
    assert info.id == worker.id and info.queues == [queue.name] and info.concurrency == 7
    assert info.running == 0 and info.host == socket.gethostname() and info.pid == os.getpid()
    assert info.app == app_fingerprint(["ops_add", "ops_flaky"])
    assert info.tasks == ["ops_add", "ops_flaky"] and info.version
    assert info.started_at is not None and info.started_at <= info.last_seen
    assert worker.id in [w.id for w in await queue.all_workers()], "(other tests' may be there)"
    worker.stop()
    await wait_until(lambda: _true_async(queue.workers()), what="the worker to leave")


# -- tasks a worker does not know -------------------------------------------------------------


@task(name="ops_app_a")
async def app_a(ctx: Context, n: int) -> str:
    return f"a{n}"


@task(name="ops_app_b")
async def app_b(ctx: Context, n: int) -> str:
    return f"b{n}"


async def test_two_apps_on_one_queue_run_each_others_jobs_not_dead_letter_them(
    queue: Queue, start_worker: Any
) -> None:
    """A job given back by the app that does not know its task is offered to the others at once
    (a claim does not take back what its worker gave back), so with both workers idle each job
    is given back at most once."""
    await start_worker([app_a], unknown_task_grace=60)
    await start_worker([app_b], unknown_task_grace=60)

    async def both_described() -> bool:  # each worker's heartbeat lists its tasks
        return len(await queue.workers()) == 2

    await wait_until(both_described, what="both workers' first heartbeats")
    jobs = await queue.enqueue_many([(t, (n,), {}) for n in range(6) for t in (app_a, app_b)])
    results = await asyncio.wait_for(asyncio.gather(*(j.result() for j in jobs)), 30)
    assert sorted(results) == sorted(f"{p}{n}" for n in range(6) for p in "ab")
    assert await queue.dead_letters() == []
    for job in jobs:
        assert (await job.info()).attempts == 1, "a give-back is not a try"
        bounces = int(
            await queue.client.hget(queue.keys_for(queue.name).job(job.id), "unknown_bounces") or 0
        )
        assert bounces <= 1, f"job {job.id} was given back {bounces} times"


async def test_a_task_no_worker_knows_is_dead_lettered_at_once(
    queue: Queue, start_worker: Any
) -> None:
    """A misspelt task name: no live worker of the queue registers it, so nothing can run it and
    waiting would only delay the error. A running worker (with the default grace of minutes)
    dead-letters it at once."""
    await start_worker([add])
    job = await queue.enqueue("ops_nobody", 1)
    with pytest.raises(JobFailed) as failed:
        await job.result(timeout=10)
    assert failed.value.error_type == "UnknownTaskError"
    assert "no task named 'ops_nobody'" in failed.value.error_message
    assert (await job.info()).attempts == 1
    assert [d.id for d in await queue.dead_letters()] == [job.id]


async def test_a_task_only_a_busy_worker_knows_waits_for_it_up_to_the_grace(
    queue: Queue, start_worker: Any
) -> None:
    """Another live worker registers the task but cannot take it (here: busy for longer than
    the grace): the job is given back, shown as waiting, then dead-lettered when the grace
    passes."""
    release = asyncio.Event()

    @task(name="ops_busy")
    async def busy(ctx: Context, n: int) -> None:
        await release.wait()

    knows = await start_worker([busy], concurrency=1)
    blocker = await queue.enqueue(busy, 0)
    await wait_until(lambda: _is(blocker.status(), JobStatus.IN_PROGRESS), what="the block")
    other = await start_worker([add], unknown_task_grace=1.0)
    job = await queue.enqueue(busy, 1)
    await wait_until(lambda: _is(job.status(), JobStatus.DEFERRED), what="the give-back")
    info = await job.info()
    assert info.error_type == "UnknownTaskError" and "waiting up to 1s" in (
        info.message or info.error or ""
    )
    [unknown] = (await queue.stats()).unknown_tasks
    assert unknown.task == "ops_busy" and unknown.worker == other.id
    with pytest.raises(JobFailed) as failed:
        await job.result(timeout=10)
    assert failed.value.error_type == "UnknownTaskError"
    assert "up to 1s" in failed.value.error_message
    assert (await queue.stats()).unknown_task >= 1
    release.set()
    await blocker.result(timeout=10)
    assert knows.id != other.id


async def _true(value: bool) -> bool:
    return value


async def _is(status: Awaitable[JobStatus], wanted: JobStatus) -> bool:
    return await status is wanted


async def _nonempty(items: Awaitable[list[Any]]) -> bool:
    return bool(await items)


async def _true_async(items: Awaitable[list[Any]]) -> bool:
    return not await items
