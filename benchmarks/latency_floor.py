#!/usr/bin/env python
"""The floor under enqueue->start latency on this machine, without any job queue.

    python benchmarks/latency_floor.py [--samples 200] [--gap-ms 20]

A waiter process blocks on BZPOPMIN (as an idle asyncjobs worker does). The writer ZADDs the key
every gap and stamps the time; the waiter stamps when BZPOPMIN returns and after one EVALSHA of
a tiny script. Three waiters, one after another, on a private redis-server (loopback, stopped by
PID):

- redis-py: wake-up (one round trip: the floor for a design that gets the job in the wake-up
  reply, like taskiq's XREADGROUP), then the script as a second round trip (asyncjobs until
  the Wire);
- asyncjobs's Wire, the same two round trips;
- asyncjobs's Wire with the script pipelined behind the BZPOPMIN (what the worker does now):
  Redis runs it as the block ends, so both replies come back together.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent / "adapters"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import redis.asyncio as aioredis
from bench_common import pct
from redis_process import RedisServer

from asyncjobs._store.wire import Wire  # private: this measures the Wire itself

SCRIPT = "return redis.call('ZCARD', KEYS[1])"
MODES = {
    "redis-py": "redis-py: wake, then script",
    "wire": "Wire: wake, then script",
    "pipelined": "Wire: wake + pipelined script",
}


def waiter(
    url: str, mode: str, samples: int, out: multiprocessing.Queue[list[tuple[float, float]]]
) -> None:
    async def run() -> None:
        client = aioredis.Redis.from_url(url)
        sha = await client.script_load(SCRIPT)
        host, port = url.split("//")[1].split("/")[0].split(":")
        wire = Wire(host=host, port=int(port))
        stamps = []
        for _ in range(samples):
            if mode == "redis-py":
                await client.bzpopmin(["floor:wake"], timeout=0)
                woke = time.time()
                await client.evalsha(sha, 1, "floor:ready")
            elif mode == "wire":
                await wire.call("BZPOPMIN", "floor:wake", 0)
                woke = time.time()
                await wire.call("EVALSHA", sha, 1, "floor:ready")
            else:
                await wire.block_then(("BZPOPMIN", "floor:wake", 0), ("EVALSHA", sha, 1, "x"))
                woke = time.time()
            stamps.append((woke, time.time()))
        out.put(stamps)
        wire.close()
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    args = parser.parse_args()
    server = RedisServer().start()
    rows = []
    try:
        for mode, title in MODES.items():
            out: multiprocessing.Queue[list[tuple[float, float]]] = multiprocessing.Queue()
            proc = multiprocessing.Process(
                target=waiter, args=(server.url, mode, args.samples, out)
            )
            proc.start()
            sent = asyncio.run(writer(server.url, args.samples, args.gap_ms / 1000))
            stamps = out.get(timeout=60)
            proc.join(10)
            woke = [(w - s) * 1000 for s, (w, _) in zip(sent, stamps, strict=True)]
            done = [(c - s) * 1000 for s, (_, c) in zip(sent, stamps, strict=True)]
            rows.append((title, woke, done))
    finally:
        server.stop()

    print(f"{'waiter':32} {'woken p50':>10} {'script done p50':>16} {'p99':>8}")
    for title, woke, done in rows:
        print(
            f"{title:32} {pct(woke, 50):8.2f} ms {pct(done, 50):13.2f} ms {pct(done, 99):5.2f} ms"
        )


if __name__ == "__main__":
    main()
