"""Worker behaviour on both backends: running, retries, timeouts, bad jobs, cancel, shutdown."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from asyncjobs import (
    Context,
    JobFailed,
    JobStatus,
    Queue,
    Retry,
    Worker,
    WorkerSettings,
    task,
)
from asyncjobs._cancels import CancelListener
from asyncjobs._deadlines import TIMED_OUT, Deadlines
from asyncjobs._errors import JobCancelled
from asyncjobs._running import ClaimedJob
from asyncjobs._store import QueueKeys

from .conftest import one_claimer, run_burst
from .waiting import wait_until


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


async def test_worker_runs_jobs_and_stores_results(queue: Queue, start_worker: Any) -> None:
    await start_worker([add])
    jobs = [await queue.enqueue(add, i, 1) for i in range(20)]
    assert [await j.result(timeout=5) for j in jobs] == [i + 1 for i in range(20)]
    info = await jobs[0].info()
    assert info.status is JobStatus.SUCCEEDED
    assert info.attempts == 1 and info.result == 1
    assert info.started_at and info.finished_at and info.worker


async def test_concurrency_is_never_exceeded(queue: Queue) -> None:
    running = 0
    peak = 0

    @task(name="slow")
    async def slow(ctx: Context) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1

    await queue.enqueue_many([(slow, (), {}) for _ in range(40)])
    await run_burst(queue, [slow], concurrency=7)
    assert peak == 7


async def test_context_fields_and_startup_state(queue: Queue) -> None:
    seen: dict[str, Any] = {}

    async def startup(state: dict[str, Any]) -> None:
        state["db"] = "connection"

    @task(name="inspect_ctx")
    async def inspect_ctx(ctx: Context, x: int) -> str:
        seen.update(
            job_id=ctx.job_id,
            attempt=ctx.attempt,
            task=ctx.task_name,
            db=ctx["db"],
            enqueued=ctx.enqueued_at,
            left=ctx.time_left(),
        )
        follow = await ctx.queue.enqueue(add, x, x, _queue_name=queue.name)
        return follow.id

    job = await queue.enqueue(inspect_ctx, 4)
    await run_burst(queue, [inspect_ctx, add], on_startup=startup, job_timeout=30)
    follow_id = await job.result(timeout=5)
    assert seen["job_id"] == job.id and seen["attempt"] == 1 and seen["task"] == "inspect_ctx"
    assert seen["db"] == "connection"
    assert 0 < seen["left"] <= 30
    assert await queue.job(follow_id).result(timeout=5) == 8, "follow-up job ran in the burst"


@pytest.mark.parametrize("first_read", ["on_startup", "in_a_job"])
async def test_ctx_redis_is_one_arq_client_made_at_its_first_read(
    queue: Queue, first_read: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asyncjobs.arq import ArqRedis

    # as in an app that never imports asyncjobs.arq (where it is imported, "redis" is made
    # at the start: tests/test_arq.py)
    monkeypatch.delitem(sys.modules, "asyncjobs.arq")
    at_startup: dict[str, Any] = {}
    clients: list[Any] = []

    async def startup(state: dict[str, Any]) -> None:
        if first_read == "on_startup":
            at_startup.update(got=state.get("redis"), listed="redis" in state)
            clients.append(state["redis"])

    @task(name="use_redis")
    async def use_redis(ctx: Context, n: int) -> int:
        clients.append(ctx["redis"])
        if isinstance(ctx["redis"], ArqRedis):  # raw commands on the worker's own pool
            await ctx["redis"].incr(f"{queue.name}:counted")
        return n

    jobs = [await queue.enqueue(use_redis, n) for n in range(3)]
    await run_burst(queue, [use_redis], on_startup=startup)
    assert [await j.result(timeout=5) for j in jobs] == [0, 1, 2]
    assert all(client is clients[0] for client in clients), "one client per worker"
    if first_read == "on_startup":
        assert at_startup == {"listed": True, "got": clients[0]}
    if queue.url.startswith("redis+cluster"):  # arq's client cannot share a cluster pool
        assert clients[0] is not None
    else:
        assert isinstance(clients[0], ArqRedis)
        assert await queue.client.get(f"{queue.name}:counted") == b"3"


def test_a_worker_start_skips_what_no_job_uses() -> None:
    """A worker whose jobs never read ``ctx["redis"]`` does not import arq's side, and builds
    no validator of the package's models (each is built at its first use)."""
    import subprocess

    program = """
import asyncio, sys
from asyncjobs import Queue, Worker, WorkerSettings, task
from asyncjobs._models import Model

@task
async def noop(ctx):
    return 1

def built():
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    return sorted(sub.__name__ for sub in subclasses(Model) if sub.__pydantic_complete__)

async def main(read):
    async with Queue("memory://lazy-arq") as queue:
        job = await queue.enqueue(noop)
        async def startup(state):
            if read:
                state["redis"]
        await Worker(WorkerSettings(functions=[noop], redis_url=queue.url, burst=True,
                                    on_startup=startup)).run()
        after_run = built()
        assert (await job.info()).result == 1
        print("asyncjobs.arq" in sys.modules, after_run, built())

asyncio.run(main(sys.argv[1] == "read"))
"""
    seen = {
        how: subprocess.run(
            [sys.executable, "-c", program, how], capture_output=True, text=True, check=True
        ).stdout.strip()
        for how in ("skip", "read")
    }
    assert seen == {"skip": "False [] ['JobInfo']", "read": "True [] ['JobInfo']"}


