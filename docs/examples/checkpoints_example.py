"""Long jobs: a checkpointed sync of 50,000 orders, a soft timeout, and a claim check for a big
result. Runs as it is on the embedded backend (no Redis server needed).

python docs/examples/checkpoints_example.py
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from asyncjobs import (
    Context,
    JobFailed,
    Queue,
    SoftTimeout,
    Worker,
    WorkerSettings,
    task,
)

TOTAL_ORDERS, PAGE_SIZE = 50_000, 500
PAGES = TOTAL_ORDERS // PAGE_SIZE


class ShopAPI:
    """Stands for a real shop's API: page 37 times out the first time it is asked for."""

    def __init__(self) -> None:
        self.fetched: Counter[int] = Counter()

    async def orders(self, shop: str, page: int) -> list[dict[str, object]]:
        self.fetched[page] += 1
        if page == 37 and self.fetched[page] == 1:
            raise ConnectionError(f"{shop}: the API timed out on page {page}")
        first = page * PAGE_SIZE
        return [{"id": n, "shop": shop} for n in range(first, first + PAGE_SIZE)]


api = ShopAPI()
saved: dict[int, dict[str, object]] = {}  # stands for your database (an upsert by order id)


# 1. A checkpoint every page: a retry resumes where the failed try got to.
@task(max_tries=5, backoff=0.1)
async def sync_orders(ctx: Context, shop: str) -> dict[str, int]:
    start = ctx.last_checkpoint or 0  # None on the first try
    for page in range(start, PAGES):
        for order in await api.orders(shop, page):
            saved[int(str(order["id"]))] = order
        await ctx.checkpoint(page + 1)  # where the next try starts
    return {"orders": len(saved), "resumed_at_page": start, "try": ctx.attempt}


# 2. A soft timeout: told before the timeout, the task saves where it got to and stops.
@task(timeout=5.0, soft_timeout=0.3, max_tries=20, backoff=0)
async def reindex(ctx: Context, documents: int) -> dict[str, int]:
    done = ctx.last_checkpoint or 0
    try:
        while done < documents:
            await asyncio.sleep(0.002)  # stands for indexing one document
            done += 1
            if done % 100 == 0:
                await ctx.checkpoint(done)
    except SoftTimeout:
        await ctx.checkpoint(done)
        raise  # this try ends as failed; the next one resumes at `done`
    return {"documents": done, "tries": ctx.attempt}


# 3. A big result goes elsewhere; the job returns where it is (a claim check).
BLOBS = Path(tempfile.mkdtemp(prefix="asyncjobs-example-"))


@task
async def monthly_report_inline(ctx: Context, month: str) -> str:
    return "order,amount\n" * 200_000  # 2.6 MB: over max_result_bytes


@task
async def monthly_report(ctx: Context, month: str) -> dict[str, object]:
    body = "order,amount\n" * 200_000
    path = BLOBS / f"report-{month}.csv"  # S3, GCS or a database in a real app
    path.write_text(body)
    return {"path": str(path), "bytes": len(body)}


async def main() -> None:
    url = "memory://long-jobs"
    tasks = [sync_orders, reindex, monthly_report_inline, monthly_report]
    async with Queue(url) as queue:
        worker = Worker(WorkerSettings(redis_url=url, functions=tasks))
        running = asyncio.create_task(worker.run(handle_signals=False))

        job = await queue.enqueue(sync_orders, "acme")
        print("sync:", await job.result(timeout=30))
        twice = sorted(page for page, n in api.fetched.items() if n > 1)
        print(f"  pages fetched: {len(api.fetched)} of {PAGES}, more than once: {twice}")
        print("  checkpoint now:", (await job.info()).checkpoint)

        job = await queue.enqueue(reindex, 300)
        print("reindex:", await job.result(timeout=30))

        try:
            await (await queue.enqueue(monthly_report_inline, "2026-11")).result(timeout=10)
        except JobFailed as exc:
            print("too big:", exc.error_message)
        report = await (await queue.enqueue(monthly_report, "2026-11")).result(timeout=10)
        print("claim check:", Path(report["path"]).name, report["bytes"], "bytes")

        worker.stop()
        await running
    shutil.rmtree(BLOBS)


if __name__ == "__main__":
    asyncio.run(main())
