"""Cron at run time: add a schedule to running workers, list it, remove it. Runs as it is on
the embedded backend (no Redis server needed).

python docs/examples/runtime_cron_example.py
"""

from __future__ import annotations

import asyncio

from asyncjobs import Context, Queue, Worker, WorkerSettings, cron, task

ticks: list[str] = []
two_ticks = asyncio.Event()


@task
async def send_digest(ctx: Context, team: str) -> None:
    ticks.append(ctx.job_id)  # cron:<name>:<tick in ms>
    if len(ticks) == 2:
        two_ticks.set()


async def main() -> None:
    url = "memory://runtime-cron"
    async with Queue(url) as queue:
        # A worker that knows send_digest, started with no cron at all.
        worker = Worker(WorkerSettings(redis_url=url, functions=[send_digest]))
        running = asyncio.create_task(worker.run(handle_signals=False))

        # From anywhere (a web app's admin page, a script): stored in Redis, picked up at once.
        await queue.add_cron(
            cron(send_digest, "* * * * * *", name="ops-digest", args=("ops",))  # every second
        )
        # A producer that does not import the task can name it; no worker knows this one.
        await queue.add_cron(cron("reports.weekly", "0 8 * * mon", name="weekly-report"))

        await asyncio.wait_for(two_ticks.wait(), 10)
        for info in await queue.crons():
            print(f"{info.name}: {info.task} [{info.expression}] served={info.served}")
            print(f"  next run {info.next_run:%Y-%m-%d %H:%M:%S}, last run {info.last_run}")
        print("ticks so far:", len(ticks))

        print("removed:", await queue.remove_cron("ops-digest"))
        print("removed:", await queue.remove_cron("weekly-report"))
        print("crons left:", await queue.crons())

        worker.stop()
        await running


if __name__ == "__main__":
    asyncio.run(main())
