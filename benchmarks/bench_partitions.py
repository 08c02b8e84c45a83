#!/usr/bin/env python
"""Redis CPU per job on the busiest master of a 3-master cluster: one queue with 1, 3, 6
partitions.

    python benchmarks/bench_partitions.py [--jobs 20000] [--workers 2] [--partitions 1,3,6]
                                          [--repeat 3]

Each round makes a fresh queue, sets its partitions, pre-enqueues N no-op jobs, then snapshots
every master's ``INFO cpu`` (used_cpu_sys + used_cpu_user) and ``INFO commandstats``, runs W
`asyncjobs worker --burst --log-level WARNING` processes on the queue until they exit, and
snapshots again: each master's CPU µs and commands per job for the drain (claims, acks, leases,
heartbeats), the busiest master's share, and the drain rate. The cluster is the tests' own
(tests/redis_cluster.py: three redis-servers on free loopback ports, stopped by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "adapters"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/redis_cluster.py

import redis.asyncio as aioredis
from redis_cost import cost, read_usage
from worker_process import WorkerProcess

from asyncjobs import Context, Queue, WorkerSettings, task
from tests.redis_cluster import RedisCluster

HERE = Path(__file__).resolve().parent
CHUNK = 5000


@task
async def noop(ctx: Context) -> None:
    """The job: nothing, so what is measured is the queue's own cost."""


#: What the worker processes run (`asyncjobs worker bench_partitions:settings --queue Q`).
settings = WorkerSettings(functions=[noop], concurrency=100)


def worker_cmd(url: str, queue: str) -> list[str]:
    return [sys.executable, "-m", "asyncjobs", "worker", "bench_partitions:settings",
            "--redis-url", url, "--queue", queue, "--burst", "--log-level", "WARNING"]  # fmt: skip


async def masters_of(queue: Queue, names: list[str]) -> list[str]:
    """Which master (host:port) holds each physical queue."""
    found = []
    for name in names:
        slot = await queue.client.cluster_keyslot(queue.keys_for(name).ready)
        found.append(queue.client.nodes_manager.get_node_from_slot(slot).name)
    return found


async def one_round(
    cluster: RedisCluster, partitions: int, jobs: int, workers: int, logdir: str, name: str
) -> dict[str, Any]:
    nodes = {f"127.0.0.1:{n.port}": aioredis.Redis(port=n.port) for n in cluster.nodes}
    async with Queue(cluster.url, name=name) as queue:
        if partitions > 1:
            await queue.set_partitions(partitions)
        for start in range(0, jobs, CHUNK):
            await queue.enqueue_many([(noop, (), {})] * min(CHUNK, jobs - start))
        placed = await masters_of(queue, await queue.partition_names())
        before = {node: await read_usage(c) for node, c in nodes.items()}
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path}
        procs = [
            WorkerProcess(worker_cmd(cluster.url, name), env, logdir, f"p{partitions}").start()
            for _ in range(workers)
        ]
        began = time.monotonic()
        try:
            for p in procs:
                code, _ = await asyncio.to_thread(p.wait_exit, 300)
                if code != 0:
                    raise RuntimeError(f"worker exited {code}:\n{p.log_tail()}")
        finally:
            for p in procs:
                p.stop()
        took = time.monotonic() - began
        after = {node: await read_usage(c) for node, c in nodes.items()}
        stats = await queue.stats()
    for c in nodes.values():
        await c.aclose()
    if stats.succeeded != jobs:
        raise RuntimeError(f"{stats.succeeded} of {jobs} jobs succeeded")
    per_node = {n: cost(before[n], after[n], jobs, Counter()) for n in nodes}
    return {
        "partitions": partitions,
        "placed": Counter(placed),
        "cpu": {n: c.cpu_us_per_job for n, c in per_node.items()},
        "commands": {n: c.commands_per_job for n, c in per_node.items()},
        "rate": jobs / took,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", default="1,3,6")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cluster = RedisCluster().start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-partitions-") as logdir:
            rows = []
            for round_ in range(args.repeat):  # a queue name per round: placements differ
                for count in (int(p) for p in args.partitions.split(",")):
                    name = f"bench-{round_}-{uuid.uuid4().hex[:4]}"
                    rows.append(
                        await one_round(cluster, count, args.jobs, args.workers, logdir, name)
                    )
    finally:
        cluster.stop()
    rows.sort(key=lambda row: row["partitions"])
    print(f"{args.jobs} no-op jobs, {args.workers} burst worker processes, 3 masters\n")
    print("| partitions | partitions on each master | busiest master µs/job | all masters µs/job "
          "| busiest master commands/job | drain jobs/s |")  # fmt: skip
    print("|---:|---|---:|---:|---:|---:|")
    by_count: dict[int, list[float]] = {}
    for row in rows:
        busiest = max(row["cpu"], key=row["cpu"].get)
        spread = " / ".join(str(row["placed"].get(n, 0)) for n in sorted(row["cpu"]))
        print(
            f"| {row['partitions']} | {spread} | {row['cpu'][busiest]:.1f} "
            f"| {sum(row['cpu'].values()):.1f} | {row['commands'][busiest]:.1f} "
            f"| {row['rate']:,.0f} |"
        )
        by_count.setdefault(row["partitions"], []).append(row["cpu"][busiest])
    print("\nmedian busiest-master µs/job: " + ", ".join(
        f"{n} partition(s) {statistics.median(v):.1f}" for n, v in by_count.items()
    ))  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
