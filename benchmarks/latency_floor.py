#!/usr/bin/env python
"""The floor under enqueue->start latency on this machine, without any job queue.

    python benchmarks/latency_floor.py [--samples 200] [--gap-ms 20]

A waiter process blocks on BZPOPMIN (as an idle asyncjobs worker does). The writer ZADDs the key
every gap and stamps the time; the waiter stamps (1) when BZPOPMIN returns: one round trip, the
floor for a design that gets the job in the wake-up reply (taskiq's XREADGROUP), and (2) after
one EVALSHA of a tiny script: two round trips, the floor for asyncjobs's wake-then-claim. Both
with redis-py on asyncio, on a private redis-server (loopback, stopped by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis
from bench_asyncjobs import RedisServer

SCRIPT = "return redis.call('ZCARD', KEYS[1])"


def waiter(url: str, samples: int, out: multiprocessing.Queue[list[tuple[float, float]]]) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(url)
        sha = await client.script_load(SCRIPT)
        stamps = []
        for _ in range(samples):
            await client.bzpopmin(["floor:wake"], timeout=0)
            woke = time.time()
            await client.evalsha(sha, 1, "floor:ready")
            stamps.append((woke, time.time()))
        out.put(stamps)
        await client.aclose()

    asyncio.run(run())


async def writer(url: str, samples: int, gap: float) -> list[float]:
    client = aioredis.Redis.from_url(url)
    sent = []
    await asyncio.sleep(0.5)  # let the waiter block first
    for _ in range(samples):
        sent.append(time.time())
        await client.zadd("floor:wake", {"w": 0})
        await asyncio.sleep(gap)
    await client.aclose()
    return sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    args = parser.parse_args()
    server = RedisServer().start()
    try:
        out: multiprocessing.Queue[list[tuple[float, float]]] = multiprocessing.Queue()
        proc = multiprocessing.Process(target=waiter, args=(server.url, args.samples, out))
        proc.start()
        sent = asyncio.run(writer(server.url, args.samples, args.gap_ms / 1000))
        stamps = out.get(timeout=60)
        proc.join(10)
    finally:
        server.stop()
    one = sorted((w - s) * 1000 for s, (w, _) in zip(sent, stamps, strict=True))
    two = sorted((c - s) * 1000 for s, (_, c) in zip(sent, stamps, strict=True))
    for name, values in (("wake-up reply (1 round trip)", one), ("wake + claim (2)", two)):
        p50 = statistics.median(values)
        p99 = values[int(0.99 * (len(values) - 1))]
        print(f"{name:30} p50 {p50:.2f} ms   p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
