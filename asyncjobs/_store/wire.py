"""A lean Redis connection for the hot path: one socket, calls pipelined in call order.

redis-py's asyncio client takes a pooled connection per command and checks it for stray data
first (an extra trip through the event loop), so a call costs about 1.5 times the round trip. Here a
call is: pack (hiredis), write, await a future that ``data_received`` resolves with hiredis's
parse. Concurrent callers share the socket, their commands pipelined. Used for script calls and
the worker's blocking wait on plain ``redis://`` and ``unix://`` URLs; everything else (pub/sub,
admin commands, TLS, Cluster, Sentinel, ``memory://``) stays on the redis-py client.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

import hiredis
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from .._compat import timeout

_parse_error: Callable[[str], Exception]
try:  # redis-py's own mapping of error replies to exception classes (NOSCRIPT, LOADING, ...)
    from redis._parsers.base import BaseParser

    _parse_error = BaseParser.parse_error
except ImportError:  # pragma: no cover - a redis-py without it: every error is a ResponseError
    _parse_error = ResponseError

#: How often, and how far apart, a command is retried on a lost connection: for the Wire and
#: for the redis-py client of _connection alike.
RETRIES = 3
BACKOFF = ExponentialBackoff(cap=2.0, base=0.05)  # type: ignore[no-untyped-call,unused-ignore]


class _Protocol(asyncio.Protocol):
    """Writes packed commands and resolves one future per reply, in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.pending: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        while pending:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:  # not Redis on the other end, or a bug
                self.connection_lost(exc)
                if self.transport is not None:
                    self.transport.abort()
                return
            if reply is False:
                return
            future = pending.popleft()
            if future.done():  # its caller was cancelled: the reply is read and dropped
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(_parse_error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisConnectionError(f"connection to Redis lost: {exc or 'closed by peer'}")
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(self.lost)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(self.lost)
            self._drained.exception()  # seen here: no "never retrieved" if nobody was waiting

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def send(self, args: tuple[Any, ...]) -> asyncio.Future[Any]:
        if self.lost is not None or self.transport is None:
            raise self.lost or RedisConnectionError("not connected to Redis")
        packed = hiredis.pack_command(args)  # a TypeError here leaves nothing queued
        future = asyncio.get_running_loop().create_future()
        self.pending.append(future)
        self.transport.write(packed)
        return future

    @property
    def paused(self) -> bool:
        return self._drained is not None

    async def drained(self) -> None:
        """Wait while the socket's send buffer is over its high-water mark (huge batches)."""
        if self._drained is not None:
            await asyncio.shield(self._drained)


class Wire:
    """One lazily opened connection to ``host:port`` (or a unix ``path``); see the module doc.

    ``call`` retries a command up to three times when the connection fails (a new connection
    each time), as our redis-py client is set up to do: an enqueue sent twice is deduplicated
    by its job id, a finishing script is fenced by the lease token, and a claim whose reply was
    lost leaves its jobs to lease recovery.
    """

    def __init__(
        self,
        *,
        host: str = "localhost",
        port: int = 6379,
        path: str | None = None,
        username: str | None = None,
        password: str | None = None,
        db: int = 0,
        connect_timeout: float = 5.0,
    ) -> None:
        self._address = (host, port, path)
        self._auth = (username, password)
        self._db = db
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Lock | None = None

    async def call(self, *args: Any) -> Any:
        """Send one command and return its reply (bytes, int, list...) or raise its error."""
        protocol = self._protocol
        if protocol is not None and protocol.lost is None:
            try:
                if protocol.paused:
                    await protocol.drained()
                return await protocol.send(args)
            except RedisConnectionError:
                pass  # fall through to the retrying path
        for failures in range(RETRIES + 1):
            try:
                protocol = await self._connected()
                await protocol.drained()
                return await protocol.send(args)
            except (RedisConnectionError, OSError, asyncio.TimeoutError) as exc:
                if failures == RETRIES or isinstance(exc, AuthenticationError):  # no retry mends it
                    if isinstance(exc, RedisConnectionError):
                        raise
                    raise RedisConnectionError(f"cannot reach Redis: {exc}") from exc
                await asyncio.sleep(BACKOFF.compute(failures + 1))  # type: ignore[no-untyped-call,unused-ignore]
        raise AssertionError("unreachable")  # pragma: no cover

    async def block_then(self, blocking: tuple[Any, ...], then: tuple[Any, ...]) -> Any:
        """Send a blocking command and, pipelined behind it, ``then``; return ``then``'s reply.

        Redis runs ``then`` as soon as the block ends, in the same pass of its event loop, so
        both replies come back together: the worker's wake-up and its claim cost one round trip.
        Not retried: a connection error is raised for the caller's own backoff. Cancelling closes
        the connection; a ``then`` not yet run then never runs (Redis drops the closed client's
        unread commands).
        """
        protocol = await self._connected()
        woken = protocol.send(blocking)
        reply = protocol.send(then)
        try:
            await woken
        except BaseException as exc:
            reply.add_done_callback(_retrieve)  # it fails or resolves unseen: no warning
            if isinstance(exc, asyncio.CancelledError):
                self.close()
            raise
        try:
            return await reply
        except asyncio.CancelledError:
            self.close()
            raise

    async def _connected(self) -> _Protocol:
        if self._protocol is not None and self._protocol.lost is None:
            return self._protocol
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._protocol is not None and self._protocol.lost is None:
                return self._protocol
            self.close()
            # Not wait_for: on Python < 3.12 it can swallow a cancellation that arrives as the
            # connection opens, and the caller then blocks on a command it no longer wants.
            async with timeout(self._connect_timeout):
                protocol = await self._open()
            self._protocol = protocol
            return protocol

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        host, port, path = self._address
        if path is not None:
            _, protocol = await loop.create_unix_connection(_Protocol, path)
        else:
            _, protocol = await loop.create_connection(_Protocol, host, port)
        try:
            handshake = []
            username, password = self._auth
            if password is not None:
                auth = ("AUTH", username, password) if username else ("AUTH", password)
                handshake.append(protocol.send(auth))
            if self._db:
                handshake.append(protocol.send(("SELECT", self._db)))
            for reply in handshake:
                await reply
        except BaseException:
            if protocol.transport is not None:
                protocol.transport.close()
            raise
        return protocol

    def close(self) -> None:
        """Close the socket; calls waiting on it fail with ConnectionError, the next reconnects."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def wire_for(client: Any) -> Wire | None:
    """A Wire to the server a plain redis-py client connects to, or None when the client is of
    a kind the Wire does not speak (TLS, RESP3, credential providers, fakeredis, Cluster...)."""
    from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

    pool = getattr(client, "connection_pool", None)
    if pool is None or type(client).__module__.startswith("fakeredis"):
        return None
    kwargs = pool.connection_kwargs
    if kwargs.get("credential_provider") is not None or kwargs.get("protocol") in (3, "3"):
        return None
    options = {
        "username": kwargs.get("username"),
        "password": kwargs.get("password"),
        "db": int(kwargs.get("db") or 0),
        "connect_timeout": kwargs.get("socket_connect_timeout") or 5.0,
    }
    connection_class = pool.connection_class
    if issubclass(connection_class, UnixDomainSocketConnection):
        return Wire(path=kwargs["path"], **options)
    if issubclass(connection_class, SSLConnection) or not issubclass(connection_class, Connection):
        return None
    return Wire(host=kwargs.get("host", "localhost"), port=int(kwargs.get("port", 6379)), **options)
