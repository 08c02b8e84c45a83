"""Redis URL → one asyncio client (one connection pool); ``memory://`` runs fakeredis in-process.

Schemes: ``redis://``, ``rediss://``, ``unix://``, ``memory://[name]``,
``redis+cluster://[user:pass@]host:port[,host:port...]`` (``rediss+cluster://`` for TLS) and
``redis+sentinel://[user:pass@]host:port[,host:port...]/service_name[/db]``.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as RedisRetry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import ConfigurationError, RedisUnavailable
from ._wire import BACKOFF, RETRIES, Wire, wire_for

try:
    import hiredis

    _HIREDIS = hasattr(hiredis, "pack_command")
except ImportError:  # pragma: no cover - hiredis is a dependency, but stay usable without it
    _HIREDIS = False

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

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


class _FastConnection(_HiredisPacking, aioredis.Connection):
    pass


class _FastSSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@")
    query = re.sub(r"(?i)(^|&)(password=)[^&]*", r"\1\2***", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _memory_server(url: str) -> Any:
    """One fakeredis server per ``memory://name`` URL, shared by every client in the process."""
    import fakeredis

    with _memory_lock:
        server = _memory_servers.get(url)
        if server is None:
            server = fakeredis.FakeServer(version=(7, 0))
            _memory_servers[url] = server
        return server


def create_client(url: str, *, max_connections: int | None = None) -> Any:
    """A client over one pool for ``url``; no I/O happens until the first command."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis+cluster", "rediss+cluster"):
        return _cluster_client(url, max_connections)
    if scheme == "redis+sentinel":
        return _sentinel_client(url, max_connections)
    if scheme == "memory":
        import fakeredis

        return fakeredis.FakeAsyncRedis(
            server=_memory_server(url), max_connections=max_connections or UNBOUNDED_POOL
        )
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"unsupported Redis URL {redact(url)!r}: use redis://, rediss://, unix://, "
            "redis+cluster://, redis+sentinel:// or memory://"
        )
    packing = {"redis": _FastConnection, "rediss": _FastSSLConnection}.get(scheme)
    extra: dict[str, Any] = {"connection_class": packing} if packing and _HIREDIS else {}
    if scheme != "unix":  # redis-py's unix connection refuses TCP options
        extra["socket_keepalive"] = True
    client = aioredis.Redis.from_url(
        url,
        **extra,
        max_connections=max_connections or UNBOUNDED_POOL,
        socket_connect_timeout=5.0,
        health_check_interval=30,
        retry=RedisRetry(BACKOFF, retries=RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **CLIENT_DEFAULTS,
    )
    if _HIREDIS:
        setattr(client, "_asyncjobs_wire", wire_for(client))  # noqa: B010 - see wire_of
    return client


def wire_of(client: Any) -> Wire | None:
    """The lean connection script calls take on this client (plain redis:// and unix://)."""
    return getattr(client, "_asyncjobs_wire", None)


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


def _cluster_client(url: str, max_connections: int | None) -> Any:
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    nodes, username, password, _ = _split_hosts(url)
    client = RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        username=username,
        password=password,
        ssl=url.startswith("rediss+"),
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        max_connections=max_connections or UNBOUNDED_POOL,
        **CLIENT_DEFAULTS,
    )
    setattr(client, "_asyncjobs_auth", {"username": username, "password": password})  # noqa: B010
    return client


def _sentinel_client(url: str, max_connections: int | None) -> Any:
    from redis.asyncio.sentinel import Sentinel

    nodes, username, password, path = _split_hosts(url)
    service, _, db = path.partition("/")
    if not service:
        raise ConfigurationError(
            f"{redact(url)!r} names no service: use redis+sentinel://host:port/service_name[/db]"
        )
    sentinel = Sentinel(nodes, socket_connect_timeout=5.0)  # type: ignore[no-untyped-call]
    client = sentinel.master_for(
        service,
        db=int(db or 0),
        username=username,
        password=password,
        socket_keepalive=True,
        max_connections=max_connections or UNBOUNDED_POOL,
        **CLIENT_DEFAULTS,
    )
    setattr(client, "_asyncjobs_sentinel", sentinel)  # noqa: B010 - closed by close_client
    return client


async def close_client(client: Any) -> None:
    """Close the client's pool (and its Wire), and a Sentinel's own connections with it."""
    wire = wire_of(client)
    if wire is not None:
        wire.close()
    try:
        await client.aclose()
    finally:
        sentinel = getattr(client, "_asyncjobs_sentinel", None)
        for node in getattr(sentinel, "sentinels", ()):
            await node.aclose()


def is_cluster(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster

    return isinstance(client, RedisCluster)


class _NodePubSub:
    """Pub/sub through a plain client to one cluster node: classic PUBLISH reaches every node,
    and redis-py's asyncio cluster client has no pub/sub of its own."""

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


def open_pubsub(client: Any, **options: Any) -> Any:
    """A PubSub on the client's pool, or on one node of a cluster."""
    if not is_cluster(client):
        return client.pubsub(**options)
    node = client.get_default_node()
    node_client = aioredis.Redis(
        host=node.host, port=node.port, ssl=node.connection_kwargs.get("ssl", False),
        **CLIENT_DEFAULTS, **getattr(client, "_asyncjobs_auth", {}),
    )  # fmt: skip
    return _NodePubSub(node_client, **options)


async def check_reachable(client: Any, url: str, timeout: float = 5.0) -> None:
    """Fail fast, with the URL and the reason, if Redis does not answer a PING."""
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except (OSError, RedisConnectionError, RedisTimeoutError, asyncio.TimeoutError) as exc:
        reason = (str(exc) or type(exc).__name__).rstrip(".")
        hint = (
            "Check the username and password in the URL (or the server's ACL)."
            if any(w in reason.upper() for w in ("AUTH", "WRONGPASS", "NOPERM", "PASSWORD"))
            else "Is redis-server running there?"
        )
        raise RedisUnavailable(
            f"cannot reach Redis at {redact(url)}: {reason}. {hint} "
            "Pass --redis-url or set ASYNCJOBS_REDIS_URL (memory:// runs without a server)."
        ) from None