async def test_retries_until_success(queue: Queue) -> None:
    tries: dict[int, int] = {}

    @task(name="flaky", max_tries=3, backoff=0)
    async def flaky(ctx: Context, n: int) -> int:
        tries[n] = tries.get(n, 0) + 1
        assert ctx.attempt == tries[n]
        if tries[n] < 3:
            raise ConnectionError("try again")
        return ctx.attempt

    jobs = [await queue.enqueue(flaky, n) for n in range(10)]
    await run_burst(queue, [flaky])
    assert [await j.result(timeout=5) for j in jobs] == [3] * 10
    info = await jobs[0].info()
    assert info.attempts == 3 and info.error is None
    assert await queue.dead_letters() == []


async def test_exhausted_retries_dead_letter(queue: Queue) -> None:
    @task(name="always_fails", max_tries=2, backoff=0)
    async def always_fails(ctx: Context) -> None:
        raise RuntimeError(f"broken on try {ctx.attempt}")

    job = await queue.enqueue(always_fails)
    await run_burst(queue, [always_fails])
    with pytest.raises(JobFailed) as caught:
        await job.result(timeout=5)
    assert caught.value.error_type == "RuntimeError"
    assert caught.value.error_message == "broken on try 2"
    assert "Traceback" in caught.value.traceback and caught.value.attempts == 2
    [dead] = await queue.dead_letters()
    assert dead.id == job.id and dead.attempts == 2 and dead.error_type == "RuntimeError"
    assert dead.status is JobStatus.FAILED


async def test_retry_on_limits_what_is_retried(queue: Queue) -> None:
    calls = 0

    @task(name="picky", max_tries=5, backoff=0, retry_on=(ConnectionError,))
    async def picky(ctx: Context) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("a bug, not an outage")

    job = await queue.enqueue(picky)
    await run_burst(queue, [picky])
    assert calls == 1, "an exception outside retry_on fails the job at once"
    assert (await job.info()).status is JobStatus.FAILED


async def test_retry_exception_defers(queue: Queue) -> None:
    @task(name="later", max_tries=3)
    async def later(ctx: Context) -> int:
        if ctx.attempt == 1:
            raise Retry(defer=0.2)
        return ctx.attempt

    job = await queue.enqueue(later)
    await run_burst(queue, [later])
    info = await job.info()
    assert info.status is JobStatus.DEFERRED and info.scheduled_at is not None
    await asyncio.sleep(0.25)
    await run_burst(queue, [later])
    assert await job.result(timeout=5) == 2


