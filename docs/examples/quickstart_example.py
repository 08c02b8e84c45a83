"""asyncjobs quickstart: define tasks, run a worker, enqueue jobs, await their results.

On the embedded ``memory://`` backend (no Redis server needed), with the worker in-process:

    python docs/examples/quickstart_example.py

On a real Redis, with the worker as a separate process started by the CLI:

    export ASYNCJOBS_REDIS_URL=redis://localhost:6379/0
    cd docs/examples
    asyncjobs worker quickstart_example:settings     # terminal 1
    python quickstart_example.py --no-worker         # terminal 2
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from asyncjobs import Context, JobFailed, Queue, Worker, WorkerSettings, task

REDIS_URL = os.environ.get("ASYNCJOBS_REDIS_URL", "memory://")


@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


@task(name="reports.build", max_tries=2, timeout=10.0)
async def build_report(ctx: Context, user_id: int) -> dict[str, object]:
    await ctx.progress(0.5, stage="collecting")
    greeting = ctx["greeting"]  # worker-wide state that on_startup set up
    return {"user_id": user_id, "greeting": greeting, "try": ctx.attempt}


@task(max_tries=2, backoff=0)  # two tries, no wait between them
async def always_fails(ctx: Context) -> None:
    raise ValueError("this task always fails")


async def startup(state: dict[str, object]) -> None:
    state["greeting"] = "hello"  # e.g. open a database pool here; tasks read ctx["greeting"]


settings = WorkerSettings(
    redis_url=REDIS_URL,
    functions=[add, build_report, always_fails],
    concurrency=10,
    on_startup=startup,
)


async def enqueue_and_wait() -> None:
    async with Queue(REDIS_URL) as queue:
        job = await queue.enqueue(add, 1, 2)
        print("add(1, 2) =", await job.result(timeout=10))

        report = await queue.enqueue("reports.build", 42)  # by registered name
        print("report:", await report.result(timeout=10))
        info = await report.info()
        print("report status:", info.status.value, "progress:", info.progress)

        # The same _job_id again creates nothing: the existing job comes back.
        first = await queue.enqueue(add, 2, 3, _job_id="sum-2-3")
        again = await queue.enqueue(add, 2, 3, _job_id="sum-2-3")
        print("deduplicated:", again.id == first.id, "duplicate:", again.duplicate)
        print("sum:", await again.result(timeout=10))

        failing = await queue.enqueue(always_fails)
        try:
            await failing.result(timeout=10)
        except JobFailed as exc:
            print(f"failed after {exc.attempts} tries: {exc.error_type}: {exc.error_message}")
        dead_ids = [entry.id for entry in await queue.dead_letters(limit=10)]
        print("in the dead letters:", failing.id in dead_ids)


async def main(run_worker: bool) -> None:
    if not run_worker:  # a worker runs elsewhere (asyncjobs worker quickstart_example:settings)
        await enqueue_and_wait()
        return
    worker = Worker(settings)
    running = asyncio.create_task(worker.run(handle_signals=False))
    try:
        await enqueue_and_wait()
    finally:
        worker.stop()  # graceful: jobs in flight finish first
        await running


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main(run_worker="--no-worker" not in sys.argv))
