"""A Redis URL → one Connection: one redis-py pool, the Wire, pub/sub; ``memory://`` runs
fakeredis in-process.

Schemes: ``redis://``, ``rediss://``, ``unix://``, ``memory://[name]``,
``redis+cluster://[user:pass@]host:port[,host:port...]`` (``rediss+cluster://`` for TLS) and
``redis+sentinel://[user:pass@]host:port[,host:port...]/service_name[/db]``.

A cluster URL may end in ``?sharded_pubsub=1`` (Redis 7 sharded pub/sub; ``=listen`` is the
first step of switching a running deployment over; see docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._errors import ConfigurationError, RedisUnavailable
from .sharded import ShardedPubSub
from .wire import BACKOFF, RETRIES, Wire, wire_for

try:
    import hiredis

    _HIREDIS = hasattr(hiredis, "pack_command")
except ImportError:  # pragma: no cover - hiredis is a dependency, but stay usable without it
    _HIREDIS = False

#: redis-py 8 changed three defaults that asyncjobs relies on; every client built here sets the
#: redis-py 5-7 values (a URL's query, e.g. ``?socket_timeout=10`` or ``?protocol=3``, still wins):
#: - no read timeout (8: 5 s): a worker's BZPOPMIN blocks up to 30 s and a pub/sub read has no
#:   end; dead peers are found by keepalive and health checks instead;
#: - RESP2 (8: RESP3): one reply shape on every redis-py, and the server's own auth errors;
#: - an unbounded pool (8: 100 connections): a worker runs ``concurrency`` jobs at once.
CLIENT_DEFAULTS: dict[str, Any] = {"socket_timeout": None, "protocol": 2}
UNBOUNDED_POOL = 2**31

_memory_servers: dict[str, Any] = {}
_memory_lock = threading.Lock()


class _HiredisPacking:
    """Pack commands with hiredis's C packer: the same bytes as redis-py's Python packer,
    about six times faster (our EVALSHA calls carry dozens of arguments)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str) and " " in args[0]:  # "CONFIG GET" is two words
            args = (*args[0].encode().split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError:  # a type hiredis does not pack: let redis-py do it
            return super().pack_command(*args)  # type: ignore[misc, no-any-return]


class _HandshakeFirst:
    """No health check during the handshake. redis-py 5.0 PINGs before each handshake command
    (CLIENT SETINFO too); with a password missing, that PING fails and is retried by
    reconnecting, which handshakes again, until the recursion limit (~10 s). The first check
    now waits one interval, so the handshake's own "Authentication required" is raised."""

    health_check_interval: float
    next_health_check: float

    async def on_connect(self) -> None:
        now = asyncio.get_running_loop().time()
        self.next_health_check = now + self.health_check_interval
        await super().on_connect()  # type: ignore[misc]


class _FastConnection(_HandshakeFirst, _HiredisPacking, aioredis.Connection):
    pass


class _FastSSLConnection(_HandshakeFirst, _HiredisPacking, aioredis.SSLConnection):
    pass


class _FastUnixConnection(_HandshakeFirst, _HiredisPacking, aioredis.UnixDomainSocketConnection):
    pass


#: The class redis-py picks from the URL's scheme → ours. A ``connection_class`` option does not
#: do it: redis-py lets the scheme's class (TLS, unix socket) win over it.
_OWN_CONNECTION = {
    aioredis.Connection: _FastConnection,
    aioredis.SSLConnection: _FastSSLConnection,
    aioredis.UnixDomainSocketConnection: _FastUnixConnection,
}


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return _joined(parts._replace(netloc=netloc, query=query))


def _joined(parts: SplitResult) -> str:
    """``urlunsplit`` that keeps the ``//`` of a URL with no host (``unix:///tmp/r.sock``).

    The standard one writes ``unix:/tmp/r.sock``, which redis-py 8.2 refuses.
    """
    url = f"{parts.scheme}://{parts.netloc}{parts.path}"
    return (
        url
        + (f"?{parts.query}" if parts.query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def _memory_server(url: str) -> Any:
    """One fakeredis server per ``memory://name`` URL, shared by every client in the process."""
    import fakeredis

    with _memory_lock:
        server = _memory_servers.get(url)
        if server is None:
            server = fakeredis.FakeServer(version=(7, 0))
            _memory_servers[url] = server
        return server


#: ``?sharded_pubsub=`` → (scripts publish with SPUBLISH, subscribers listen with SSUBSCRIBE).
_SHARDED_MODES = {"0": (False, False), "listen": (False, True), "1": (True, True)}


def _pubsub_mode(url: str, where: str) -> tuple[str, bool, bool]:
    """The URL without its ``sharded_pubsub`` option, and what the option asks for."""
    parts = urlsplit(url)
    options = parts.query.split("&") if parts.query else []
    kept = [o for o in options if o.partition("=")[0] != "sharded_pubsub"]
    values = [o.partition("=")[2] for o in options if o.partition("=")[0] == "sharded_pubsub"]
    value = values[-1] if values else "0"
    if value not in _SHARDED_MODES:
        raise ConfigurationError(
            f"sharded_pubsub={value!r} in {where}: use 1 (on), listen (the first step of a "
            "rolling switch) or 0 (off)"
        )
    publish, listen = _SHARDED_MODES[value]
    if listen and parts.scheme not in ("redis+cluster", "rediss+cluster"):
        raise ConfigurationError(
            f"sharded_pubsub is for Redis Cluster URLs (redis+cluster://): remove it from {where}"
        )
    return _joined(parts._replace(query="&".join(kept))), publish, listen


def _split_hosts(url: str) -> tuple[list[tuple[str, int]], str | None, str | None, str]:
    """``scheme://[user:pass@]h1:p1,h2:p2/rest`` → hosts, username, password, rest."""
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    auth, _, hosts = netloc.rpartition("@")
    username, _, password = auth.partition(":") if auth else ("", "", "")
    nodes = []
    for host in hosts.split(","):
        name, _, port = host.rpartition(":")
        if not name or not port.isdigit():
            raise ConfigurationError(f"bad host:port {host!r} in {redact(url)!r}")
        nodes.append((name, int(port)))
    return nodes, unquote(username) or None, unquote(password) or None, path


class Connection:
    """This process's link to one Redis: the redis-py client (one pool), the lean Wire for
    script calls where the URL allows one, and the pub/sub connections made from them.

    No I/O happens until the first command; ``close()`` closes everything it opened.
    """

    def __init__(self, url: str, *, max_connections: int | None = None) -> None:
        self.url = url
        #: The URL without its password, for logs and error messages.
        self.where = redact(url)
        url, self.publishes_sharded, self.listens_sharded = _pubsub_mode(url, self.where)
        self._sentinel: Any = None
        self._node_auth: dict[str, Any] = {}
        #: Makes the client a PubSub runs on (None: the main client's own will do).
        self._subscriber: Callable[[], Any] | None = None
        scheme = urlsplit(url).scheme
        self.is_cluster = scheme in ("redis+cluster", "rediss+cluster")
        self.is_memory = scheme == "memory"
        #: Script calls go here when set (plain redis:// and unix:// URLs, with hiredis).
        self.wire: Wire | None = None
        if self.is_cluster:
            self.client: Any = self._cluster_client(url, max_connections)
        elif scheme == "redis+sentinel":
            self.client = self._sentinel_client(url, max_connections)
        elif self.is_memory:
            import fakeredis

            self.client = fakeredis.FakeAsyncRedis(
                server=_memory_server(url), max_connections=max_connections or UNBOUNDED_POOL
            )
        elif scheme in ("redis", "rediss", "unix"):
            self.client = self._plain_client(url, scheme, max_connections)
            self._subscriber = lambda: self._plain_client(url, scheme, None, retry=_never_retry())
            self.wire = wire_for(self.client) if _HIREDIS else None
        else:
            raise ConfigurationError(
                f"unsupported Redis URL {self.where!r}: use redis://, rediss://, unix://, "
                "redis+cluster://, redis+sentinel:// or memory://"
            )

    def _plain_client(
        self, url: str, scheme: str, max_connections: int | None, **overrides: Any
    ) -> Any:
        extra: dict[str, Any] = {}
        if scheme != "unix":  # redis-py's unix connection refuses TCP options
            extra["socket_keepalive"] = True
        options: dict[str, Any] = {
            **extra,
            "max_connections": max_connections or UNBOUNDED_POOL,
            "socket_connect_timeout": 5.0,
            **_ride_through(),
            **CLIENT_DEFAULTS,
        }
        client = aioredis.Redis.from_url(url, **{**options, **overrides})
        pool = client.connection_pool
        if _HIREDIS:
            pool.connection_class = _OWN_CONNECTION.get(
                pool.connection_class, pool.connection_class
            )
        return client

    def _cluster_client(self, url: str, max_connections: int | None) -> Any:
        from redis.asyncio.cluster import ClusterNode, RedisCluster

        nodes, username, password, _ = _split_hosts(url)
        self._node_auth = {"username": username, "password": password}
        return RedisCluster(  # type: ignore[abstract,unused-ignore]  # redis-py 5's stubs
            startup_nodes=[ClusterNode(host, port) for host, port in nodes],
            username=username,
            password=password,
            ssl=self.url.startswith("rediss+"),
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            max_connections=max_connections or UNBOUNDED_POOL,
            **CLIENT_DEFAULTS,
        )

    def _sentinel_client(self, url: str, max_connections: int | None) -> Any:
        from redis.asyncio.sentinel import Sentinel

        nodes, username, password, path = _split_hosts(url)
        service, _, db = path.partition("/")
        if not service:
            raise ConfigurationError(
                f"{self.where!r} names no service: use redis+sentinel://host:port/service_name[/db]"
            )
        self._sentinel = Sentinel(nodes, socket_connect_timeout=5.0)  # type: ignore[no-untyped-call,unused-ignore]  # typed from redis-py 8.2

        def master(max_connections: int | None, **overrides: Any) -> Any:
            return self._sentinel.master_for(
                service,
                db=int(db or 0),
                username=username,
                password=password,
                socket_keepalive=True,
                max_connections=max_connections or UNBOUNDED_POOL,
                **{**CLIENT_DEFAULTS, **_ride_through(), **overrides},
            )

        self._subscriber = lambda: master(None, retry=_never_retry())
        return master(max_connections)

    def blocking_wire(self) -> Wire | None:
        """A Wire of its own for a blocking wait (None where script calls have no Wire)."""
        return wire_for(self.client) if self.wire is not None else None

    def pubsub(self, **options: Any) -> Any:
        """A PubSub on a client of its own, or on one node of a cluster (on each channel's
        own master, with sharded pub/sub). Its connections never reconnect by themselves: a
        dropped subscription must reach the subscriber as an error, to be made again and its
        waiters woken (redis-py's retry would subscribe again silently, and an event published
        in between would be lost: a waiter would wait for its timeout)."""
        if self.is_cluster:
            if self.listens_sharded:
                return ShardedPubSub(self.client, self._shard_client)
            return _OwnClientPubSub(self._shard_client(self.client.get_default_node()), **options)
        if self._subscriber is None:  # memory://: nothing to drop
            return self.client.pubsub(**options)
        return _OwnClientPubSub(self._subscriber(), **options)

    def _node_client(self, node: Any, **extra: Any) -> Any:
        """A plain client to one cluster node, for pub/sub."""
        return aioredis.Redis(
            host=node.host, port=node.port, ssl=node.connection_kwargs.get("ssl", False),
            **CLIENT_DEFAULTS, **self._node_auth, **extra,
        )  # fmt: skip

    def _shard_client(self, node: Any) -> Any:
        """A node client for pub/sub that never reconnects by itself (see ``pubsub``)."""
        return self._node_client(
            node, retry=_never_retry(), socket_keepalive=True, socket_connect_timeout=5
        )

    async def check(self, timeout: float = 5.0) -> None:
        """Fail fast, with the URL and the reason, if Redis does not answer a PING."""
        try:
            await asyncio.wait_for(self.client.ping(), timeout)
        except (OSError, RedisError, RedisClusterException, asyncio.TimeoutError) as exc:
            reason = (str(exc) or type(exc).__name__).rstrip(".")
            if "no permissions" in reason or "NOPERM" in reason:
                hint = "The user may not run it: give it the rules `asyncjobs acl` prints."
            elif any(w in reason.upper() for w in ("AUTH", "WRONGPASS", "PASSWORD")):
                hint = "Check the username and password in the URL (or the server's ACL)."
            elif "Cluster mode is not enabled" in reason:
                # redis-py says so too when the ACL refuses the user CLUSTER SLOTS
                hint = (
                    "Use redis:// for a single server; on a cluster, give the user the rules "
                    "`asyncjobs acl` prints."
                )
            elif "DB index" in reason:
                hint = "The server has fewer databases: use a smaller /N at the end of the URL."
            else:
                hint = "Is redis-server running there?"
            raise RedisUnavailable(
                f"cannot reach Redis at {self.where}: {reason}. {hint} "
                "Pass --redis-url or set ASYNCJOBS_REDIS_URL (memory:// runs without a server)."
            ) from None

    async def close(self) -> None:
        """Close the pool (and the Wire), and a Sentinel's own connections with it."""
        if self.wire is not None:
            self.wire.close()
        try:
            await self.client.aclose()
        finally:
            for node in getattr(self._sentinel, "sentinels", ()):
                await node.aclose()


class _Refused(Exception):
    """Carries a refused login out of redis-py's retry loop, which would retry it."""

    def __init__(self, error: AuthenticationError) -> None:
        self.error = error


class _Retry(RedisRetry):
    """redis-py's retry without retrying a refused login, which no retry can mend: redis-py
    files AuthenticationError under ConnectionError, so a missing password was tried 20 times
    (the connect's retries inside the command's) and took 3.5 s to say so."""

    async def call_with_retry(self, do: Any, fail: Any, *args: Any, **kwargs: Any) -> Any:
        counted = kwargs.get("with_failure_count", args[1] if len(args) > 1 else False)

        async def once() -> Any:
            try:
                return await do()
            except AuthenticationError as error:
                await (fail(error, 1) if counted else fail(error))  # disconnects, as a retry would
                raise _Refused(error) from None

        try:
            return await super().call_with_retry(once, fail, *args, **kwargs)
        except _Refused as refused:
            raise refused.error from None


def _never_retry() -> Any:
    return RedisRetry(NoBackoff(), 0)  # type: ignore[no-untyped-call,unused-ignore]


def _ride_through() -> dict[str, Any]:
    """A plain or Sentinel client's options for riding out a dropped connection (a restart,
    a failover): a command is sent again a few times with a growing pause, a refused login
    never; an idle connection is checked before use."""
    return {
        "health_check_interval": 30,
        "retry": _Retry(BACKOFF, retries=RETRIES),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


class _OwnClientPubSub:
    """Pub/sub through a client of its own, closed with it: to one cluster node (classic
    PUBLISH reaches every node, and redis-py's asyncio cluster client has no pub/sub), or to
    a plain or Sentinel-found server with a retry policy of its own."""

    def __init__(self, node_client: Any, **options: Any) -> None:
        self._client = node_client
        self._pubsub = node_client.pubsub(**options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pubsub, name)

    async def aclose(self) -> None:
        try:
            await self._pubsub.aclose()
        finally:
            await self._client.aclose()
