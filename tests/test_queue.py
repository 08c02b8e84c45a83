"""Client side on both backends: enqueue options, dedupe, batches, handles, bad input."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel

from asyncjobs import (
    Context,
    JobCancelled,
    JobStatus,
    Queue,
    ResultNotFound,
    SerializationError,
    task,
)

from .conftest import key_count, run_burst


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


class Point(BaseModel):
    x: int
    y: int


@task
async def shift(ctx: Context, p: Point, by: int = 1) -> Point:
    assert isinstance(p, Point), "the worker must rebuild the pydantic model from the payload"
    return Point(x=p.x + by, y=p.y + by)


@task(unique=True)
async def only_once(ctx: Context, n: int) -> int:
    return n


async def test_enqueue_returns_queued_job(queue: Queue) -> None:
    job = await queue.enqueue(add, 1, 2)
    assert len(job.id) == 32
    assert not job.duplicate
    assert await job.status() is JobStatus.QUEUED
    info = await job.info()
    assert (info.task, info.args, info.kwargs, info.attempts) == ("add", [1, 2], {}, 0)
    assert info.enqueued_at is not None


async def test_enqueue_by_name_with_kwargs(queue: Queue) -> None:
    job = await queue.enqueue("add", 1, b=2)
    await run_burst(queue, [add])
    assert await job.result(timeout=5) == 3


async def test_same_job_id_is_deduplicated(queue: Queue) -> None:
    first = await queue.enqueue(add, 1, 2, _job_id="order-42")
    second = await queue.enqueue(add, 5, 5, _job_id="order-42")
    assert (first.id, second.id) == ("order-42", "order-42")
    assert (first.duplicate, second.duplicate) == (False, True)
    await run_burst(queue, [add])
    assert await second.result(timeout=5) == 3  # the first job's arguments won
    third = await queue.enqueue(add, 7, 7, _job_id="order-42")
    assert third.duplicate, "a finished job still holds its id while its record is kept"


async def test_idempotency_key_returns_existing_job(queue: Queue) -> None:
    first = await queue.enqueue(add, 1, 2, _idempotency_key="pay-1", _idempotency_ttl=60)
    second = await queue.enqueue(add, 1, 2, _idempotency_key="pay-1")
    other = await queue.enqueue(add, 1, 2, _idempotency_key="pay-2")
    assert second.id == first.id and second.duplicate
    assert other.id != first.id and not other.duplicate
    await run_burst(queue, [add])
    again = await queue.enqueue(add, 1, 2, _idempotency_key="pay-1")
    assert again.id == first.id and again.duplicate, "finished jobs still dedupe inside the TTL"


async def test_idempotency_key_expires(queue: Queue) -> None:
    first = await queue.enqueue(add, 1, 2, _idempotency_key="k", _idempotency_ttl=0.05)
    await asyncio.sleep(0.15)
    second = await queue.enqueue(add, 1, 2, _idempotency_key="k")
    assert second.id != first.id and not second.duplicate


async def test_unique_task_dedupes_same_arguments(queue: Queue) -> None:
    a = await queue.enqueue(only_once, 1)
    b = await queue.enqueue(only_once, 1)
    c = await queue.enqueue(only_once, 2)
    assert a.id == b.id and b.duplicate
    assert c.id != a.id


async def test_enqueue_many_keeps_order_and_dedupes(queue: Queue) -> None:
    jobs = await queue.enqueue_many(
        [(add, (i, i), {}) for i in range(50)]
        + [("add", (1,), {"b": 1, "_job_id": "dup"}), ("add", (2,), {"b": 2, "_job_id": "dup"})]
    )
    assert len(jobs) == 52
    assert jobs[50].id == jobs[51].id == "dup" and jobs[51].duplicate
    await run_burst(queue, [add])
    results = [await j.result(timeout=5) for j in jobs[:50]]
    assert results == [2 * i for i in range(50)]


async def test_enqueue_many_is_one_script_call_per_thousand(queue: Queue, monkeypatch: Any) -> None:
    """One call for a usual batch (all or nothing); a huge one is cut in chunks, so that no
    single script holds Redis for seconds (400,000 jobs once blocked it for 5.3 s)."""
    calls: list[Any] = []
    real = queue.store.run

    async def counting(command: Any) -> Any:
        calls.append(command[1])
        return await real(command)

    monkeypatch.setattr(queue.store, "run", counting)
    await queue.enqueue_many([(add, (i, 1), {}) for i in range(1000)])
    assert len(calls) == 1
    jobs = await queue.enqueue_many([(add, (i, 1), {"_job_id": f"j{i}"}) for i in range(2500)])
    assert len(calls) == 4, "2,500 jobs: three chunks"
    assert [j.id for j in jobs] == [f"j{i}" for i in range(2500)], "in the items' order"


async def test_deferred_job_waits_then_runs(queue: Queue) -> None:
    # due far enough out that a burst worker started on a loaded machine is done before it
    due = time.monotonic() + 1.5
    job = await queue.enqueue(add, 1, 1, _defer_by=timedelta(seconds=1.5))
    info = await job.info()
    assert info.status is JobStatus.DEFERRED and info.scheduled_at is not None
    await run_burst(queue, [add])
    assert await job.status() is JobStatus.DEFERRED, "burst does not wait for future jobs"
    await asyncio.sleep(max(0.0, due - time.monotonic()) + 0.05)
    await run_burst(queue, [add])
    assert await job.result(timeout=5) == 2


async def test_defer_until_in_the_past_is_ready(queue: Queue) -> None:
    job = await queue.enqueue(add, 1, 1, _defer_until=datetime.now(timezone.utc) - timedelta(1))
    assert await job.status() is JobStatus.QUEUED


async def test_priority_orders_ready_jobs(queue: Queue) -> None:
    order: list[int] = []

    @task(name="record")
    async def record(ctx: Context, n: int) -> None:
        order.append(n)

    for n, prio in [(1, 0), (2, 5), (3, -5), (4, 5), (5, 0)]:
        await queue.enqueue(record, n, _priority=prio)
    await run_burst(queue, [record], concurrency=1)
    assert order == [2, 4, 1, 5, 3]


async def test_priority_out_of_range(queue: Queue) -> None:
    with pytest.raises(ValueError, match="_priority"):
        await queue.enqueue(add, 1, 2, _priority=5000)


async def test_expired_job_is_dropped_unstarted(queue: Queue) -> None:
    job = await queue.enqueue(add, 1, 2, _expires=0.05)
    await asyncio.sleep(0.1)
    await run_burst(queue, [add])
    assert await job.status() is JobStatus.EXPIRED
    with pytest.raises(JobCancelled):
        await job.result(timeout=1)


async def test_unserializable_arguments_write_nothing(queue: Queue) -> None:
    before = await key_count(queue)
    with pytest.raises(SerializationError, match="arguments of 'add'"):
        await queue.enqueue(add, object(), 2)
    with pytest.raises(SerializationError):
        await queue.enqueue_many([(add, (1, 2), {}), (add, ({1: object()}, 2), {})])
    assert await key_count(queue) == before


async def test_wrong_arguments_and_unknown_options_fail_at_enqueue(queue: Queue) -> None:
    with pytest.raises(TypeError, match="wrong arguments for task 'add'"):
        await queue.enqueue(add, 1, 2, 3)
    with pytest.raises(TypeError, match="unknown enqueue option"):
        await queue.enqueue(add, 1, 2, _defer=3)
    with pytest.raises(TypeError):
        await queue.enqueue(42)  # type: ignore[call-overload]


async def test_pydantic_models_round_trip(queue: Queue) -> None:
    job = await queue.enqueue(shift, Point(x=1, y=2), by=10)
    await run_burst(queue, [shift])
    result = await job.result(timeout=5)
    assert result == Point(x=11, y=12)
    by_id = await queue.job(job.id).result(timeout=5)
    assert by_id == {"x": 11, "y": 12}, "a handle without the Task gives plain JSON"


async def test_cancel_queued_and_deferred_jobs(queue: Queue) -> None:
    ran: list[int] = []

    @task(name="mark")
    async def mark(ctx: Context, n: int) -> None:
        ran.append(n)

    queued = await queue.enqueue(mark, 1)
    deferred = await queue.enqueue(mark, 2, _defer_by=0.05)
    kept = await queue.enqueue(mark, 3)
    assert await queued.cancel() is True
    assert await deferred.cancel() is True
    # Asked again (or retried after a lost reply), a cancelled job still answers True.
    assert await queued.cancel() is True, "the job is cancelled: cancel() says so every time"
    await asyncio.sleep(0.1)
    await run_burst(queue, [mark])
    assert ran == [3]
    assert await queued.status() is JobStatus.CANCELLED
    assert await deferred.status() is JobStatus.CANCELLED
    assert await kept.status() is JobStatus.SUCCEEDED
    assert await kept.cancel() is False, "a job that ended otherwise cannot be cancelled"
    assert await queue.job("no-such-job").cancel() is False


async def test_unknown_job(queue: Queue) -> None:
    job = queue.job("does-not-exist")
    assert await job.status() is JobStatus.NOT_FOUND
    assert (await job.info()).status is JobStatus.NOT_FOUND
    assert await job.cancel() is False
    with pytest.raises(ResultNotFound):
        await job.result(timeout=1)


async def test_result_timeout(queue: Queue) -> None:
    job = await queue.enqueue(add, 1, 2)
    with pytest.raises(TimeoutError):
        await job.result(timeout=0.1)


async def test_task_is_callable_directly() -> None:
    assert await add(None, 2, 3) == 5
