"""Operating a queue from Python: pause it, look inside, replay its dead letters, purge it.

Runs on the embedded ``memory://`` backend (no Redis server needed), worker in-process:

    python docs/examples/operations_example.py
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from asyncjobs import Context, JobFailed, JobStatus, Queue, Worker, WorkerSettings, task

REDIS_URL = os.environ.get("ASYNCJOBS_REDIS_URL", "memory://operations-example")


@task(retry_on=())  # a failure is permanent: it goes to the dead letters at once
async def send_email(ctx: Context, to: str) -> str:
    if to.endswith("@bounce.test"):
        raise ConnectionError(f"SMTP timeout for {to}")
    return f"sent to {to}"


settings = WorkerSettings(redis_url=REDIS_URL, functions=[send_email], queues=["emails"])


async def main() -> None:
    logging.basicConfig(level=logging.CRITICAL)  # the dead-lettered job would log an ERROR
    async with Queue(REDIS_URL, name="emails") as queue:
        worker = Worker(settings)
        running = asyncio.create_task(worker.run(handle_signals=False))

        # Pause: jobs wait; workers stay idle (blocked, not polling) until resume.
        await queue.pause()
        jobs = [await queue.enqueue(send_email, f"user{i}@example.com") for i in range(3)]
        bounced = await queue.enqueue(send_email, "old@bounce.test")
        waiting = await queue.jobs(JobStatus.QUEUED)  # in the order they will be claimed
        print("paused:", await queue.is_paused(), "- queued:", [j.args[0] for j in waiting])

        await queue.resume()
        print([await job.result(timeout=10) for job in jobs])
        with contextlib.suppress(JobFailed):
            await bounced.result(timeout=10)

        stats = await queue.stats()
        ran = sum(bucket.succeeded for bucket in stats.history)
        print(f"succeeded {stats.succeeded}, failed {stats.failed}; in the last hour: {ran} ran")
        print("workers:", [(w.id, w.concurrency, w.running) for w in await queue.workers()])

        # Dead letters: search them, then replay a task's in bulk (each one read once).
        [dead] = await queue.dead_letters(search="smtp timeout")
        print("dead letter:", dead.id == bounced.id, dead.error)
        print("replayed:", await queue.replay_dead_letters(task="send_email"))
        with contextlib.suppress(JobFailed):
            await bounced.result(timeout=10)  # it fails again: the cause was not fixed

        # Purge: drop what waits (it ends cancelled); running jobs would go on.
        await queue.pause()
        for i in range(5):
            await queue.enqueue(send_email, f"later{i}@example.com", _defer_by=60)
        print("purged:", await queue.purge())
        await queue.resume()

        worker.stop()
        await running


if __name__ == "__main__":
    asyncio.run(main())