async def test_timeout_is_retried_then_fails_with_job_timeout(queue: Queue) -> None:
    cancelled = 0

    @task(name="sleepy", timeout=0.05, max_tries=2, backoff=0)
    async def sleepy(ctx: Context) -> None:
        nonlocal cancelled
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise

    job = await queue.enqueue(sleepy)
    await run_burst(queue, [sleepy])
    assert cancelled == 2, "each timed-out try is cancelled, and a timeout is retried"
    with pytest.raises(JobFailed) as caught:
        await job.result(timeout=5)
    assert caught.value.error_type == "JobTimeout"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is 3.11+")
async def test_a_try_that_swallows_its_timeout_succeeds_and_its_task_is_not_left_cancelling(
    queue: Queue,
) -> None:
    """As under asyncio.timeout: a body that catches the timeout's cancellation and returns
    succeeds, and the try's task is not left counting a cancellation (which would turn the
    next asyncio.timeout or TaskGroup in it into a plain cancel)."""
    counts: list[int] = []

    @task(name="stubborn", timeout=0.05, max_tries=1)
    async def stubborn(ctx: Context) -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            return "late"
        return "never"

    async def on_end(ctx: Context) -> None:
        counts.append(asyncio.current_task().cancelling())  # type: ignore[union-attr]

    job = await queue.enqueue(stubborn)
    await run_burst(queue, [stubborn], on_job_end=on_end)
    assert await job.result(timeout=5) == "late"
    assert counts == [0]


async def test_tries_with_one_timeout_share_a_timer_and_leave_nothing_behind() -> None:
    """A hundred tries claimed together: not a loop timer each; a try that ended is never
    cancelled by its slot; one still running when its slot fires is, marked as timed out."""
    loop = asyncio.get_running_loop()
    deadlines = Deadlines()
    sleepers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(100)]
    jobs = [_claimed(str(i), t) for i, t in enumerate(sleepers)]
    timers_before = len(loop._scheduled)  # type: ignore[attr-defined]
    slots = [deadlines.add(job, 0.05) for job in jobs]
    assert len(loop._scheduled) - timers_before <= 2  # type: ignore[attr-defined]
    for job, slot in zip(jobs[:99], slots[:99], strict=True):
        deadlines.remove(slot, job)
    assert len(deadlines) == 1
    await asyncio.sleep(0.1)
    assert [job.stop_reason for job in jobs] == [None] * 99 + [TIMED_OUT]
    await asyncio.sleep(0)
    assert [t.cancelled() for t in sleepers] == [False] * 99 + [True]
    assert len(deadlines) == 0
    for t in sleepers[:99]:
        t.cancel()
    deadlines.remove(None, jobs[0])  # an infinite timeout has no slot: nothing to do
    assert deadlines.add(jobs[0], float("inf")) is None


def _claimed(job_id: str, running: asyncio.Task[Any]) -> ClaimedJob:
    job = ClaimedJob(
        QueueKeys("default", "asyncjobs"), job_id, "t", b"[[],{}]", 1, 1, 0, 0, f"w:{job_id}"
    )
    job.task = running  # type: ignore[assignment]
    return job


async def test_per_job_timeout_and_max_tries_override(queue: Queue) -> None:
    @task(name="slowish", timeout=10, max_tries=5, backoff=0)
    async def slowish(ctx: Context) -> None:
        await asyncio.sleep(1)

    job = await queue.enqueue(slowish, _timeout=0.05, _max_tries=1)
    await run_burst(queue, [slowish])
    info = await job.info()
    assert info.status is JobStatus.FAILED and info.attempts == 1
    assert info.error_type == "JobTimeout"


