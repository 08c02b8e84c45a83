"""Sharded pub/sub (``?sharded_pubsub=1``) on the real 3-master cluster: results and cancels
reach their listeners from the master of each queue's slot, nothing crosses the cluster bus,
and a dropped connection or a moved slot is subscribed again with every waiter woken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from asyncjobs import ConfigurationError, Context, JobCancelled, Queue, Worker, WorkerSettings, task
from asyncjobs._partitions import home
from asyncjobs._store import Connection, partition_name

from .late_subscribe import job_ended_before_the_subscribe_is_taken
from .redis_cluster import RedisCluster
from .waiting import wait_until


@task
async def echo(ctx: Context, n: int) -> int:
    return n


@task
async def hold(ctx: Context) -> None:
    await asyncio.sleep(3600)  # until cancelled


def sharded(url: str) -> str:
    return url + "?sharded_pubsub=1"


def spread_name(queue: Queue, partitions: int) -> str:
    """A fresh queue name whose ``partitions`` partitions sit on different masters."""
    nodes = queue.client.nodes_manager
    from redis.crc import key_slot

    while True:
        name = f"sh-{uuid.uuid4().hex[:8]}"
        keys = [queue.keys_for(partition_name(name, i)).events for i in range(partitions)]
        owners = {nodes.get_node_from_slot(key_slot(k.encode())).name for k in keys}
        if len(owners) == partitions:
            return name


def id_in(partition: int, count: int) -> str:
    """A job id that routes to ``partition`` of ``count``."""
    while home(job_id := uuid.uuid4().hex, count) != partition:
        pass
    return job_id


async def bus_publishes(cluster: RedisCluster) -> int:
    """Pub/sub messages the masters have sent over the cluster bus (classic and sharded):
    CLUSTER INFO lists a counter only once it is above zero."""
    total = 0
    for node in cluster.nodes:
        async with aioredis.Redis(port=node.port) as client:
            raw = await client.execute_command("CLUSTER", "INFO")
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
        for name in ("publish", "publishshard"):
            total += int(fields.get(f"cluster_stats_messages_{name}_sent", 0))
    return total


@contextlib.asynccontextmanager
async def running_worker(url: str, queue_name: str) -> AsyncIterator[Worker]:
    # a 60 s lease: the lease tick (20 s) would stop a cancelled job only long after the test
    settings = WorkerSettings(
        redis_url=url, functions=[echo, hold], queues=[queue_name], lease_seconds=60, concurrency=8
    )
    worker = Worker(settings)
    run = asyncio.create_task(worker.run(handle_signals=False))
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(run, 30)


async def subscribers(cluster: RedisCluster, channel: str) -> dict[int, int]:
    """Shard subscribers of ``channel`` on each master (by port)."""
    counts = {}
    for node in cluster.nodes:
        async with aioredis.Redis(port=node.port) as client:
            reply = await client.execute_command("PUBSUB", "SHARDNUMSUB", channel)
        counts[node.port] = int(reply[1])
    return counts


@pytest.mark.cluster
async def test_results_and_cancels_on_partitions_over_three_masters_without_bus_traffic(
    redis_cluster: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """A partitioned queue with a partition on each master: every partition's results reach
    their waiters and a running job in each is cancelled at once (its worker heard the
    request), while the masters send no pub/sub message over the cluster bus."""
    caplog.set_level(logging.INFO, logger="asyncjobs.worker")
    url = sharded(redis_cluster.url)
    async with Queue(url) as queue:
        name = spread_name(queue, 3)
        await queue.set_partitions(3, name)
        async with running_worker(url, name):
            before = await bus_publishes(redis_cluster)
            jobs = [
                await queue.enqueue(echo, i, _queue_name=name, _job_id=id_in(i % 3, 3))
                for i in range(6)
            ]
            assert {job.queue_name for job in jobs} == {partition_name(name, i) for i in range(3)}
            assert [await job.result(timeout=10) for job in jobs] == list(range(6))

            held = [
                await queue.enqueue(hold, _queue_name=name, _job_id=id_in(i, 3)) for i in range(3)
            ]

            async def all_running() -> bool:
                return [(await job.status()).value for job in held] == ["in_progress"] * 3

            await wait_until(all_running, 10, "the three jobs to start")
            for job in held:
                assert await job.cancel()
            for job in held:
                with pytest.raises(JobCancelled):
                    await job.result(timeout=10)

            def heard() -> set[str]:
                return {job.id for job in held if f"job {job.id}: cancel requested" in caplog.text}

            async def all_heard() -> bool:
                return len(heard()) == 3

            await wait_until(all_heard, 5, "the worker to hear the three cancels")
            assert await bus_publishes(redis_cluster) == before, "a message crossed the bus"


@pytest.mark.cluster
async def test_classic_pubsub_sends_every_message_to_every_master(
    redis_cluster: RedisCluster,
) -> None:
    """What the switch saves: without it, each event is copied to the two other masters."""
    name = f"cl-{uuid.uuid4().hex[:8]}"
    async with Queue(redis_cluster.url, name=name) as queue, running_worker(queue.url, name):
        before = await bus_publishes(redis_cluster)
        jobs = [await queue.enqueue(echo, i) for i in range(5)]
        assert [await job.result(timeout=10) for job in jobs] == list(range(5))
        # each job publishes in_progress and succeeded at least: two copies of each
        assert await bus_publishes(redis_cluster) - before >= 5 * 2 * 2


@pytest.mark.cluster
async def test_a_waiter_hears_its_job_after_the_pubsub_connections_drop(
    redis_cluster: RedisCluster,
) -> None:
    url = sharded(redis_cluster.url)
    async with Queue(url, name=f"dr-{uuid.uuid4().hex[:8]}") as queue:
        job = await queue.enqueue(echo, 7)
        channel = queue.keys_for(queue.name).events
        waiting = asyncio.create_task(job.result(timeout=30))

        async def subscribed() -> bool:
            return sum((await subscribers(redis_cluster, channel)).values()) == 1

        await wait_until(subscribed, 10, "the waiter to subscribe")
        outages = queue.waiters.outages.outages
        for node in redis_cluster.nodes:
            async with aioredis.Redis(port=node.port) as admin:
                await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")

        async def noticed() -> bool:
            return queue.waiters.outages.outages > outages

        await wait_until(noticed, 10, "the waiter to notice the drop")
        await wait_until(subscribed, 10, "the waiter to subscribe again")
        async with running_worker(url, queue.name):
            assert await waiting == 7


@pytest.mark.cluster
async def test_a_job_that_ends_before_the_shard_takes_the_subscribe_still_wakes_its_waiter(
    redis_cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with classic pub/sub: each SSUBSCRIBE's confirmation wakes the waiters to read again."""
    url = sharded(redis_cluster.url)
    await job_ended_before_the_subscribe_is_taken(url, f"ls-{uuid.uuid4().hex[:8]}", monkeypatch)


