"""asyncjobs adapter: tasks + WorkerSettings for ``python -m asyncjobs worker``; the client side.

Runs on the interpreter that runs run.py (the project's dev environment), importing asyncjobs
from this working tree (or a ``--rev`` snapshot) through PYTHONPATH. Worker: ``python -m
asyncjobs worker asyncjobs_bench:settings --redis-url URL --loop asyncio [--concurrency C]``
(default concurrency 100, one INFO log line per job). ``--loop`` comes from BENCH_ASYNCJOBS_LOOP
(run.py's ``--asyncjobs-loop``, default ``asyncio``: the peers run on the stdlib loop too); a
CLI without the option (before uvloop support) always runs asyncio and gets no flag.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
from typing import Any

from bench_common import REDIS_URL, count_job, sleep_job, stamp_job
from bench_common import Adapter as BaseAdapter

from asyncjobs import Job, Queue, WorkerSettings, task
from asyncjobs import cli as _cli


@task
async def noop(ctx):  # type: ignore[no-untyped-def]
    await count_job(time.time())


@task
async def empty(ctx):  # type: ignore[no-untyped-def]
    """A job with no body at all: what the worker itself costs (worker_cost.py)."""


@task
async def sleeper(ctx):  # type: ignore[no-untyped-def]
    await sleep_job(time.time())


@task
async def stamp(ctx, i):  # type: ignore[no-untyped-def]
    await stamp_job(i, time.time())


@task
async def echo(ctx, value):  # type: ignore[no-untyped-def]
    return value


settings = WorkerSettings(redis_url=REDIS_URL, functions=[noop, empty, sleeper, stamp, echo])
KINDS = {"noop": noop, "sleep": sleeper, "stamp": stamp}


class Adapter(BaseAdapter):
    name = "asyncjobs"
    default_concurrency = int(WorkerSettings.model_fields["concurrency"].default)
    batch_api = "Queue.enqueue_many (one Lua call per chunk)"
    result_api = "await (await queue.enqueue(...)).result()"
    burst_args = ("--burst",)

    async def open(self, url: str) -> None:
        self.q = Queue(url)
        self.jobs: list[Job[Any]] = []  # the batch-enqueued ones, for last_finished_at

    async def close(self) -> None:
        await self.q.aclose()

    async def enqueue(self, kind: str, *args: Any) -> None:
        await self.q.enqueue(KINDS[kind], *args)

    async def enqueue_batch(self, kind: str, count: int) -> None:
        self.jobs += await self.q.enqueue_many([(KINDS[kind], (), {})] * count)

    async def last_finished_at(self) -> float | None:
        """The latest ``JobInfo.finished_at`` of the batch-enqueued jobs (Redis TIME, ms)."""
        latest = 0.0
        for start in range(0, len(self.jobs), 500):
            chunk = self.jobs[start : start + 500]
            for info in await asyncio.gather(*(job.info() for job in chunk)):
                if info.finished_at is not None:
                    latest = max(latest, info.finished_at.timestamp())
        return latest or None

    async def round_trip(self, i: int) -> Any:
        return await (await self.q.enqueue(echo, i)).result(timeout=30)

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        cmd = [sys.executable, "-m", "asyncjobs", "worker", "asyncjobs_bench:settings"]
        cmd += ["--redis-url", url]
        loop = os.environ.get("BENCH_ASYNCJOBS_LOOP") or "asyncio"
        if "loop" in inspect.signature(_cli.worker).parameters:
            cmd += ["--loop", loop]
        elif loop != "asyncio":
            raise SystemExit(f"this asyncjobs CLI has no --loop option (asked for {loop!r})")
        return cmd + (["--concurrency", str(concurrency)] if concurrency else [])


if __name__ == "__main__":
    from scenarios import main

    main("asyncjobs_bench")
