"""Scale-out: many worker processes on a real 3-master cluster, CLI on a cluster, Sentinel."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from asyncjobs import Queue, Worker, WorkerSettings
from asyncjobs.cli import app

from .cluster_tasks import count_run
from .conftest import connections_to_a_refused_login
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


@contextlib.contextmanager
def one_sentinel(master: RedisServer, tmp_path: Path) -> Iterator[str]:
    """A sentinel (the test server binary in sentinel mode) watching ``master`` as "jobs";
    yields the redis+sentinel:// host list, and stops it by its PID."""
    port = free_port()
    config = tmp_path / "sentinel.conf"
    auth = f"sentinel auth-pass jobs {master.password}\n" if master.password else ""
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor jobs 127.0.0.1 {master.port} 1\n{auth}"
    )
    sentinel = subprocess.Popen(
        [find_server().path, str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        sentinel.terminate()
        sentinel.wait(10)


async def _sentinel_knows_its_master(hosts: str) -> None:
    host, _, port = hosts.partition(":")
    async with aioredis.Redis(host=host, port=int(port)) as sentinel:
        for _ in range(100):  # the sentinel needs a moment to learn its master
            try:
                if await sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "jobs"):
                    return
            except aioredis.ConnectionError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("the sentinel never learned its master")


async def test_sentinel_url(tmp_path: Path) -> None:
    master = RedisServer().start()
    try:
        with one_sentinel(master, tmp_path) as hosts:
            await _sentinel_knows_its_master(hosts)
            url = f"redis+sentinel://{hosts}/jobs/0"
            async with Queue(url, name="s") as queue:
                job = await queue.enqueue(quick, 3)
            worker = Worker(WorkerSettings(redis_url=url, functions=[quick], queues=["s"]))
            await worker.run(burst=True, handle_signals=False)
            async with Queue(url, name="s") as queue:
                assert await queue.job(job.id).result(timeout=5) == 3
    finally:
        master.cleanup()


async def test_a_refused_login_behind_a_sentinel_is_not_retried(tmp_path: Path) -> None:
    """A wrong password for the master a sentinel names fails on its first connection, as
    it does on a plain URL: redis-py files a refused login under connection errors, and its
    default retry tried it again with a growing pause before the error came out."""
    master = RedisServer(password="s3cret").start()
    try:
        with one_sentinel(master, tmp_path) as hosts:
            await _sentinel_knows_its_master(hosts)
            url = f"redis+sentinel://:wrong@{hosts}/jobs/0"
            assert await connections_to_a_refused_login(master, url) == 1
    finally:
        master.cleanup()
