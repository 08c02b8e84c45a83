"""Scale-out: many worker processes on a real 3-master cluster, CLI on a cluster, Sentinel."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from asyncjobs import Queue, Worker, WorkerSettings
from asyncjobs.cli import app

from .cluster_tasks import count_run
from .crash_tasks import quick
from .redis_cluster import RedisCluster
from .redis_server import RedisServer, find_server, free_port
from .test_crash import spawn_worker

pytestmark = pytest.mark.cluster


async def test_queues_land_on_different_masters(redis_cluster: RedisCluster) -> None:
    async with Queue(redis_cluster.url) as queue:
        nodes = set()
        for name in ("q1", "q2", "q3"):
            slot = await queue.client.cluster_keyslot(queue.keys_for(name).ready)
            nodes.add(queue.client.nodes_manager.get_node_from_slot(slot).name)
        assert len(nodes) == 3


@pytest.mark.slow
async def test_four_workers_three_queues_10k_jobs_exactly_once(
    redis_cluster: RedisCluster, tmp_path: Path
) -> None:
    counter = f"test:{{{uuid.uuid4().hex[:8]}}}:runs"
    async with Queue(redis_cluster.url) as queue:
        for name in ("q1", "q2", "q3"):  # start from empty queues
            await queue.client.delete(
                *(getattr(queue.keys_for(name), k) for k in ("ready", "deferred"))
            )
        items = [(count_run, (counter,), {"_queue_name": f"q{i % 3 + 1}"}) for i in range(10_000)]
        jobs = await queue.enqueue_many(items)
        workers = [
            spawn_worker(
                redis_cluster.url, None, tmp_path / f"w{i}.log", "tests.cluster_tasks:settings"
            )
            for i in range(4)
        ]
        try:
            deadline = time.monotonic() + 120
            while await queue.client.hlen(counter) < 10_000:
                assert time.monotonic() < deadline, "the workers did not finish in time"
                assert all(w.poll() is None for w in workers), "a worker died"
                await asyncio.sleep(0.2)
            runs = await queue.client.hgetall(counter)
        finally:
            for w in workers:
                w.terminate()
            for w in workers:
                w.wait(30)
        assert len(runs) == 10_000 and set(runs.values()) == {b"1"}, "each job ran exactly once"
        assert {j.id.encode() for j in jobs} == set(runs)
        for name in ("q1", "q2", "q3"):
            keys = queue.keys_for(name)
            assert await queue.client.zcard(keys.ready) == 0
            assert await queue.client.zcard(keys.leases) == 0
        assert all(w.returncode == 0 for w in workers), "graceful exit on SIGTERM"


def test_info_command_on_a_cluster(redis_cluster: RedisCluster) -> None:
    async def setup() -> None:
        async with Queue(redis_cluster.url, name="info-c") as queue:
            await queue.enqueue(quick, 1)
            await queue.enqueue("missing")
            worker = Worker(
                WorkerSettings(redis_url=redis_cluster.url, functions=[quick], queues=["info-c"])
            )
            await worker.run(burst=True, handle_signals=False)

    asyncio.run(setup())
    result = CliRunner().invoke(app, ["info", "--json", "--redis-url", redis_cluster.url])
    assert result.exit_code == 0, result.output
    import json

    [row] = [r for r in json.loads(result.output) if r["queue"] == "info-c"]
    assert row["succeeded"] >= 1 and row["dead_letters"] >= 1


async def test_sentinel_url(tmp_path: Path) -> None:
    master = RedisServer().start()
    sentinel_port = free_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor jobs 127.0.0.1 {master.port} 1\n"
    )
    sentinel = subprocess.Popen(
        [find_server().path, str(config), "--sentinel"],  # the test server binary, as sentinel
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis+sentinel://127.0.0.1:{sentinel_port}/jobs/0"
        for _ in range(100):  # the sentinel needs a moment to learn its master
            try:
                async with Queue(url, name="s") as queue:
                    job = await queue.enqueue(quick, 3)
                break
            except Exception:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("could not reach the master through the sentinel")
        worker = Worker(WorkerSettings(redis_url=url, functions=[quick], queues=["s"]))
        await worker.run(burst=True, handle_signals=False)
        async with Queue(url, name="s") as queue:
            assert await queue.job(job.id).result(timeout=5) == 3
    finally:
        sentinel.terminate()
        sentinel.wait(10)
        master.cleanup()
