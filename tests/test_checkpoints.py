"""Checkpoints: a later try resumes where the last one got to, whatever ended that try."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest

from asyncjobs import (
    Context,
    JobCancelled,
    JobFailed,
    JobStatus,
    Queue,
    SerializationError,
    SoftTimeout,
    Worker,
    WorkerSettings,
    task,
)

from .chaos.helpers import WorkerProcess
from .long_tasks import hundred_steps, zombie_probe
from .waiting import wait_until

LONG_SETTINGS = "tests.long_tasks:settings"


def tag() -> str:
    return f"test:{{{uuid.uuid4().hex[:8]}}}"


async def logged(queue: Queue, key: str) -> list[Any]:
    return [orjson.loads(v) for v in await queue.client.lrange(key, 0, -1)]


@task(max_tries=3, backoff=0)
async def fails_once_after_saving(ctx: Context, log: str) -> Any:
    await ctx.queue.client.rpush(log, orjson.dumps(ctx.last_checkpoint))
    if ctx.attempt == 1:
        await ctx.checkpoint({"page": 7})
        assert ctx.last_checkpoint == {"page": 7}, "this try reads what it saved"
        raise ConnectionError("the shop's API went away")
    return ctx.last_checkpoint


async def test_a_retry_after_an_error_resumes_from_the_checkpoint(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker([fails_once_after_saving])
    job = await queue.enqueue(fails_once_after_saving, log)
    assert await job.result(timeout=10) == {"page": 7}
    assert await logged(queue, log) == [None, {"page": 7}], "None on the first try"
    info = await job.info()
    assert info.attempts == 2 and info.checkpoint == {"page": 7}
    assert info.checkpoint_at is not None and info.started_at is not None


@task(max_tries=2, timeout=0.5, backoff=0)
async def times_out_once(ctx: Context) -> Any:
    if ctx.attempt == 1:
        await ctx.checkpoint(3)
        await asyncio.sleep(30)
    return ctx.last_checkpoint


async def test_a_retry_after_a_timeout_resumes(queue: Queue, start_worker: Any) -> None:
    await start_worker([times_out_once])
    job = await queue.enqueue(times_out_once)
    assert await job.result(timeout=10) == 3
    assert (await job.info()).attempts == 2


@task(max_tries=2, timeout=10, soft_timeout=0.3, backoff=0)
async def counts_until_told(ctx: Context, log: str) -> int:
    position = ctx.last_checkpoint or 0
    await ctx.queue.client.rpush(log, orjson.dumps(["start", ctx.attempt, position]))
    if ctx.attempt > 1:
        return position
    try:
        while True:
            await asyncio.sleep(0.01)
            position += 1
    except SoftTimeout:
        await ctx.checkpoint(position)
        await ctx.queue.client.rpush(log, orjson.dumps(["soft timeout", ctx.attempt, position]))
        raise


async def test_a_soft_timeout_lets_the_task_checkpoint_before_the_hard_one(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker([counts_until_told])
    job = await queue.enqueue(counts_until_told, log)
    resumed_at = await job.result(timeout=20)
    start_1, soft, start_2 = await logged(queue, log)
    assert start_1 == ["start", 1, 0]
    assert soft[:2] == ["soft timeout", 1] and soft[2] > 0, "told at its soft timeout"
    assert start_2 == ["start", 2, soft[2]] and resumed_at == soft[2], "resumed from there"


@task(max_tries=1, timeout=0.6, soft_timeout=0.1)
async def ignores_the_warning(ctx: Context, log: str) -> None:
    try:
        await asyncio.sleep(30)
    except SoftTimeout:
        await ctx.queue.client.rpush(log, b'"warned"')
    await asyncio.sleep(30)


async def test_a_soft_timeout_ignored_still_ends_at_the_hard_timeout(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker([ignores_the_warning])
    job = await queue.enqueue(ignores_the_warning, log)
    with pytest.raises(JobFailed) as failed:
        await job.result(timeout=10)
    assert failed.value.error_type == "JobTimeout"
    assert await logged(queue, log) == ["warned"]


@task(max_tries=1, timeout=30, soft_timeout=0.1)
async def slow_warning(ctx: Context, log: str) -> None:
    try:
        await asyncio.sleep(30)
    except SoftTimeout:
        await ctx.queue.client.rpush(log, b'"warned"')
    await asyncio.sleep(30)


async def test_a_cancel_after_the_soft_timeout_still_cancels(
    queue: Queue, start_worker: Any
) -> None:
    log = f"{tag()}:log"
    await start_worker([slow_warning])
    job = await queue.enqueue(slow_warning, log)
    await wait_until(lambda: queue.client.llen(log), 10, "the soft timeout")
    assert await job.cancel() is True
    with pytest.raises(JobCancelled):
        await job.result(timeout=5)
    assert (await job.info()).status is JobStatus.CANCELLED


def test_soft_timeout_must_come_before_the_timeout() -> None:
    async def body(ctx: Context) -> None: ...

    with pytest.raises(ValueError, match=r"soft_timeout \(5s\) must be shorter than timeout"):
        task(timeout=5, soft_timeout=5)(body)
    with pytest.raises(ValueError, match="must be positive"):
        task(soft_timeout=0)(body)


@task
async def saves_then_hangs(ctx: Context, started: str) -> Any:
    if ctx.last_checkpoint is None:
        await ctx.checkpoint("halfway")
        await ctx.queue.client.set(started, 1)
        await asyncio.sleep(3600)
    return ctx.last_checkpoint


async def test_a_shutdown_past_the_grace_period_keeps_the_checkpoint(
    queue: Queue, start_worker: Any
) -> None:
    started = f"{tag()}:started"
    first = await start_worker([saves_then_hangs], shutdown_grace=0.2)
    job = await queue.enqueue(saves_then_hangs, started)
    await wait_until(lambda: queue.client.get(started), 10, "the first try to save")
    first.stop()
    await wait_until(
        lambda: _is(job.status(), JobStatus.QUEUED), 10, "the job to be requeued at shutdown"
    )
    await start_worker([saves_then_hangs])
    assert await job.result(timeout=10) == "halfway"
    assert (await job.info()).attempts == 1, "a requeue gives the try back"


async def _is(status: Any, expected: JobStatus) -> bool:
    return bool(await status == expected)


@task(max_tries=1)
async def fails_then_succeeds_on_replay(ctx: Context) -> int:
    if ctx.last_checkpoint is None:
        await ctx.checkpoint(41)
        raise ValueError("a bug, fixed before the replay")
    return int(ctx.last_checkpoint) + 1


async def test_the_dead_letter_keeps_the_checkpoint_and_a_replay_resumes(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker([fails_then_succeeds_on_replay])
    job = await queue.enqueue(fails_then_succeeds_on_replay)
    with pytest.raises(JobFailed):
        await job.result(timeout=10)
    [dead] = await queue.dead_letters()
    assert dead.id == job.id and dead.checkpoint == 41
    replayed = await queue.replay_dead_letter(job.id)
    assert await replayed.result(timeout=10) == 42


@task(max_tries=1)
async def saves_badly(ctx: Context) -> list[Any]:
    await ctx.checkpoint("small")
    errors = []
    for value in ("x" * 5000, object()):
        try:
            await ctx.checkpoint(value)
        except SerializationError as exc:
            errors.append(str(exc))
    return [*errors, ctx.last_checkpoint]


async def test_a_checkpoint_too_big_or_not_json_is_refused_clearly(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker([saves_badly], max_payload_bytes=1024)
    job = await queue.enqueue(saves_badly)
    too_big, not_json, kept = await job.result(timeout=10)
    assert too_big.startswith("the checkpoint of 'saves_badly' takes 5002 bytes, over ")
    assert "max_payload_bytes (1024): save where the work got to" in too_big
    assert not_json.startswith("cannot store the checkpoint of 'saves_badly' as JSON")
    assert kept == "small" and (await job.info()).checkpoint == "small", "nothing overwritten"


@task(max_tries=3)
async def returns_a_lot(ctx: Context, size: int) -> str:
    return "x" * size


async def test_a_result_over_max_result_bytes_fails_clearly_at_once(
    queue: Queue, start_worker: Any
) -> None:
    await start_worker([returns_a_lot], max_result_bytes=1000)
    big, small = await queue.enqueue(returns_a_lot, 5000), await queue.enqueue(returns_a_lot, 10)
    with pytest.raises(JobFailed) as failed:
        await big.result(timeout=10)
    assert failed.value.error_type == "SerializationError"
    assert failed.value.attempts == 1, "not retried: the result would be as big again"
    assert "takes 5002 bytes, over max_result_bytes (1000): store big results elsewhere" in (
        failed.value.error_message
    )
    assert await small.result(timeout=10) == "x" * 10, "the other jobs are not affected"
    assert [d.id for d in await queue.dead_letters()] == [big.id]


async def test_a_task_called_directly_keeps_its_checkpoint_in_its_context() -> None:
    async with Queue("memory://direct") as queue:
        ctx = Context(
            job_id="j", task_name="t", attempt=1, max_tries=1, enqueued_ms=0, queue=queue, state={}
        )
        assert ctx.last_checkpoint is None
        await ctx.checkpoint((1, "a"))
        assert ctx.last_checkpoint == [1, "a"], "as JSON gives it back to a later try"


@pytest.mark.slow
async def test_a_try_that_lost_its_lease_cannot_overwrite_the_checkpoint(
    redis_url: str, tmp_path: Path
) -> None:
    """Try 1 blocks its worker's event loop past its lease; a worker process takes the job over
    and saves; then try 1 (a zombie now) saves too: refused, and told so with LeaseLost."""
    name = f"zombie-{uuid.uuid4().hex[:8]}"
    log = f"{tag()}:log"
    async with Queue(redis_url, name=name) as queue:
        zombie = Worker(
            WorkerSettings(
                redis_url=redis_url,
                functions=[zombie_probe],
                queues=[name],
                lease_seconds=1.0,
                concurrency=1,  # no claim of its own waits in Redis while its loop is blocked
            )
        )
        running = asyncio.create_task(zombie.run(handle_signals=False))
        rescuer: WorkerProcess | None = None
        try:
            job_key = queue.keys_for(name).job("probe")
            job = await queue.enqueue(zombie_probe, log, job_key, redis_url, _job_id="probe")
            await wait_until(
                lambda: _checkpoint_is(job, "try 1"), 10, "try 1 to save its checkpoint"
            )
            rescuer = WorkerProcess(redis_url, name, tmp_path / "rescuer.log", LONG_SETTINGS)
            rescuer.start()
            await wait_until(
                lambda: _workers(queue, name, 2), 30, "the rescuer to serve the queue too"
            )
            await queue.client.set(f"{log}:go", 1)  # from here try 1 blocks its whole loop
            await wait_until(lambda: _llen(queue, log, 3), 30, "the zombie's attempt")
            resumed, attempting, outcome = await logged_text(queue, log)
            assert (resumed, attempting) == ("try 2 resumed from try 1", "attempting")
            # refused by the script (LeaseLost), unless its worker stopped it while it waited
            assert outcome in ("refused", "stopped")
            assert (await job.info()).checkpoint == "try 2", "the zombie overwrote nothing"
            await queue.client.set(f"{log}:release", 1)
            assert await job.result(timeout=10) == "try 2"
        finally:
            zombie.stop()
            await asyncio.wait_for(running, 20)
            if rescuer is not None:
                rescuer.stop()
        assert (await job.info()).checkpoint == "try 2"


async def _workers(queue: Queue, name: str, n: int) -> bool:
    return (await queue.store.counts(queue.keys_for(name))).workers >= n


async def _llen(queue: Queue, key: str, n: int) -> bool:
    return bool(await queue.client.llen(key) >= n)


async def _checkpoint_is(job: Any, value: Any) -> bool:
    return bool((await job.info()).checkpoint == value)


async def logged_text(queue: Queue, key: str) -> list[str]:
    return [v.decode() for v in await queue.client.lrange(key, 0, -1)]


@pytest.mark.slow
async def test_a_hundred_step_task_killed_at_step_60_resumes_at_60(
    redis_url: str, tmp_path: Path
) -> None:
    name = f"steps-{uuid.uuid4().hex[:8]}"
    steps, reached = f"{tag()}:steps", f"{tag()}:reached"
    async with Queue(redis_url, name=name) as queue:
        victim = WorkerProcess(redis_url, name, tmp_path / "victim.log", LONG_SETTINGS).start()
        try:
            job = await queue.enqueue(hundred_steps, steps, reached)
            pid = await wait_until(lambda: queue.client.get(reached), 30, "step 60 of try 1")
            assert int(pid) == victim.pid
            os.kill(victim.pid, signal.SIGKILL)
            victim.kill()
        finally:
            victim.kill()
        rescuer = WorkerProcess(redis_url, name, tmp_path / "rescuer.log", LONG_SETTINGS).start()
        try:
            assert await job.result(timeout=30) == 60, "the second try began at step 60"
        finally:
            rescuer.stop()
        counts = {int(k): int(v) for k, v in (await queue.client.hgetall(steps)).items()}
        assert sorted(counts) == list(range(100)), "every step ran"
        assert max(counts.values()) <= 2, "no step ran more than twice"
        assert [s for s, n in counts.items() if n == 2] == [60], "only the step killed mid-way"
        starts = [int(s) for s in await queue.client.lrange(f"{steps}:starts", 0, -1)]
        assert starts == [0, 60]
        info = await job.info()
        assert info.attempts == 2 and info.checkpoint == 100
