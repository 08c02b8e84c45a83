"""The lean connection script calls and the worker's wait take (the store's Wire), on real Redis."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoScriptError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from asyncjobs import Queue, Worker, WorkerSettings, task
from asyncjobs._store import Connection
from asyncjobs._store.wire import Wire

from .redis_server import RedisServer, free_port
from .waiting import wait_until


@pytest.fixture
async def wire(redis_url: str) -> AsyncIterator[Wire]:
    connection = Connection(redis_url)
    found = connection.wire
    assert found is not None, "a plain redis:// URL gets a Wire"
    yield found
    await connection.close()


@pytest.fixture
async def blocker(redis_url: str) -> AsyncIterator[Wire]:
    """A Wire of its own for blocking commands, as a worker has."""
    found = Wire(**_address(redis_url))
    yield found
    found.close()


@pytest.fixture
async def plain(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """redis-py on the same server, to look from the outside."""
    async with aioredis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def key() -> str:
    return f"wire:{os.urandom(4).hex()}"


async def test_concurrent_calls_share_one_socket_and_get_their_own_replies(
    wire: Wire, plain: aioredis.Redis, key: str
) -> None:
    replies = await asyncio.gather(*(wire.call("INCR", key) for _ in range(500)))
    assert replies == list(range(1, 501))  # pipelined in call order, each reply to its caller
    values = await asyncio.gather(wire.call("GET", key), wire.call("LRANGE", key + ":no", 0, -1))
    assert values == [b"500", []]
    clients = await plain.client_list()
    assert sum(1 for c in clients if c["cmd"] in ("incr", "get", "lrange")) == 1


async def test_an_error_reply_raises_redis_pys_exception_and_the_socket_stays_usable(
    wire: Wire,
) -> None:
    with pytest.raises(NoScriptError):
        await wire.call("EVALSHA", "0" * 40, 0)
    with pytest.raises(ResponseError, match="unknown command"):
        await wire.call("NOSUCHCOMMAND")
    assert await wire.call("PING") == b"PONG"


async def test_a_cancelled_call_does_not_steal_the_next_reply(wire: Wire, key: str) -> None:
    await wire.call("PING")  # connected: a call's first step writes its command
    slow = asyncio.create_task(wire.call("BLPOP", key, 0.3))
    await asyncio.sleep(0)  # that step ran: the BLPOP is on the socket ahead of the ECHO
    slow.cancel()
    assert await wire.call("ECHO", "mine") == b"mine"  # queued behind the BLPOP, then its own


async def test_a_cancelled_block_closes_its_connection(
    blocker: Wire, plain: aioredis.Redis, key: str
) -> None:
    waiting = asyncio.create_task(blocker.block_then(("BZPOPMIN", key, 30), ("PING",)))
    await _until_blocked(plain, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _until_blocked(plain, 0)  # not left blocking at the server
    await plain.zadd(key, {"w": 0})
    assert await blocker.block_then(("BZPOPMIN", key, 1), ("ZRANGE", key, 0, -1)) == []
    assert await blocker.call("ECHO", "again") == b"again", "a new connection took over"


async def test_a_killed_connection_is_replaced_on_the_next_call(
    wire: Wire, plain: aioredis.Redis
) -> None:
    first = await wire.call("CLIENT", "ID")
    assert await plain.client_kill_filter(_id=first) == 1
    second = await wire.call("CLIENT", "ID")
    assert second != first


async def test_redis_down_raises_connection_error_after_a_few_retries() -> None:
    wire = Wire(host="127.0.0.1", port=free_port(), connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(RedisConnectionError, match="cannot reach Redis"):
        await wire.call("PING")
    assert time.monotonic() - started < 5


async def test_password_and_database_from_the_url_are_used() -> None:
    server = RedisServer(password="pw-1").start()
    try:
        url = f"redis://:pw-1@127.0.0.1:{server.port}/3"
        async with Queue(url) as queue:
            wire = queue.store.connection.wire
            assert wire is not None
            await wire.call("SET", "wire:db", "three")
            assert await queue.client.get("wire:db") == b"three"  # redis-py on db 3 sees it
            assert await queue.client.dbsize() == 1
    finally:
        server.cleanup()


async def test_a_refused_password_is_raised_without_retrying() -> None:
    """A wrong password is not a connection that may come back: the first refusal is raised."""
    server = RedisServer(password="pw-1").start()
    try:
        admin = aioredis.Redis(port=server.port, password="pw-1")
        before = (await admin.info("stats"))["total_connections_received"]
        wire = Wire(host="127.0.0.1", port=server.port, password="wrong")
        with pytest.raises(AuthenticationError):
            await wire.call("PING")
        assert (await admin.info("stats"))["total_connections_received"] - before == 1
        await admin.aclose()
    finally:
        server.cleanup()


async def test_jobs_run_over_a_unix_socket() -> None:
    path = f"/tmp/asyncjobs-{os.urandom(4).hex()}.sock"
    server = RedisServer(extra_args=("--unixsocket", path, "--unixsocketperm", "700")).start()
    try:

        @task(name="wire.double")
        async def double(ctx: object, x: int) -> int:
            return 2 * x

        url = f"unix://{path}"
        async with Queue(url) as queue:
            assert queue.store.connection.wire is not None
            job = await queue.enqueue(double, 21)
            worker = Worker(WorkerSettings(redis_url=url, functions=[double]))
            await worker.run(burst=True, handle_signals=False)
            assert await job.result(timeout=5) == 42
    finally:
        server.cleanup()


def test_clients_the_wire_does_not_speak_keep_redis_py() -> None:
    for url in ("memory://wire-test", "rediss://127.0.0.1:1/0"):
        assert Connection(url).wire is None


def _address(url: str) -> dict[str, object]:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return {"host": host, "port": int(port)}


async def _blocked_clients(client: aioredis.Redis) -> int:
    info = await client.info("clients")
    return int(info["blocked_clients"])


async def _until_blocked(client: aioredis.Redis, count: int) -> None:
    async def reached() -> bool:
        return await _blocked_clients(client) == count

    await wait_until(reached, 5, f"{count} client(s) blocked at the server")


async def test_block_then_runs_the_second_command_as_the_block_ends(
    blocker: Wire, plain: aioredis.Redis, key: str
) -> None:
    waiting = asyncio.create_task(
        blocker.block_then(("BZPOPMIN", key, 5), ("ZCARD", key + ":after"))
    )
    await _until_blocked(plain, 1)
    await plain.zadd(key + ":after", {"a": 1, "b": 2})  # written while the block waits
    assert not waiting.done()
    await plain.zadd(key, {"w": 0})
    assert await waiting == 2  # ran after the wake-up, so it saw the later write


async def test_a_cancelled_block_then_never_runs_its_second_command(
    blocker: Wire, plain: aioredis.Redis, key: str
) -> None:
    waiting = asyncio.create_task(blocker.block_then(("BZPOPMIN", key, 5), ("INCR", key + ":n")))
    await _until_blocked(plain, 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await _until_blocked(plain, 0)  # the connection is gone, and its unread INCR with it
    await plain.zadd(key, {"w": 0})
    assert await plain.get(key + ":n") is None
    assert await plain.zcard(key) == 1  # nobody popped the wake-up either


async def test_a_lost_connection_under_block_then_raises_without_stray_errors(
    blocker: Wire, plain: aioredis.Redis, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    waiting = asyncio.create_task(blocker.block_then(("BZPOPMIN", key, 5), ("PING",)))
    await _until_blocked(plain, 1)
    blocked = [c["id"] for c in await plain.client_list() if c["cmd"] == "bzpopmin"]
    assert len(blocked) == 1
    await plain.client_kill_filter(_id=blocked[0])
    with pytest.raises(RedisConnectionError):
        await waiting
    del waiting  # its traceback holds the second command's future: let it be collected
    gc.collect()
    await asyncio.sleep(0.01)
    assert "never retrieved" not in caplog.text


async def test_an_argument_that_cannot_be_sent_is_refused_and_queues_nothing(wire: Wire) -> None:
    with pytest.raises(TypeError):
        await wire.call("ECHO", object())
    assert await wire.call("ECHO", "next") == b"next"  # replies still line up with callers
