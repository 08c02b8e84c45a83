"""Sharded pub/sub on a Redis 7 cluster (``?sharded_pubsub=1`` or ``=listen``): every channel
SSUBSCRIBEd on the master that owns its slot, read through one object shaped like the redis-py
PubSub the subscribers use (``subscribe``, ``get_message``, ``aclose``).

The commands are sent raw and their replies parsed here, the same on every redis-py: 5's
asyncio PubSub has no ``ssubscribe`` and drops ``smessage`` replies. The node clients never
retry (``Connection._shard_client``): redis-py 8 would reconnect a dropped subscription behind
our back, and the outage the waiters must hear of (to re-read their jobs) would go unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from redis.crc import key_slot
from redis.exceptions import AskError, RedisClusterException, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from .._compat import cancel_and_wait

#: Where a message came from: a shard channel (SPUBLISH) or a classic one (PUBLISH).
MESSAGE_TYPES = ("smessage", "message")
#: A subscription the server has taken: only from then on is every message on it delivered.
SUBSCRIBED_TYPES = ("ssubscribe", "subscribe")


def _moved(exc: ResponseError) -> bool:
    """A MOVED or ASK reply (redis-py 8 parses it into AskError; 5 leaves it a ResponseError)."""
    return isinstance(exc, AskError) or str(exc).split(" ", 1)[0] in ("MOVED", "ASK")


class _Link:
    """One node's subscription: a plain client to it, its PubSub, and the task reading it."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pubsub = client.pubsub()
        self.reader: asyncio.Task[None] | None = None

    async def close(self) -> None:
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(self.reader)
        try:
            await self.pubsub.aclose()
        finally:
            await self.client.aclose()


class ShardedPubSub:
    """SSUBSCRIBE on each channel's master, one connection per master that owns any; and, so
    that a deployment can switch over without a message lost, classic SUBSCRIBE on one node
    too: a process whose publishers were not switched yet is still heard.

    Messages come as ``{"type": "smessage" | "message", "channel", "data"}``, and each
    subscription's confirmation as ``{"type": "ssubscribe" | "subscribe", ...}``. A dropped
    connection, or a channel the server unsubscribed us from (its slot moved to another
    master), makes ``get_message`` raise a ConnectionError once: the caller's next
    ``subscribe`` then reads the slot map again and subscribes every channel afresh, as after
    any outage (and the caller wakes whoever may have missed a message meanwhile).
    """

    def __init__(self, cluster: Any, node_client: Callable[[Any], Any]) -> None:
        self._cluster = cluster
        self._node_client = node_client  # a ClusterNode → a plain client to it
        self._channels: list[str] = []  # every channel asked for, in order
        self._links: dict[str, _Link] = {}  # node name ('' = the classic one) → its link
        self._inbox: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._broken = False  # a link failed: the next subscribe starts again from scratch
        self._failure_waiting = False  # a failure is in the inbox, not read yet
        self._lock = asyncio.Lock()  # one subscribe at a time: they share the links

    async def subscribe(self, *channels: str) -> None:
        """Listen on ``channels`` too (and, after a failure, on every channel again)."""
        async with self._lock:
            fresh = [c for c in dict.fromkeys(channels) if c not in self._channels]
            self._channels += fresh
            try:
                if self._broken:
                    await self._close_links()
                    await self._read_slot_map()
                    self._broken = False
                    fresh = list(self._channels)
                if fresh:
                    await self._send(fresh)
            except Exception:
                self._broken = True  # raised to the caller: nothing put in the inbox
                raise

    async def get_message(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message on any channel (None after ``timeout`` seconds)."""
        try:
            item = await asyncio.wait_for(self._inbox.get(), timeout)
        except asyncio.TimeoutError:
            return None
        if isinstance(item, BaseException):
            self._failure_waiting = False
            raise item
        return item

    async def aclose(self) -> None:
        await self._close_links()

    async def _read_slot_map(self) -> None:
        try:
            await self._cluster.nodes_manager.initialize()
        except RedisClusterException as exc:  # no node answered: an outage, not a bug
            raise RedisConnectionError(str(exc)) from exc

    async def _send(self, channels: list[str]) -> None:
        await self._cluster.initialize()  # the slot map, if no command has read it yet
        nodes = self._cluster.nodes_manager
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
        for slot, names in by_slot.items():  # one SSUBSCRIBE per slot: it refuses CROSSSLOT
            link = await self._link(nodes.get_node_from_slot(slot))
            await link.pubsub.execute_command("SSUBSCRIBE", *names)
        classic = await self._link(self._cluster.get_default_node(), "")
        await classic.pubsub.execute_command("SUBSCRIBE", *channels)

    async def _link(self, node: Any, name: str | None = None) -> _Link:
        name = node.name if name is None else name
        link = self._links.get(name)
        if link is None:
            link = self._links[name] = _Link(self._node_client(node))
            await link.pubsub.connect()
            link.reader = asyncio.create_task(self._read(link), name="asyncjobs-shard-pubsub")
        return link

    async def _read(self, link: _Link) -> None:
        """Put the messages of one link in the inbox, until it fails."""
        try:
            while True:
                reply = await link.pubsub.parse_response(block=True)
                if not isinstance(reply, list) or len(reply) != 3:
                    continue  # a health check's PONG
                kind = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
                if kind in MESSAGE_TYPES or kind in SUBSCRIBED_TYPES:
                    self._inbox.put_nowait({"type": kind, "channel": reply[1], "data": reply[2]})
                elif kind == "sunsubscribe":  # we never send one: the channel's slot moved
                    name = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
                    raise RedisConnectionError(f"shard channel {name} moved to another node")
        except asyncio.CancelledError:
            raise
        except ResponseError as exc:
            if _moved(exc):  # subscribed where the slot was
                self._fail(RedisConnectionError(f"a shard channel moved to another node ({exc})"))
            else:
                self._fail(exc)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        """Tell the reader, once: the other links failing with this one add nothing."""
        self._broken = True
        if not self._failure_waiting:
            self._failure_waiting = True
            self._inbox.put_nowait(exc)

    async def _close_links(self) -> None:
        links, self._links = list(self._links.values()), {}
        for link in links:
            with contextlib.suppress(Exception):
                await link.close()
