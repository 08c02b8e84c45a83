"""What asyncjobs needs of redis-py holds on every supported version (5.0.1 to 8.x).

redis-py 8 changed three defaults: reads time out after 5 s (a worker's idle BZPOPMIN lasts up
to 30 s and a result waiter's pub/sub read has no end, so both were cut off, reconnected and
retried, over and over), RESP3, and a pool of at most 100 connections (a worker running 100
jobs ran out of connections).
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from asyncjobs._store import Connection

#: Longer than redis-py 8's default socket timeout (5 s), as short as that allows.
LONG_BLOCK = 5.6


@pytest.fixture(params=["redis", pytest.param("cluster", marks=pytest.mark.cluster)])
def server_url(request: pytest.FixtureRequest) -> str:
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster").url)
    return str(request.getfixturevalue("redis_server").url)


async def test_blocking_reads_are_not_cut_off(server_url: str) -> None:
    """BZPOPMIN through the client, and a pub/sub read, each waiting past 5 s, end normally."""
    connection = Connection(server_url)
    client = connection.client
    key = f"{{t-{uuid.uuid4().hex[:8]}}}:wake"
    channel = f"t-{uuid.uuid4().hex[:8]}"
    await client.ping()  # a cluster client learns its nodes (open_pubsub needs one)
    pubsub = connection.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(channel)

        async def publish_late() -> None:
            await asyncio.sleep(LONG_BLOCK)
            # a plain client to one node: a PUBLISH reaches subscribers on every node
            host, port = server_url.split("://")[1].split(",")[0].split("/")[0].split(":")
            async with aioredis.Redis(host=host, port=int(port)) as publisher:
                await publisher.publish(channel, b"late")

        async def read_message() -> bytes:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is not None:
                    return bytes(message["data"])

        popped, message, _ = await asyncio.wait_for(
            asyncio.gather(
                client.bzpopmin([key], timeout=LONG_BLOCK), read_message(), publish_late()
            ),
            LONG_BLOCK + 10,
        )
        assert popped is None  # the server's own timeout ended the block, not the socket's
        assert message == b"late"
    finally:
        await pubsub.aclose()
        await connection.close()


def test_clients_keep_what_asyncjobs_relies_on_whatever_the_redis_py_defaults() -> None:
    """redis-py 8 made reads time out after 5 s, RESP3 the protocol and 100 the pool's limit;
    every client kind asyncjobs builds keeps no timeout, RESP2 and an unbounded pool."""
    plain = Connection("redis://127.0.0.1:1/0").client.connection_pool
    cluster = Connection("redis+cluster://127.0.0.1:1").client
    sentinel = Connection("redis+sentinel://127.0.0.1:1/jobs/0").client.connection_pool
    for kwargs in (plain.connection_kwargs, cluster.connection_kwargs, sentinel.connection_kwargs):
        assert kwargs["socket_timeout"] is None and kwargs["protocol"] == 2
    assert min(plain.max_connections, sentinel.max_connections) >= 2**31
    assert cluster.connection_kwargs["max_connections"] >= 2**31
    memory = Connection(f"memory://{uuid.uuid4().hex}").client.connection_pool
    assert memory.max_connections >= 2**31


def test_the_url_still_chooses() -> None:
    url = "redis://127.0.0.1:1/0?socket_timeout=7&protocol=3"
    chosen = Connection(url).client.connection_pool
    assert chosen.connection_kwargs["socket_timeout"] == 7
    assert int(chosen.connection_kwargs["protocol"]) == 3