async def test_unknown_task_fails_clearly_and_others_run(queue: Queue) -> None:
    bad = await queue.enqueue("no_such_task", 1)
    good = await queue.enqueue(add, 1, 1)
    await run_burst(queue, [add])
    assert await good.result(timeout=5) == 2
    with pytest.raises(JobFailed) as caught:
        await bad.result(timeout=5)
    assert caught.value.error_type == "UnknownTaskError"
    assert "no task named 'no_such_task'" in caught.value.error_message
    assert [d.id for d in await queue.dead_letters()] == [bad.id]


async def test_undecodable_payload_fails_clearly_and_others_run(queue: Queue) -> None:
    bad = await queue.enqueue(add, 1, 2)
    wrong_type = await queue.enqueue("add", "not a number", 2)
    good = await queue.enqueue(add, 2, 2)
    await queue.client.hset(queue.keys_for(queue.name).job(bad.id), "payload", b"{not json")
    await run_burst(queue, [add])
    assert await good.result(timeout=5) == 4
    for job in (bad, wrong_type):
        with pytest.raises(JobFailed) as caught:
            await job.result(timeout=5)
        assert caught.value.error_type == "PayloadError"
        assert caught.value.attempts == 1, "a payload error is permanent: never retried"
    assert {d.id for d in await queue.dead_letters()} == {bad.id, wrong_type.id}
    assert (await bad.info()).raw_payload == "{not json"


async def test_unserializable_result_fails_the_job(queue: Queue) -> None:
    @task(name="returns_object")
    async def returns_object(ctx: Context) -> Any:
        return object()

    job = await queue.enqueue(returns_object)
    await run_burst(queue, [returns_object])
    with pytest.raises(JobFailed) as caught:
        await job.result(timeout=5)
    assert caught.value.error_type == "SerializationError"


async def test_replay_dead_letter_runs_again(queue: Queue) -> None:
    healthy = False

    @task(name="depends", max_tries=1)
    async def depends(ctx: Context) -> str:
        if not healthy:
            raise ConnectionError("dependency down")
        return "done"

    job = await queue.enqueue(depends)
    await run_burst(queue, [depends])
    assert await job.status() is JobStatus.FAILED
    healthy = True
    replayed = await queue.replay_dead_letter(job.id)
    assert replayed.id == job.id and await job.status() is JobStatus.QUEUED
    assert await queue.dead_letters() == []
    await run_burst(queue, [depends])
    assert await job.result(timeout=5) == "done"
    with pytest.raises(LookupError):
        await queue.replay_dead_letter(job.id)


async def test_purge_dead_letters(queue: Queue) -> None:
    for _ in range(3):
        await queue.enqueue("missing_task")
    await run_burst(queue, [add])
    assert len(await queue.dead_letters()) == 3
    assert await queue.purge_dead_letters() == 3
    assert await queue.dead_letters() == []


async def test_progress_is_visible_while_running(queue: Queue, start_worker: Any) -> None:
    halfway = asyncio.Event()
    release = asyncio.Event()

    @task(name="report")
    async def report(ctx: Context) -> None:
        await ctx.progress(0.5, stage="copy", message="5 of 10")
        halfway.set()
        await release.wait()

    await start_worker([report])
    job = await queue.enqueue(report)
    await asyncio.wait_for(halfway.wait(), 5)
    info = await job.info()
    assert (info.status, info.progress, info.stage, info.message) == (
        JobStatus.IN_PROGRESS,
        0.5,
        "copy",
        "5 of 10",
    )
    release.set()
    await job.result(timeout=5)


async def test_cancel_running_job(queue: Queue, start_worker: Any) -> None:
    started = asyncio.Event()
    got_cancelled = asyncio.Event()

    @task(name="long", max_tries=3)
    async def long(ctx: Context) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            got_cancelled.set()
            raise

    worker = await start_worker([long])
    job = await queue.enqueue(long)
    await asyncio.wait_for(started.wait(), 5)
    assert await job.cancel() is True
    await asyncio.wait_for(got_cancelled.wait(), 5)
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    info = await job.info()
    assert info.status is JobStatus.CANCELLED and info.attempts == 1, "never retried"

    async def slot_freed() -> bool:
        return not worker.running

    await wait_until(slot_freed, 5, "the cancelled try to leave the running table")


