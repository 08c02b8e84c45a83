"""How long each dashboard page takes to render on a big queue: 100,000 jobs queued and 10,000
dead letters (plus history, finished jobs and a deferred one), on a redis-server of its own.

    python benchmarks/dashboard.py                 # the sizes above, 30 timed requests a page
    python benchmarks/dashboard.py --queued 20000 --dead 2000 --requests 10

Each request goes through the whole ASGI app in this process (routing, the Queue's reads from
Redis, Jinja, the security headers), timed from the request to its last byte; HTTP parsing by
uvicorn adds well under a millisecond on top. Prints one line per page: median, p95 and worst.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this working tree's asyncjobs
sys.path.insert(0, str(HERE))

import httpx  # noqa: E402
from redis_process import RedisServer  # noqa: E402

from asyncjobs import Context, Queue, Worker, WorkerSettings, task  # noqa: E402
from asyncjobs.dashboard import create_dashboard  # noqa: E402

QUEUE = "big"


@task
async def work(ctx: Context, n: int) -> int:
    return n


@task(max_tries=1)
async def broken(ctx: Context, n: int) -> None:
    raise ConnectionError(f"SMTP timeout talking to mx{n % 97} for user{n}@example.com")


async def fill(url: str, queued: int, dead: int) -> dict[str, str]:
    """The queue: `dead` failed jobs and 1,000 succeeded ones (run by a burst worker, so the
    history has them), then `queued` jobs no worker takes, and one deferred job."""
    async with Queue(url, name=QUEUE) as queue:
        t = time.perf_counter()
        for start in range(0, dead, 1000):
            n = min(1000, dead - start)
            await queue.enqueue_many([(broken, (start + i,), {}) for i in range(n)])
        await queue.enqueue_many([(work, (i,), {}) for i in range(1000)])
        settings = WorkerSettings(
            redis_url=url, queues=[QUEUE], functions=[work, broken], concurrency=200
        )
        await Worker(settings).run(burst=True, handle_signals=False)
        ran = time.perf_counter() - t
        t = time.perf_counter()
        last = None
        for start in range(0, queued, 1000):
            n = min(1000, queued - start)
            jobs = await queue.enqueue_many([(work, (start + i,), {}) for i in range(n)])
            last = jobs[-1]
        deferred = await queue.enqueue(work, 0, _defer_by=3600)
        stats = await queue.stats()
        [dead_letter] = await queue.dead_letters(1)
        print(
            f"filled in {ran + time.perf_counter() - t:.0f} s: {stats.queued:,} queued, "
            f"{stats.dead_letters:,} dead letters, {stats.succeeded:,} succeeded, "
            f"{stats.deferred} deferred"
        )
        assert last is not None
        return {"queued": last.id, "dead": dead_letter.id, "deferred": deferred.id}


async def measure(url: str, ids: dict[str, str], requests: int) -> list[tuple[str, list[float]]]:
    pages = {
        "overview /": "/",
        "queue, first page of queued": f"/queues/{QUEUE}",
        "queue, queued at offset 70,000": f"/queues/{QUEUE}?offset=70000",
        "queue, dead letters": f"/queues/{QUEUE}?tab=dead",
        "dead letters of one task": f"/queues/{QUEUE}?tab=dead&task=broken",
        "dead letters, error text (rare)": f"/queues/{QUEUE}?tab=dead&search=mx5%20for%20user5",
        "dead letters, error text (none)": f"/queues/{QUEUE}?tab=dead&search=no-such-text",
        "queue, succeeded": f"/queues/{QUEUE}?tab=succeeded",
        "job page, queued job": f"/jobs/{ids['queued']}",
        "job page, dead letter": f"/jobs/{ids['dead']}?queue={QUEUE}",
        "search by id": f"/search?q={ids['deferred']}",
        "workers": "/workers",
        "cron": "/cron",
    }
    app = create_dashboard(url)
    results = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
        for label, path in pages.items():
            for _ in range(3):  # warm: scripts loaded, connections open
                response = await http.get(path)
                assert response.status_code in (200, 303), (path, response.status_code)
            took = []
            for _ in range(requests):
                t = time.perf_counter()
                response = await http.get(path)
                took.append((time.perf_counter() - t) * 1000)
            results.append((f"{label}  ({len(response.content) // 1024} KiB)", took))
    await app.state.asyncjobs_dashboard.source.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--dead", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    server = RedisServer(prefix="bench-dashboard-").start()
    try:
        ids = asyncio.run(fill(server.url, args.queued, args.dead))
        results = asyncio.run(measure(server.url, ids, args.requests))
    finally:
        server.stop()
    print(f"\n{'page':<52} {'median':>8} {'p95':>8} {'worst':>8}   (ms, {args.requests} requests)")
    for label, took in results:
        took.sort()
        p95 = took[min(len(took) - 1, int(len(took) * 0.95))]
        print(f"{label:<52} {statistics.median(took):8.1f} {p95:8.1f} {took[-1]:8.1f}")


if __name__ == "__main__":
    main()
