"""The three workflow patterns, end to end on the embedded backend (no Redis server needed).

python docs/examples/workflows_example.py
"""

from __future__ import annotations

import asyncio

from asyncjobs import Context, Queue, Worker, WorkerSettings, chain, chord, group, task


# 1. ETL: extract -> transform -> load, each step gets the previous result
@task
async def extract(ctx: Context, source: str) -> list[dict[str, int]]:
    return [{"id": i, "amount": i * 10} for i in range(1, 6)]


@task
async def transform(ctx: Context, rows: list[dict[str, int]]) -> list[dict[str, int]]:
    return [{**row, "amount": row["amount"] * 2} for row in rows]


@task
async def load(ctx: Context, rows: list[dict[str, int]], table: str) -> str:
    return f"loaded {len(rows)} rows into {table}"


# 2. Fan-out: email, SMS and analytics for one signup, at the same time
@task
async def send_email(ctx: Context, user: str) -> str:
    return f"email to {user}"


@task
async def send_sms(ctx: Context, user: str) -> str:
    return f"sms to {user}"


@task
async def track(ctx: Context, user: str, event: str) -> str:
    return f"{event} tracked for {user}"


# 3. Chord: process every item, then one callback for the whole batch
@task
async def process(ctx: Context, item: int) -> int:
    await asyncio.sleep(0.001)
    return item * item


@task
async def summarize(ctx: Context, results: list[int]) -> dict[str, int]:
    return {"items": len(results), "sum": sum(results)}


TASKS = [extract, transform, load, send_email, send_sms, track, process, summarize]


async def main() -> None:
    url = "memory://workflows"
    async with Queue(url) as queue:
        worker = Worker(WorkerSettings(redis_url=url, functions=TASKS, concurrency=20))
        running = asyncio.create_task(worker.run(handle_signals=False))

        etl = chain(extract.si("s3://bucket/day.csv"), transform.s(), load.s("sales"))
        print(await (await queue.enqueue(etl)).result(timeout=10))

        signup = group(send_email.si("ada"), send_sms.si("ada"), track.si("ada", "signup"))
        print(await (await queue.enqueue(signup)).result(timeout=10))

        batch = chord(group(process.si(i) for i in range(50)), summarize.s())
        job = await queue.enqueue(batch)
        print(await job.result(timeout=10), "-", (await job.info()).message)

        worker.stop()
        await running


if __name__ == "__main__":
    asyncio.run(main())
