"""What careless or hostile input does: one clear error, and no other job lost or stuck."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import Any

import pytest

from asyncjobs import (
    ConfigurationError,
    Context,
    JobFailed,
    JobStatus,
    Queue,
    SerializationError,
    WorkerSettings,
    task,
)

from .conftest import key_count, run_burst


@task(name="noop")
async def noop(ctx: Context, n: int = 0) -> int:
    return n


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken")


@task(name="raises_unprintable", max_tries=1)
async def raises_unprintable(ctx: Context) -> None:
    raise Unprintable()


@task(name="raises_surrogate", max_tries=1)
async def raises_surrogate(ctx: Context) -> None:
    raise ValueError("bad \udc80 byte")


@task(name="raises_huge", max_tries=1)
async def raises_huge(ctx: Context) -> None:
    raise ValueError("x" * 20_000_000)


@task(name="returns_nan")
async def returns_nan(ctx: Context) -> float:
    return math.nan


async def test_errors_that_cannot_be_rendered_still_fail_the_job(queue: Queue) -> None:
    """An exception whose __str__ raises, or whose text is not valid UTF-8, ends the job
    FAILED with its type (not WorkerLost after its lease), and the other jobs run."""
    bad = [await queue.enqueue(raises_unprintable), await queue.enqueue(raises_surrogate)]
    fine = await queue.enqueue(noop, 1)
    await run_burst(queue, [raises_unprintable, raises_surrogate, noop])
    with pytest.raises(JobFailed) as unprintable:
        await bad[0].result(timeout=5)
    assert unprintable.value.error_type == "Unprintable"
    assert "could not be rendered" in unprintable.value.error_message
    with pytest.raises(JobFailed) as surrogate:
        await bad[1].result(timeout=5)
    assert surrogate.value.error_type == "ValueError"
    assert surrogate.value.error_message == "bad \\udc80 byte"
    assert await fine.result(timeout=5) == 1


async def test_a_huge_error_message_is_stored_cut(queue: Queue) -> None:
    """A 20 MB message is cut to a few KB in the job, its kept result and its dead letter."""
    job = await queue.enqueue(raises_huge)
    await run_burst(queue, [raises_huge])
    info = await job.info()
    assert info.status is JobStatus.FAILED
    assert info.error_message is not None and len(info.error_message) < 10_000
    assert "characters cut" in info.error_message
    assert info.traceback is not None and len(info.traceback) < 40_000
    [dead] = await queue.dead_letters()
    assert dead.error_message is not None and len(dead.error_message) < 10_000


async def test_a_job_id_with_spaces_wakes_its_waiter(queue: Queue) -> None:
    job = await queue.enqueue(noop, 7, _job_id="order 42 for ada")
    waiting = asyncio.create_task(job.result(timeout=10))
    await run_burst(queue, [noop])
    assert await waiting == 7


BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"_timeout": -1}, ValueError, "_timeout"),
    ({"_timeout": 0.0004}, ValueError, "_timeout must be at least 0.001"),
    ({"_timeout": math.inf}, ValueError, "_timeout"),
    ({"_max_tries": -1}, ValueError, "_max_tries takes a whole number"),
    ({"_max_tries": 0}, ValueError, "_max_tries"),
    ({"_max_tries": 2.5}, ValueError, "_max_tries"),
    ({"_defer_by": "10"}, TypeError, "_defer_by takes seconds"),
    ({"_defer_by": math.nan}, ValueError, "_defer_by must be between"),
    ({"_defer_by": 1e20}, ValueError, "_defer_by must be between"),
    ({"_defer_by": -5}, ValueError, "_defer_by"),
    ({"_defer_until": "2030-01-01"}, TypeError, "_defer_until takes a datetime"),
    ({"_defer_until": datetime.max}, ValueError, "_defer_until"),
    ({"_expires": timedelta(days=-1)}, ValueError, "_expires"),
    ({"_priority": 5000}, ValueError, "_priority must be within"),
    ({"_priority": "high"}, TypeError, "_priority takes an int"),
    ({"_idempotency_ttl": 0}, ValueError, "_idempotency_ttl"),
    ({"_idempotency_key": ""}, TypeError, "_idempotency_key"),
    ({"_job_id": ""}, TypeError, "_job_id"),
    ({"_queue_name": "has space"}, ValueError, "invalid queue name"),
    ({"_nonsense": 1}, TypeError, "unknown enqueue option"),
]


@pytest.mark.parametrize(("options", "error", "says"), BAD_OPTIONS)
async def test_a_bad_enqueue_option_is_refused_by_name(
    queue: Queue, options: dict[str, Any], error: type[Exception], says: str
) -> None:
    before = await key_count(queue)
    with pytest.raises(error, match=says):
        await queue.enqueue(noop, 1, **options)
    with pytest.raises(error, match=says):
        await queue.enqueue_many([(noop, (1,), {}), (noop, (2,), options)])
    assert await key_count(queue) == before, "nothing was written, not even the good item"


async def test_nan_and_infinity_are_refused_not_turned_into_null(queue: Queue) -> None:
    """JSON has no NaN: orjson would store null. Arguments are refused at enqueue; a result
    fails the job with SerializationError (a permanent error)."""
    for value in (math.nan, math.inf, [1.0, -math.inf], {"a": {"b": math.nan}}):
        with pytest.raises(SerializationError, match="NaN or infinity"):
            await queue.enqueue(noop, value)
    assert (await queue.enqueue(noop, 1)).id  # plain numbers and None still go through
    job = await queue.enqueue(returns_nan)
    await run_burst(queue, [returns_nan, noop])
    with pytest.raises(JobFailed) as failed:
        await job.result(timeout=5)
    assert failed.value.error_type == "SerializationError"


def test_a_worker_without_queues_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="queues"):
        WorkerSettings(queues=[])
    with pytest.raises(ConfigurationError, match="queues"):
        WorkerSettings.coerce({"queues": []})
