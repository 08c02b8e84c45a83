"""Testing tasks with pytest, on the embedded memory:// backend: no Redis server needed.

python -m pytest docs/examples/test_tasks_example.py     # or run this file directly
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from asyncjobs import Context, JobFailed, Queue, Worker, WorkerSettings, task


@task(max_tries=3, backoff=0, retry_on=(ConnectionError,))  # no wait between tries
async def charge(ctx: Context, order_id: int, cents: int) -> str:
    if cents <= 0:
        raise ValueError("nothing to charge")  # not in retry_on: fails at once
    gateway = ctx["gateway"]  # worker-wide state that on_startup filled
    return str(await gateway.charge(order_id, cents))


class FakeGateway:
    """Stands in for the payment client; the first ``flaky`` calls fail like a network would."""

    def __init__(self, flaky: int = 0) -> None:
        self.flaky = flaky
        self.charged: list[tuple[int, int]] = []

    async def charge(self, order_id: int, cents: int) -> str:
        if self.flaky:
            self.flaky -= 1
            raise ConnectionError("gateway timed out")
        self.charged.append((order_id, cents))
        return f"receipt-{order_id}"


# 1. Call the task directly: no queue and no worker, just the function and a context.


@pytest.mark.asyncio
async def test_charge_directly() -> None:
    gateway = FakeGateway()
    async with Queue(f"memory://{uuid.uuid4().hex}") as queue:
        ctx = Context(
            job_id="test-1",
            task_name="charge",
            attempt=1,
            max_tries=3,
            enqueued_ms=0,
            queue=queue,
            state={"gateway": gateway},
        )
        assert await charge(ctx, 7, 500) == "receipt-7"
    assert gateway.charged == [(7, 500)]


# 2. Enqueue, then run a burst worker: the real Lua scripts, retries and dead letters.


@pytest_asyncio.fixture
async def queue() -> AsyncIterator[Queue]:
    async with Queue(f"memory://{uuid.uuid4().hex}") as queue:  # a fresh backend per test
        yield queue


async def run_worker(queue: Queue, gateway: FakeGateway) -> None:
    """Run every job that is ready, then return (burst mode)."""

    async def startup(state: dict[str, Any]) -> None:
        state["gateway"] = gateway

    settings = WorkerSettings(redis_url=queue.url, functions=[charge], on_startup=startup)
    await Worker(settings).run(burst=True, handle_signals=False)


@pytest.mark.asyncio
async def test_a_flaky_gateway_is_retried(queue: Queue) -> None:
    gateway = FakeGateway(flaky=2)
    job = await queue.enqueue(charge, 7, 500)
    await run_worker(queue, gateway)
    assert await job.result(timeout=5) == "receipt-7"
    assert (await job.info()).attempts == 3
    assert gateway.charged == [(7, 500)]


@pytest.mark.asyncio
async def test_a_bad_amount_fails_at_once_into_the_dead_letters(queue: Queue) -> None:
    job = await queue.enqueue(charge, 8, 0)
    await run_worker(queue, FakeGateway())
    with pytest.raises(JobFailed) as failed:
        await job.result(timeout=5)
    assert failed.value.error_type == "ValueError" and failed.value.attempts == 1
    assert [entry.id for entry in await queue.dead_letters()] == [job.id]


if __name__ == "__main__":  # run these tests with pytest, in a process of their own
    import subprocess
    import sys

    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__]
    raise SystemExit(subprocess.run(command).returncode)
