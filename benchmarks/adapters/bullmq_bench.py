"""BullMQ for Python adapter: the queue's processor, a worker program, and the client side.

BullMQ has no worker CLI: a ``Worker`` runs inside the user's own program. Ours is
``python bullmq_bench.py worker``: one ``bullmq.Worker`` on queue "bench" that runs until SIGTERM
and then ``await worker.close()`` (running jobs finish). Its concurrency is BullMQ's default
(1) unless the harness sets BENCH_CONCURRENCY. One processor serves every job and dispatches on
``job.name``, as BullMQ's docs do. The client side uses ``Queue.add``, ``Queue.addBulk`` and, for
results, ``QueueEvents`` (the Python package has no ``waitUntilFinished``; the adapter listens
on the job's ``completed:<id>`` event and reads the job once in case it finished first, which is
what Node's ``waitUntilFinished`` does). BullMQ logs nothing per job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

from bench_common import CONCURRENCY, REDIS_URL, count_job, sleep_job, stamp_job
from bench_common import Adapter as BaseAdapter
from bullmq import Job, Queue, QueueEvents, Worker

QUEUE = "bench"
#: seconds a round trip waits for its completed event before it reads the job instead
EVENT_WAIT_S = 5.0


async def process(job: Job, token: str) -> Any:
    started = time.time()
    if job.name == "noop":
        await count_job(started)
    elif job.name == "sleeper":
        await sleep_job(started)
    elif job.name == "stamp":
        await stamp_job(job.data["i"], started)
    elif job.name == "echo":
        return job.data["value"]
    else:
        raise ValueError(f"unknown job name {job.name!r}")
    return None


async def run_worker() -> None:
    """The worker program: until SIGTERM or SIGINT, then a graceful close."""
    opts: dict[str, Any] = {"connection": REDIS_URL}
    if CONCURRENCY:
        opts["concurrency"] = CONCURRENCY
    worker = Worker(QUEUE, process, opts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await worker.close()


KINDS = {"noop": "noop", "sleep": "sleeper"}


class Adapter(BaseAdapter):
    name = "bullmq"
    # BullMQ sets its defaults inside Worker.__init__; an idle Worker tells (it sends nothing)
    default_concurrency = int(Worker(QUEUE, None, {"autorun": False}).opts["concurrency"])
    batch_api = "Queue.addBulk (one pipeline of addStandardJob scripts per chunk)"
    result_api = "Queue.add + QueueEvents 'completed:<id>' (stream XREAD), job read once"
    burst_na = "no burst mode: a Worker runs until it is closed"

    missed = 0

    async def open(self, url: str) -> None:
        self.url = url
        self.q = Queue(QUEUE, {"connection": url})
        # opened by the first round trip only: a QueueEvents reads every event of a drain too
        self.events: QueueEvents | None = None

    async def close(self) -> None:
        if self.events is not None:
            await self.events.close()
        await self.q.close()

    async def enqueue(self, kind: str, *args: Any) -> None:
        if kind == "stamp":
            await self.q.add("stamp", {"i": args[0]})
        else:
            await self.q.add(KINDS[kind], {})

    async def enqueue_batch(self, kind: str, count: int) -> None:
        await self.q.addBulk([{"name": KINDS[kind], "data": {}} for _ in range(count)])

    async def round_trip(self, i: int) -> Any:
        if self.events is None:
            # from the stream's start, not its end ("$", the default): an event written before
            # the first XREAD is read too, so the warm-up's cannot slip through
            self.events = QueueEvents(QUEUE, {"connection": self.url, "lastEventId": "0-0"})
        job = await self.q.add("echo", {"value": i})
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def completed(args: dict[str, Any], _event_id: str) -> None:
            if not done.done():
                done.set_result(args.get("returnvalue"))

        channel = f"completed:{job.id}"
        self.events.on(channel, completed)
        try:
            finished = await Job.fromId(self.q, job.id)
            if finished is not None and finished.finishedOn:
                return finished.returnvalue
            try:
                return await asyncio.wait_for(done, EVENT_WAIT_S)
            except asyncio.TimeoutError:
                self.missed += 1  # not seen in these runs; counted, not hidden
                finished = await Job.fromId(self.q, job.id)
                return None if finished is None else finished.returnvalue
        finally:
            self.events.off(channel, completed)

    def notes(self) -> dict[str, Any]:
        return {"missed_notifications": self.missed}

    async def last_finished_at(self) -> float | None:
        """``finishedOn`` of the newest job in the completed set (a sorted set by finish time)."""
        newest = await self.q.getCompleted(0, 0)
        return newest[0].finishedOn / 1000 if newest and newest[0].finishedOn else None

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        return [sys.executable, os.path.abspath(__file__), "worker"]


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        asyncio.run(run_worker())
    else:
        from scenarios import main

        main("bullmq_bench")