async def test_a_cancel_whose_message_is_missed_still_ends_as_a_cancel(
    queue: Queue, start_worker: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """The worker hears nothing on the cancel channel (its subscription was down): the next
    lease renewal stops the try as cancelled by request, not as a lost lease."""

    async def deaf(self: CancelListener) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(CancelListener, "step", deaf)
    started, outcomes = asyncio.Event(), []

    @task(name="deaf_long")
    async def long(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(30)

    async def on_end(ctx: Context) -> None:
        outcomes.append(ctx.outcome)

    worker = await start_worker([long], lease_seconds=0.6, on_job_end=on_end)
    job = await queue.enqueue(long)
    await asyncio.wait_for(started.wait(), 5)
    assert await job.cancel() is True

    async def ended() -> bool:
        return bool(outcomes) and not worker.running

    await wait_until(ended, 5, "the lease renewal to stop the cancelled try")
    assert outcomes == ["cancelled"]
    assert "cancelled by request" in caplog.text and "lost the lease" not in caplog.text


async def test_graceful_shutdown_lets_running_jobs_finish(queue: Queue) -> None:
    started = asyncio.Event()

    @task(name="finish_me")
    async def finish_me(ctx: Context) -> str:
        started.set()
        await asyncio.sleep(0.2)
        return "finished"

    worker = Worker(WorkerSettings(redis_url=queue.url, functions=[finish_me], queues=[queue.name]))
    run = asyncio.create_task(worker.run(handle_signals=False))
    job = await queue.enqueue(finish_me)
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(run, 5)
    assert await job.result(timeout=1) == "finished"


async def test_stop_holds_even_if_the_claim_loop_misses_its_cancellation(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() lands while a claim is on its way and the claim loop ignores cancellation (on
    Python < 3.12 one that lands as a reply arrives can be swallowed: asyncio.wait_for,
    async-timeout). The run must still end, not block for 30 s; and whichever reached Redis
    first, the claim or the stop's leaving mark, the job is run or left for the next worker,
    never stuck in progress until its lease runs out."""
    from asyncjobs._store import Store
    from asyncjobs._store.scripts import load_scripts

    real_run = Store.run
    claim_sha = load_scripts()["claim"].sha
    worker = Worker(WorkerSettings(redis_url=queue.url, functions=[add], queues=[queue.name]))

    async def claim_that_swallows_the_stop(store: Store, command: Any) -> Any:
        reply = asyncio.ensure_future(real_run(store, command))
        if command[1] == claim_sha:
            worker.stop()  # run() stops the claim loop while this reply is on its way
        try:
            return await asyncio.shield(reply)
        except asyncio.CancelledError:
            return await reply  # ... and a cancellation is lost, as wait_for can lose it

    monkeypatch.setattr(Store, "run", claim_that_swallows_the_stop)
    job = await queue.enqueue(add, 1, 2)
    run = asyncio.create_task(worker.run(handle_signals=False))
    done, _ = await asyncio.wait({run}, timeout=10)
    if not done:  # clean up as far as a cancel can, then fail
        run.cancel()
        await asyncio.wait({run}, timeout=5)
    assert done, "stop() was missed: the claim loop went back to blocking"
    monkeypatch.undo()
    info = await job.info()
    assert info.status in (JobStatus.SUCCEEDED, JobStatus.QUEUED), f"left {info.status.value}"
    if info.status is JobStatus.QUEUED:  # the stop reached Redis first: the next worker runs it
        await run_burst(queue, [add])
    assert await job.result(timeout=1) == 3


async def test_a_stop_while_a_claim_is_on_its_way_runs_what_it_claimed(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis has run a claim and its reply is on the way when the worker stops. Cancelling the
    claim loop then would drop the reply with its connection, and the claimed job would sit
    in progress until its lease ran out. The stop lets the loop read the reply and run it."""
    from asyncjobs._store import Store

    held, release = asyncio.Event(), asyncio.Event()
    real_claim, real_wait = Store.claim, Store.wait_then_claim

    async def hold(claim: Any) -> Any:
        if claim is not None and claim.jobs and not release.is_set():
            held.set()  # Redis has handed the job out; the worker has not read it yet
            await release.wait()
        return claim

    async def claim(store: Store, *args: Any, **kwargs: Any) -> Any:
        return await hold(await real_claim(store, *args, **kwargs))

    async def wait_then_claim(store: Store, *args: Any, **kwargs: Any) -> Any:
        return await hold(await real_wait(store, *args, **kwargs))

    monkeypatch.setattr(Store, "claim", claim)
    monkeypatch.setattr(Store, "wait_then_claim", wait_then_claim)
    worker = Worker(
        WorkerSettings(redis_url=queue.url, functions=[add], queues=[queue.name], lease_seconds=30)
    )
    run = asyncio.create_task(worker.run(handle_signals=False))
    job = await queue.enqueue(add, 1, 2)
    await asyncio.wait_for(held.wait(), 10)
    worker.stop()
    await asyncio.sleep(0.2)  # time for a stop to cancel the loop, as it used to
    release.set()
    await asyncio.wait_for(run, 10)
    info = await job.info()
    assert info.status is JobStatus.SUCCEEDED, f"left {info.status.value} to its 30 s lease"
    assert await job.result(timeout=1) == 3


async def test_a_stopping_workers_wait_leaves_the_queues_wake_up_to_the_others(
    queue: Queue,
) -> None:
    """The stop writes the worker's own wake key. If a queue's wake-up is up too, the wait
    must take its own: the worker claims nothing more, so a wake-up it took would be lost to
    the workers that go on."""
    keys = queue.keys_for(queue.name)
    claimer = one_claimer(queue.store, keys, "leaving", burst=False)
    await queue.store.leave(keys, "leaving", "wake")
    await queue.client.zadd(keys.wake, {"w": 0})  # work came in; no other worker blocks yet
    await asyncio.wait_for(claimer._block_until_woken(-1, keys, 10), 5)
    assert await queue.client.zcard(keys.wake) == 1, "the queue's wake-up is still up"
    assert not await queue.client.exists(keys.own_wake("leaving")), "it took its own"
    await queue.store.leave(keys, "leaving", "clear")


async def test_a_named_worker_started_again_at_once_claims_at_once(queue: Queue) -> None:
    """A stop marks the worker as leaving, and clears the mark once its claim loop has ended;
    if it could not (Redis did not answer in time), the mark stays a minute. Its successor of
    the same name (a restarted pod, say) must not inherit it."""
    keys = queue.keys_for(queue.name)
    await queue.client.set(keys.left("steady-worker"), 1, px=60_000)  # a stop's leftover
    settings = WorkerSettings(
        redis_url=queue.url, functions=[add], queues=[queue.name], name="steady-worker"
    )
    worker = Worker(settings)
    run = asyncio.create_task(worker.run(handle_signals=False))
    try:
        assert await (await queue.enqueue(add, 2, 2)).result(timeout=10) == 4
    finally:
        worker.stop()
        await asyncio.wait_for(run, 10)
    left = await queue.client.keys(keys.left("*")) + await queue.client.keys(keys.own_wake("*"))
    assert left == [], "a clean stop leaves neither its mark nor its own wake key"


async def test_cancelling_run_stops_everything_it_started(queue: Queue) -> None:
    """Cancelling the task that runs Worker.run() (asyncio.run's teardown does) stops at once:
    no background task is left behind and the running job is requeued with its try given back."""
    started = asyncio.Event()

    @task(name="long_one")
    async def long_one(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(30)

    before = asyncio.all_tasks()
    worker = Worker(WorkerSettings(redis_url=queue.url, functions=[long_one], queues=[queue.name]))
    run = asyncio.create_task(worker.run(handle_signals=False))
    job = await queue.enqueue(long_one)
    await asyncio.wait_for(started.wait(), 5)
    run.cancel()
    done, _ = await asyncio.wait({run}, timeout=10)
    assert done and run.cancelled()
    left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()]
    assert left == [], "every task the worker started has ended"
    info = await job.info()
    assert info.status is JobStatus.QUEUED and info.attempts == 0


async def test_a_finished_try_leaves_the_next_try_of_its_job_in_place(queue: Queue) -> None:
    """After a lost lease the same worker can reclaim the job while the old try still reports:
    the old try ending must not drop the new one from the running table (whose lease would then
    never be renewed, run out, and be reclaimed again: a loop the chaos outage test once hit)."""
    from asyncjobs._running import ClaimedJob, RunningJobs

    keys = queue.keys_for(queue.name)
    running = RunningJobs()
    tries = [ClaimedJob(keys, "j", "add", b"[[],{}]", n, 3, 0, 0, f"w:{n}") for n in (1, 2)]
    first_may_end, second_may_end = asyncio.Event(), asyncio.Event()

    async def run(job: ClaimedJob) -> None:
        await (first_may_end if job.attempt == 1 else second_may_end).wait()

    for job in tries:
        running.start(job, run)
    assert running.held(keys) == [("j", "w:1"), ("j", "w:2")], "each try's lease is renewed"
    first_may_end.set()
    await asyncio.sleep(0.01)
    assert running.held(keys) == [("j", "w:2")], "the second try is still tracked"
    second_may_end.set()
    await asyncio.sleep(0.01)
    assert len(running) == 0 and running.finished == 2


async def test_a_try_cancelled_before_it_started_leaves_the_table(queue: Queue) -> None:
    """A lost lease can cancel a try whose task has not run a single step: its coroutine never
    starts, so only the task's own end can free its slot (a leak here stalls the worker)."""
    from asyncjobs._running import ClaimedJob, RunningJobs

    keys = queue.keys_for(queue.name)
    running = RunningJobs()
    job = ClaimedJob(keys, "j", "add", b"[[],{}]", 1, 3, 0, 0, "w:1")
    ran = False

    async def run(job: ClaimedJob) -> None:
        nonlocal ran
        ran = True

    running.start(job, run)
    assert running.lose([("j", "w:1")], ["j"]) == ["j"]  # before the task took its first step
    await asyncio.sleep(0.01)
    assert not ran and len(running) == 0, "the slot came back"


async def test_a_lost_lease_stops_only_the_try_that_was_extended(queue: Queue) -> None:
    """The lease keeper decides from the (id, token) pairs it extended: a newer try of the same
    job, claimed while the extend call was in flight, keeps running."""
    from asyncjobs._running import ClaimedJob, RunningJobs

    keys = queue.keys_for(queue.name)
    running = RunningJobs()
    forever = asyncio.Event()

    async def run(job: ClaimedJob) -> None:
        await forever.wait()

    old = ClaimedJob(keys, "j", "add", b"[[],{}]", 1, 3, 0, 0, "w:1")
    running.start(old, run)
    extended = running.held(keys)  # the keeper's snapshot, sent with its extend call
    new = ClaimedJob(keys, "j", "add", b"[[],{}]", 2, 3, 0, 0, "w:2")
    running.start(new, run)  # reclaimed meanwhile
    assert running.lose(extended, ["j"]) == ["j"]
    await asyncio.sleep(0.01)
    assert old.task is not None and old.task.cancelled()
    assert new.task is not None and not new.task.done(), "the new, valid try was not touched"
    assert running.held(keys) == [("j", "w:2")]
    running.cancel("shutdown")
    await asyncio.sleep(0.01)


async def test_shutdown_past_grace_requeues_without_spending_a_try(queue: Queue) -> None:
    started = asyncio.Event()

    @task(name="stuck")
    async def stuck(ctx: Context) -> None:
        started.set()
        await asyncio.sleep(30)

    worker = Worker(
        WorkerSettings(
            redis_url=queue.url, functions=[stuck], queues=[queue.name], shutdown_grace=0.1
        )
    )
    run = asyncio.create_task(worker.run(handle_signals=False))
    job = await queue.enqueue(stuck)
    await asyncio.wait_for(started.wait(), 5)
    worker.stop()
    await asyncio.wait_for(run, 5)
    info = await job.info()
    assert info.status is JobStatus.QUEUED and info.attempts == 0


async def test_idle_worker_is_woken_by_enqueue(queue: Queue, start_worker: Any) -> None:
    await start_worker([add])
    await asyncio.sleep(0.2)  # the worker is now blocked in BZPOPMIN, not polling
    job = await queue.enqueue(add, 2, 3)
    assert await job.result(timeout=5) == 5


async def test_deferred_job_wakes_an_idle_worker_on_time(queue: Queue, start_worker: Any) -> None:
    await start_worker([add])
    job = await queue.enqueue(add, 1, 1, _defer_by=0.3)
    assert await job.status() is JobStatus.DEFERRED
    assert await job.result(timeout=5) == 2


async def test_several_queues_strict_order(queue: Queue) -> None:
    order: list[str] = []

    @task(name="which")
    async def which(ctx: Context, q: str) -> None:
        order.append(q)

    other = f"{queue.name}-low"
    for _ in range(3):
        await queue.enqueue(which, "low", _queue_name=other)
        await queue.enqueue(which, "high")
    await run_burst(queue, [which], queues=[queue.name, other], concurrency=1)
    assert order == ["high"] * 3 + ["low"] * 3


async def test_hooks_and_job_lifecycle(queue: Queue) -> None:
    events: list[str] = []

    async def on_start(ctx: Context) -> None:
        events.append(f"start {ctx.task_name}")

    async def on_end(ctx: Context) -> None:
        events.append(f"end {ctx.task_name}")

    await queue.enqueue(add, 1, 1)
    await run_burst(queue, [add], on_job_start=on_start, on_job_end=on_end)
    assert events == ["start add", "end add"]


def test_settings_refuse_unknown_names() -> None:
    """A class written for asyncjobs (it names one of asyncjobs's own settings) is checked as
    strictly as WorkerSettings(...): a typo is refused, never dropped."""

    class ArqStyle:
        functions = [add]
        max_jobs = 5
        queue_name = "arq-q"

    settings = WorkerSettings.coerce(ArqStyle)
    assert settings.concurrency == 5 and settings.queues == ["arq-q"]

    class Typo:
        functions = [add]
        queues = ["q"]
        concurency = 5

    from asyncjobs import ConfigurationError

    with pytest.raises(ConfigurationError, match="did you mean 'concurrency'"):
        WorkerSettings.coerce(Typo)


async def test_oversized_payloads_are_refused_at_both_ends(queue: Queue) -> None:
    from asyncjobs import SerializationError

    small = Queue(name=queue.name, max_payload_bytes=100, store=queue.store)
    with pytest.raises(SerializationError, match="over max_payload_bytes"):
        await small.enqueue(add, "x" * 200, 1)
    big = await queue.enqueue("add", "y" * 5000, 1)  # written by a client with a higher limit
    ok = await queue.enqueue(add, 1, 1)
    await run_burst(queue, [add], max_payload_bytes=1000)
    assert await ok.result(timeout=5) == 2
    with pytest.raises(JobFailed) as caught:
        await big.result(timeout=5)
    assert caught.value.error_type == "PayloadError" and "max_payload_bytes" in str(caught.value)
