"""SAQ adapter: a settings callable for the ``saq`` CLI, and the client side (``Queue.from_url``).

Worker: ``saq saq_bench.settings`` (one process; SAQ's CLI has no concurrency flag: the settings
take BENCH_CONCURRENCY when the harness sets it, else SAQ's default of 10). The CLI logs at
WARNING unless ``-v`` is given, so no per-job log lines.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from bench_common import (
    BURST,
    CONCURRENCY,
    REDIS_URL,
    bin_path,
    count_job,
    sleep_job,
    stamp_job,
)
from bench_common import (
    Adapter as BaseAdapter,
)
from saq import Queue, Worker


async def noop(ctx: dict[str, Any]) -> None:
    await count_job(time.time())


async def sleeper(ctx: dict[str, Any]) -> None:
    await sleep_job(time.time())


async def stamp(ctx: dict[str, Any], *, i: int) -> None:
    await stamp_job(i, time.time())


async def echo(ctx: dict[str, Any], *, value: Any) -> Any:
    return value


def settings() -> dict[str, Any]:
    """Called by the CLI in the worker process (so the client side builds no worker Queue)."""
    out: dict[str, Any] = {
        "queue": Queue.from_url(REDIS_URL),
        "functions": [noop, sleeper, stamp, echo],
    }
    if CONCURRENCY:
        out["concurrency"] = CONCURRENCY
    if BURST:
        # Worker(burst=True) stops once a dequeue finds nothing; it needs a dequeue_timeout > 0
        # (the default 0 blocks for ever): how long it waits on an empty queue before it exits.
        out.update(burst=True, dequeue_timeout=1.0)
    return out


KINDS = {"noop": "noop", "sleep": "sleeper"}


class Adapter(BaseAdapter):
    name = "saq"
    default_concurrency = int(inspect.signature(Worker).parameters["concurrency"].default)
    batch_na = (
        "no bulk enqueue: Queue.map/apply gather single enqueues and wait for results; "
        "Queue.batch() only aborts the group on error"
    )
    result_api = "job = await queue.enqueue(...); await job.refresh(until_complete=...) (pub/sub)"

    missed = 0

    async def open(self, url: str) -> None:
        self.q = Queue.from_url(url)
        await self.q.connect()

    async def close(self) -> None:
        await self.q.disconnect()

    async def enqueue(self, kind: str, *args: Any) -> None:
        if kind == "stamp":
            await self.q.enqueue("stamp", i=args[0])
        else:
            await self.q.enqueue(KINDS[kind])

    async def round_trip(self, i: int) -> Any:
        job = await self.q.enqueue("echo", value=i)
        assert job is not None
        try:
            await job.refresh(until_complete=5)
        except asyncio.TimeoutError:
            # refresh() subscribes (PSUBSCRIBE in a background task) only after reading the
            # job, and closes the subscription after each wait: a job that finishes in between
            # is never announced, and the wait runs into its timeout. Counted, not hidden.
            self.missed += 1
            await job.refresh()
        return job.result

    def notes(self) -> dict[str, Any]:
        return {"missed_notifications": self.missed}

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        return [bin_path("saq"), "saq_bench.settings"]


if __name__ == "__main__":
    from scenarios import main

    main("saq_bench")
