"""Redis URL → one asyncio client (one connection pool); ``memory://`` runs fakeredis in-process."""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as RedisRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ._errors import ConfigurationError, RedisUnavailable

DEFAULT_REDIS_URL = "redis://localhost:6379/0"

_memory_servers: dict[str, Any] = {}
_memory_lock = threading.Lock()


def redact(url: str) -> str:
    """The URL with any password replaced, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


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
    if scheme == "memory":
        import fakeredis

        return fakeredis.FakeAsyncRedis(server=_memory_server(url))
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigurationError(
            f"unsupported Redis URL {redact(url)!r}: use redis://, rediss://, unix:// or memory://"
        )
    return aioredis.Redis.from_url(
        url,
        max_connections=max_connections,
        socket_connect_timeout=5.0,
        socket_keepalive=True,
        health_check_interval=30,
        retry=RedisRetry(ExponentialBackoff(cap=2.0, base=0.05), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


async def check_reachable(client: Any, url: str, timeout: float = 5.0) -> None:
    """Fail fast, with the URL and the reason, if Redis does not answer a PING."""
    try:
        await asyncio.wait_for(client.ping(), timeout)
    except (OSError, RedisConnectionError, RedisTimeoutError, asyncio.TimeoutError) as exc:
        reason = (str(exc) or type(exc).__name__).rstrip(".")
        raise RedisUnavailable(
            f"cannot reach Redis at {redact(url)}: {reason}. Is redis-server running there? "
            "Pass --redis-url or set ASYNCJOBS_REDIS_URL (memory:// runs without a server)."
        ) from None
