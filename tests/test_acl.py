"""The ACL rules `asyncjobs acl` prints name every command the store can send."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from asyncjobs import Context, JobCancelled, Queue, RedisUnavailable, Worker, WorkerSettings, task
from asyncjobs._store.acl import CLIENT_COMMANDS, acl_rules, commands, script_commands

from .redis_cluster import RedisCluster
from .redis_server import RedisServer
from .waiting import wait_until

STORE = Path(__file__).resolve().parent.parent / "asyncjobs" / "_store"
#: redis-py methods that send no command of their own (or none an ACL governs).
NOT_COMMANDS = {"aclose", "execute", "get_default_node", "pipeline", "pubsub"}
#: redis-py method → ACL command, where the two are spelt differently.
SPELLED = {"script_load": "script|load", "config_get": "config|get"}


def test_every_redis_call_of_the_store_is_in_the_rules() -> None:
    called = set()
    for path in STORE.glob("*.py"):
        called |= set(re.findall(r"(?:client|pipe)\.([a-z_]+)\(", path.read_text()))
    needed = {SPELLED.get(name, name) for name in called - NOT_COMMANDS}
    assert needed <= set(CLIENT_COMMANDS), needed - set(CLIENT_COMMANDS)


def test_every_command_a_script_calls_is_in_the_rules() -> None:
    assert {"evalsha", "zpopmin", "xadd", "publish", "spublish", "ssubscribe"} <= set(commands())
    assert script_commands() <= set(commands())


def test_a_denied_key_inside_a_script_is_a_configuration_error_on_every_server() -> None:
    """Redis 7.0, Redis 8 and Valkey word a key the ACL denies inside a script differently; each
    must reach the user as the ACL hint, not as a bare command error."""
    from redis.exceptions import ResponseError

    from asyncjobs import ConfigurationError
    from asyncjobs._store.errors import translate

    for reply in (
        "NOPERM this user has no permissions to access one of the keys used as arguments",
        "ERR Error running script: The user executing the script can't access at least one of "
        "the keys mentioned in the command script: abc",
        "ACL failure in script: No permissions to access a key script: abc, on @user_script:45.",
    ):
        error = translate(ResponseError(reply), "redis://producer:***@127.0.0.1:6379/0")
        assert isinstance(error, ConfigurationError), reply
        assert "docs/security.md" in str(error)


@task(name="acl.cluster.add")
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b


@task(name="acl.cluster.hold")
async def hold(ctx: Context) -> None:
    await asyncio.sleep(3600)  # until cancelled


async def _make_users(cluster: RedisCluster, rules: dict[str, list[str]]) -> None:
    """ACL users live on each node: make every one on every master."""
    for node in cluster.nodes:
        async with aioredis.Redis(port=node.port) as admin:
            for user, user_rules in rules.items():
                await admin.execute_command("ACL", "SETUSER", user, "on", ">Pa55", *user_rules)


def _as(user: str, cluster: RedisCluster, query: str) -> str:
    scheme, _, hosts = cluster.url.partition("://")
    return f"{scheme}://{user}:Pa55@{hosts}{query}"


@pytest.mark.cluster
@pytest.mark.parametrize("query", ["", "?sharded_pubsub=1"], ids=["classic", "sharded"])
async def test_the_least_acls_run_a_queue_on_a_cluster(
    redis_cluster: RedisCluster, query: str
) -> None:
    """On a 3-master cluster, with classic and with sharded pub/sub: the producer made with
    the printed rules enqueues, waits for a result and cancels a running job; the worker's runs
    them. (redis-py's cluster client needs CLUSTER SLOTS and COMMAND to connect at all.)"""
    worker_user, producer_user = f"w-{uuid.uuid4().hex[:6]}", f"p-{uuid.uuid4().hex[:6]}"
    await _make_users(
        redis_cluster, {worker_user: acl_rules("worker"), producer_user: acl_rules("producer")}
    )
    name = f"acl-{uuid.uuid4().hex[:8]}"
    async with Queue(_as(producer_user, redis_cluster, query), name=name) as producer:
        total = await producer.enqueue(add, 1, 2)
        held = await producer.enqueue(hold)
        settings = WorkerSettings(
            redis_url=_as(worker_user, redis_cluster, query),
            queues=[name],
            functions=[add, hold],
            lease_seconds=60,
        )
        worker = Worker(settings)
        run = asyncio.create_task(worker.run(handle_signals=False))
        try:
            assert await total.result(timeout=10) == 3

            async def running() -> bool:
                return (await held.status()).value == "in_progress"

            await wait_until(running, 10, "the held job to start")
            assert await held.cancel()
            with pytest.raises(JobCancelled):
                await held.result(timeout=10)
        finally:
            worker.stop()
            await asyncio.wait_for(run, 30)


@pytest.mark.cluster
async def test_a_cluster_user_without_cluster_slots_is_told_to_use_the_printed_rules(
    redis_cluster: RedisCluster,
) -> None:
    """redis-py 5.1+ reports a refused CLUSTER SLOTS as "Cluster mode is not enabled" (5.0 as
    the refusal it is): either way the error says to use the printed rules."""
    user = f"n-{uuid.uuid4().hex[:6]}"
    rules = [rule for rule in acl_rules("producer") if rule != "+cluster|slots"]
    await _make_users(redis_cluster, {user: rules})
    with pytest.raises(RedisUnavailable) as refused:
        async with Queue(_as(user, redis_cluster, "")):
            pass
    message = str(refused.value)
    assert "\n" not in message
    assert "Pa55" not in message
    assert "the rules `asyncjobs acl` prints" in message  # redis-py 5.0 says NOPERM


async def test_a_command_the_acl_refuses_at_connect_is_told_to_use_the_printed_rules(
    redis_server: RedisServer,
) -> None:
    """A user let in but refused PING: the error says what to do, and no socket is left."""
    user = f"n-{uuid.uuid4().hex[:6]}"
    async with aioredis.Redis(port=redis_server.port) as admin:
        await admin.execute_command("ACL", "SETUSER", user, "on", ">Pa55", "-@all")
        with pytest.raises(RedisUnavailable, match="give it the rules `asyncjobs acl` prints"):
            async with Queue(f"redis://{user}:Pa55@127.0.0.1:{redis_server.port}/0"):
                pass

        async def no_connection_left() -> bool:
            return f" user={user} " not in (await admin.execute_command("CLIENT", "LIST")).decode()

        await wait_until(no_connection_left, 5, "the refused Queue to close its connection")
