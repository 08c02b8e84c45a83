"""Drive a worker subprocess and an enqueuing client through repeated Redis outages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asyncjobs import Job, Queue

from .chaos_tasks import record
from .helpers import WorkerProcess, statuses, wait_until

HOLD_MS = 50


@dataclass
class OutageRun:
    """What one run through outages observed."""

    returned: list[Job[Any]] = field(default_factory=list)
    enqueue_errors: dict[str, int] = field(default_factory=dict)
    recover_times: list[float] = field(default_factory=list)
    not_succeeded: int = -1

    def summary(self) -> str:
        times = ", ".join(f"{t:.2f}" for t in self.recover_times)
        return (
            f"jobs={len(self.returned)} lost={self.not_succeeded} "
            f"failed_enqueues={sum(self.enqueue_errors.values())} {self.enqueue_errors} "
            f"recover_s=[{times}]"
        )


async def run_through_outages(
    queue: Queue,
    worker: WorkerProcess,
    runs_key: str,
    outage: Callable[[int], Awaitable[None]],
    outages: int,
) -> OutageRun:
    """Enqueue one job at a time all along while ``outage(i)`` strikes ``outages`` times; then
    wait for every job whose enqueue returned to succeed. Recovery time: from the end of an
    outage until a job enqueued after it has succeeded."""
    run = OutageRun()
    stop = asyncio.Event()
    keys = queue.keys_for(queue.name)

    async def enqueue_all_along() -> None:
        while not stop.is_set():
            try:
                run.returned.append(await queue.enqueue(record, runs_key, HOLD_MS))
            except Exception as exc:  # counted and shown; only connection errors are expected
                name = type(exc).__name__
                run.enqueue_errors[name] = run.enqueue_errors.get(name, 0) + 1
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.01)

    async def one_after(mark: int) -> bool:
        if len(run.returned) <= mark:
            return False
        return (await statuses(queue.client, keys.job_prefix, [run.returned[mark].id])) == [
            "succeeded"
        ]

    producer = asyncio.create_task(enqueue_all_along())
    try:
        await wait_until(lambda: one_after(0), 30, "the worker to run a first job")
        for i in range(outages):
            await asyncio.sleep(0.5)
            await outage(i)
            ended, mark = time.monotonic(), len(run.returned)
            await wait_until(lambda m=mark: one_after(m), 60, f"recovery from outage {i + 1}")
            run.recover_times.append(time.monotonic() - ended)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await producer
    assert worker.alive(), "the worker process died:\n" + worker.log_text()[-3000:]
    # The last job goes through the result waiter (its pub/sub connection was cut too).
    await run.returned[-1].result(timeout=30)

    async def all_succeeded() -> bool:
        states = await statuses(queue.client, keys.job_prefix, [j.id for j in run.returned])
        run.not_succeeded = sum(1 for s in states if s != "succeeded")
        return run.not_succeeded == 0

    # A timeout here is reported by the caller's assertion on not_succeeded, with the figures.
    with contextlib.suppress(AssertionError):
        await wait_until(all_succeeded, 60, "every job whose enqueue returned to succeed", 0.2)
    return run


def problem_lines(log: str) -> list[str]:
    """Log lines at WARNING or above, and traceback lines."""
    return [
        line
        for line in log.splitlines()
        if " WARNING " in line or " ERROR " in line or "Traceback" in line
    ]