async def move_slot(cluster: RedisCluster, slot: int, source: int, target: int) -> None:
    """Move ``slot`` (and its keys) from the master on port ``source`` to the one on
    ``target``, as ``redis-cli --cluster reshard`` does."""
    clients = {n.port: aioredis.Redis(port=n.port) for n in cluster.nodes}
    try:
        ids = {port: (await c.execute_command("CLUSTER", "MYID")) for port, c in clients.items()}
        ids = {port: i.decode() if isinstance(i, bytes) else i for port, i in ids.items()}
        src, dst = clients[source], clients[target]
        await dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
        await src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
        while keys := await src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            await src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
        for port in (target, source, *(p for p in clients if p not in (source, target))):
            await clients[port].execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    finally:
        for client in clients.values():
            await client.aclose()


@pytest.mark.cluster
async def test_a_waiter_follows_its_queue_to_the_master_its_slot_moved_to(
    redis_cluster: RedisCluster,
) -> None:
    """The old master unsubscribes the channel when its slot leaves; the waiter subscribes on
    the new master and still hears its job's end (published there, and only there)."""
    url = sharded(redis_cluster.url)
    async with Queue(url, name=f"mv-{uuid.uuid4().hex[:8]}") as queue:
        job = await queue.enqueue(echo, 9)
        channel = queue.keys_for(queue.name).events
        slot = int(await queue.client.cluster_keyslot(channel))
        source = int(queue.client.nodes_manager.get_node_from_slot(slot).port)
        target = next(n.port for n in redis_cluster.nodes if n.port != source)
        waiting = asyncio.create_task(job.result(timeout=30))

        async def subscribed_on(port: int) -> bool:
            return (await subscribers(redis_cluster, channel))[port] == 1

        await wait_until(lambda: subscribed_on(source), 10, "the waiter to subscribe")
        await move_slot(redis_cluster, slot, source, target)
        try:
            await wait_until(lambda: subscribed_on(target), 10, "a subscription on the new master")
            async with running_worker(url, queue.name):
                assert await waiting == 9
        finally:
            await move_slot(redis_cluster, slot, target, source)


def test_the_switch_is_refused_off_a_cluster_and_with_a_bad_value() -> None:
    for url in ("redis://127.0.0.1:6379/0?sharded_pubsub=1", "memory://x?sharded_pubsub=listen"):
        with pytest.raises(ConfigurationError) as refused:
            Connection(url)
        message = str(refused.value)
        assert "\n" not in message and "remove it" in message and "redis+cluster://" in message
    with pytest.raises(ConfigurationError, match=r"sharded_pubsub='yes'.*use 1 \(on\)"):
        Connection("redis+cluster://127.0.0.1:7000?sharded_pubsub=yes")
    with pytest.raises(ConfigurationError):
        Queue("redis://127.0.0.1:6379/0?sharded_pubsub=1")


def test_the_switch_is_read_and_kept_from_the_client() -> None:
    on = Connection("redis+cluster://127.0.0.1:7000,127.0.0.1:7001?sharded_pubsub=1")
    assert (on.publishes_sharded, on.listens_sharded) == (True, True)
    assert on.url.endswith("?sharded_pubsub=1"), "workers made from the Queue's URL get it too"
    listen = Connection("redis+cluster://127.0.0.1:7000/?sharded_pubsub=listen")
    assert (listen.publishes_sharded, listen.listens_sharded) == (False, True)
    off = Connection("redis://127.0.0.1:6379/0?sharded_pubsub=0&socket_timeout=3")
    assert (off.publishes_sharded, off.listens_sharded) == (False, False)
    kwargs: dict[str, Any] = off.client.connection_pool.connection_kwargs
    assert "sharded_pubsub" not in kwargs and float(kwargs["socket_timeout"]) == 3.0
