"""A partitioned queue on a real 3-master Redis Cluster, served by worker processes."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from asyncjobs import Queue

from .cluster_tasks import count_run
from .redis_cluster import RedisCluster
from .test_crash import spawn_worker
from .waiting import wait_until

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.cluster


def start_workers(url: str, queue: str, n: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """``n`` `asyncjobs worker` processes on ``queue``, each logging to its own file."""
    return [
        spawn_worker(url, queue, logs / f"w{i}.log", "tests.cluster_tasks:settings")
        for i in range(n)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> list[int]:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    return [proc.wait(30) for proc in procs]


def log_tails(logs: Path) -> str:
    return "\n".join(f.read_text()[-2000:] for f in sorted(logs.glob("w*.log")))


async def wait_for_runs(
    queue: Queue, counter: str, expected: int, procs: list[subprocess.Popen[bytes]], logs: Path
) -> dict[bytes, bytes]:
    deadline = time.monotonic() + 180
    while await queue.client.hlen(counter) < expected:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            done = await queue.client.hlen(counter)
            raise AssertionError(f"{done}/{expected} ran; the workers said:\n{log_tails(logs)}")
        await asyncio.sleep(0.2)
    return await queue.client.hgetall(counter)  # type: ignore[no-any-return]


async def masters_of(queue: Queue, names: list[str]) -> set[str]:
    nodes = set()
    for name in names:
        slot = await queue.client.cluster_keyslot(queue.keys_for(name).ready)
        nodes.add(queue.client.nodes_manager.get_node_from_slot(slot).name)
    return nodes


async def test_six_partitions_have_keys_on_all_three_masters(redis_cluster: RedisCluster) -> None:
    async with Queue(redis_cluster.url, name=f"spread-{uuid.uuid4().hex[:6]}") as queue:
        await queue.set_partitions(6)
        jobs = await queue.enqueue_many([("t", (i,), {}) for i in range(600)])
        names = sorted({job.queue_name for job in jobs})
        assert len(names) == 6
        assert len(await masters_of(queue, names)) == 3
        for name in names:  # each partition's jobs are on its own master, under its own tag
            keys = queue.keys_for(name)
            assert await queue.client.zcard(keys.ready) == sum(j.queue_name == name for j in jobs)
        assert (await queue.stats()).queued == 600


@pytest.mark.slow
async def test_four_worker_processes_drain_20k_jobs_of_six_partitions_exactly_once(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    name = f"p20k-{uuid.uuid4().hex[:6]}"
    counter = f"test:{{{name}}}:runs"
    async with Queue(redis_cluster.url, name=name) as queue:
        await queue.set_partitions(6)
        jobs = await queue.enqueue_many([(count_run, (counter,), {}) for _ in range(20_000)])
        assert len({job.queue_name for job in jobs}) == 6
        procs = start_workers(redis_cluster.url, name, 4, tmp_path)
        try:
            runs = await wait_for_runs(queue, counter, 20_000, procs, tmp_path)
        finally:
            codes = stop_workers(procs)
        assert len(runs) == 20_000 and set(runs.values()) == {b"1"}, "each job ran exactly once"
        assert {j.id.encode() for j in jobs} == set(runs)
        stats = await queue.stats()
        assert (stats.queued, stats.in_progress, stats.succeeded) == (0, 0, 20_000)
        assert codes == [0, 0, 0, 0], "graceful exit on SIGTERM"


async def test_six_to_three_partitions_while_jobs_wait_loses_none(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    name = f"p63-{uuid.uuid4().hex[:6]}"
    counter = f"test:{{{name}}}:runs"
    async with Queue(redis_cluster.url, name=name) as queue:
        await queue.set_partitions(6)
        before = await queue.enqueue_many([(count_run, (counter,), {}) for _ in range(3000)])
        assert len({job.queue_name for job in before}) == 6
        procs = start_workers(redis_cluster.url, name, 1, tmp_path)
        try:
            await queue.set_partitions(3)  # while most of them still wait
            # a worker that starts now still serves the three partitions dropped
            procs += start_workers(redis_cluster.url, name, 1, tmp_path)
            after = await queue.enqueue_many([(count_run, (counter,), {}) for _ in range(1500)])
            assert len({job.queue_name for job in after}) == 3
            runs = await wait_for_runs(queue, counter, 4500, procs, tmp_path)
        finally:
            stop_workers(procs)
        assert set(runs) == {j.id.encode() for j in [*before, *after]}
        assert set(runs.values()) == {b"1"}
        assert (await queue.stats()).queued == 0


def test_the_cli_names_the_master_of_each_partition(redis_cluster: RedisCluster) -> None:
    from typer.testing import CliRunner

    from asyncjobs.cli import app

    name = "cli-parts"  # its six partitions hash to all three masters' slot ranges
    args = ["partitions", name, "6", "--redis-url", redis_cluster.url]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    masters = {f"127.0.0.1:{node.port}" for node in redis_cluster.nodes}
    shown = {m for m in masters if m in result.output}
    assert shown == masters and "node" in result.output


async def test_an_idle_worker_blocks_on_every_partition_without_polling(
    redis_cluster: RedisCluster,
) -> None:
    """Idle on six partitions over three masters, a worker sends next to nothing for two
    seconds (a 50 ms poll of six partitions would send 240 commands), and an enqueue to any
    partition wakes it at once."""
    from asyncjobs import Worker, WorkerSettings

    name = f"idle-{uuid.uuid4().hex[:6]}"
    masters = [aioredis.Redis(port=node.port) for node in redis_cluster.nodes]

    async def commands() -> int:
        total = 0
        for master in masters:
            stats = await master.info("commandstats")
            total += sum(int(v["calls"]) for k, v in stats.items() if k != "cmdstat_info")
        return total

    async with Queue(redis_cluster.url, name=name) as queue:
        await queue.set_partitions(6)
        settings = WorkerSettings(
            redis_url=redis_cluster.url, functions=[count_run], queues=[name], lease_seconds=30
        )
        worker = Worker(settings)
        run = asyncio.create_task(worker.run(handle_signals=False))
        try:
            first = await queue.enqueue(count_run, f"test:{{{name}}}")
            await first.result(timeout=10)  # started and served: it goes idle once its ack lands

            async def quiet() -> bool:  # nothing sent for a quarter second: blocked
                before = await commands()
                await asyncio.sleep(0.25)
                return await commands() - before <= 2

            await wait_until(quiet, 20, "the worker to go idle")
            before = await commands()
            await asyncio.sleep(2.0)  # the window measured, not a wait for something
            sent = await commands() - before
            assert sent <= 40, f"{sent} commands in two idle seconds"
            # random ids: 120 jobs leave a partition empty about once in 10^9 runs (30 did in 40)
            jobs = await queue.enqueue_many([(count_run, (f"test:{{{name}}}",), {})] * 120)
            assert len({j.queue_name for j in jobs}) == 6
            for job in jobs:
                await job.result(timeout=10)
        finally:
            worker.stop()
            await run
            for master in masters:
                await master.aclose()
