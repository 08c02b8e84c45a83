"""arq's connection side: ``RedisSettings``, ``create_pool`` and ``ArqRedis``, a real async
Redis client (every redis-py command works) that enqueues through asyncjobs.

``ArqRedis`` shares one connection pool with the asyncjobs ``Queue`` under it: raw commands
and jobs go over the same connections.
"""

from __future__ import annotations

import asyncio
import glob
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.exceptions import RedisError

from .._arq_compat import JOB_TRY_KEY, redis_url_of
from .._errors import ConfigurationError
from .._models import JobStatus as _Status
from .._queue import Queue
from .constants import default_queue_name, expires_extra_ms
from .jobs import Deserializer, Job, JobDef, JobResult, Serializer, job_record
from .utils import timestamp_ms, to_seconds, to_unix_ms

logger = logging.getLogger("arq.connections")

__all__ = ["ArqRedis", "RedisSettings", "create_pool", "log_redis_info"]


@dataclass
class RedisSettings:
    """Where Redis is, as arq describes it (read by ``create_pool`` and ``Worker``)."""

    host: str | list[tuple[str, int]] = "localhost"
    port: int = 6379
    unix_socket_path: str | None = None
    database: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    ssl_keyfile: str | None = None
    ssl_certfile: str | None = None
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    ssl_ca_data: str | None = None
    ssl_check_hostname: bool = False
    conn_timeout: int = 1
    conn_retries: int = 5
    conn_retry_delay: int = 1
    max_connections: int | None = None

    sentinel: bool = False
    sentinel_master: str = "mymaster"

    retry_on_timeout: bool = False
    retry_on_error: list[type[Exception]] | None = None
    retry: Retry | None = None

    @classmethod
    def from_dsn(cls, dsn: str) -> RedisSettings:
        """``redis://``, ``rediss://`` or ``unix://`` (database from the path or ``?db=``)."""
        from urllib.parse import parse_qs, urlparse

        conf = urlparse(dsn)
        if conf.scheme not in {"redis", "rediss", "unix"}:
            raise RuntimeError("invalid DSN scheme")
        query_db = parse_qs(conf.query).get("db")
        if query_db:
            database = int(query_db[0])
        elif conf.scheme != "unix":
            database = int(conf.path.lstrip("/")) if conf.path.lstrip("/") else 0
        else:
            database = 0
        return cls(
            host=conf.hostname or "localhost",
            port=conf.port or 6379,
            ssl=conf.scheme == "rediss",
            username=conf.username,
            password=conf.password,
            database=database,
            unix_socket_path=conf.path if conf.scheme == "unix" else None,
        )

    @property
    def url(self) -> str:
        """These settings as an asyncjobs Redis URL."""
        return redis_url_of(self)

    def __repr__(self) -> str:
        return "RedisSettings({})".format(", ".join(f"{k}={v!r}" for k, v in vars(self).items()))


class ArqRedis(Redis):
    """redis-py's asyncio client plus arq's ``enqueue_job``, ``all_job_results`` and
    ``queued_jobs``, enqueueing through an asyncjobs ``Queue`` on the same pool."""

    def __init__(
        self,
        pool_or_conn: Any = None,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        default_queue_name: str = default_queue_name,
        expires_extra_ms: int = expires_extra_ms,
        **kwargs: Any,
    ) -> None:
        self.job_serializer = job_serializer
        self.job_deserializer = job_deserializer
        self.default_queue_name = default_queue_name
        self.expires_extra_ms = expires_extra_ms
        if pool_or_conn:
            kwargs["connection_pool"] = pool_or_conn
        super().__init__(**kwargs)
        self._queue: Queue | None = None
        self._owns_queue = False

    @classmethod
    def for_queue(
        cls, queue: Queue, *, owns: bool = False, default_queue_name: str | None = None
    ) -> ArqRedis | None:
        """An ArqRedis on ``queue``'s own pool (None for a cluster: arq's client is a plain
        one). With ``owns``, closing it closes the queue too."""
        pool = getattr(queue.client, "connection_pool", None)
        if pool is None:
            return None
        redis = cls(pool, default_queue_name=default_queue_name or queue.name)
        redis._queue, redis._owns_queue = queue, owns
        return redis

    @property
    def queue(self) -> Queue:
        """The asyncjobs Queue this client enqueues through."""
        if self._queue is None:  # made as ArqRedis(host=...): a Queue on the same server
            self._queue = Queue(_pool_url(self.connection_pool), name=self.default_queue_name)
            self._owns_queue = True
        return self._queue

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            queue, owns, self._queue = self._queue, self._owns_queue, None
            if queue is not None and owns:
                await queue.aclose()

    async def close(self, close_connection_pool: bool | None = None) -> None:
        """arq's name for ``aclose()``."""
        await self.aclose(close_connection_pool)

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> Job | None:
        """Enqueue a job of ``function``; None if a job with this ``_job_id`` exists.

        ``_defer_until`` (a naive datetime is local time, as in arq) or ``_defer_by`` delay it;
        it expires unless started within ``_expires`` (default: a day after it is due);
        ``_job_try`` sets the try it starts at. asyncjobs's own options (``_priority``,
        ``_idempotency_key``, ``_timeout``, ...) work too.
        """
        if _defer_until and _defer_by:
            raise RuntimeError("use either 'defer_until' or 'defer_by' or neither, not both")
        queue_name = _queue_name or self.default_queue_name
        options: dict[str, Any] = {"_queue_name": queue_name}
        if _job_id:
            options["_job_id"] = _job_id
        delay = 0.0
        if _defer_until is not None:
            if _defer_until.tzinfo is None:
                _defer_until = _defer_until.astimezone()  # arq reads a naive time as local
            options["_defer_until"] = _defer_until
            delay = max(0.0, (to_unix_ms(_defer_until) - timestamp_ms()) / 1000)
        elif _defer_by:
            options["_defer_by"] = _defer_by
            delay = to_seconds(_defer_by)
        options["_expires"] = to_seconds(_expires) or delay + self.expires_extra_ms / 1000
        if _job_try is not None:
            kwargs[JOB_TRY_KEY] = _job_try
        job = await self.queue.enqueue(function, *args, **kwargs, **options)
        if job.duplicate:
            return None
        return Job(job.id, self, _queue_name=queue_name, _deserializer=self.job_deserializer)

    async def all_job_results(self) -> list[JobResult]:
        """Every finished job whose record is still kept, in every queue, oldest first."""
        return await self.job_results(await self.queue.store.queue_names(self.queue.prefix))

    async def job_results(self, queue_names: Sequence[str]) -> list[JobResult]:
        """Every finished job still kept in these queues, oldest first."""
        queue = self.queue
        results: list[JobResult] = []
        for name in queue_names:
            prefix = queue.keys_for(name).job_prefix
            async for key in self.scan_iter(match=glob.escape(prefix) + "*", count=1000):
                job_id = key.decode()[len(prefix) :]
                info = await queue.job(job_id, name).info()
                if info.status.is_terminal and info.status is not _Status.NOT_FOUND:
                    record = job_record(info)
                    if isinstance(record, JobResult):
                        results.append(record)
        return sorted(results, key=lambda r: r.enqueue_time)

    async def queued_jobs(self, *, queue_name: str | None = None) -> list[JobDef]:
        """The jobs waiting in a queue (ready and deferred), in the order they are due."""
        queue = self.queue
        name = queue_name or self.default_queue_name
        keys = queue.keys_for(name)
        ids = [*await self.zrange(keys.ready, 0, -1), *await self.zrange(keys.deferred, 0, -1)]
        records = []
        for raw_id in ids:
            info = await queue.job(raw_id.decode(), name).info()
            if info.status is not _Status.NOT_FOUND:
                records.append(job_record(info))
        return sorted(records, key=lambda r: r.score or 0)


def _pool_url(pool: Any) -> str:
    """The URL of a pool redis-py made from keywords (host, port, db...)."""
    kw = pool.connection_kwargs
    user, password = kw.get("username") or "", kw.get("password")
    auth = f"{quote(user)}:{quote(password)}@" if password else (f"{quote(user)}@" if user else "")
    if kw.get("path"):
        return f"unix://{auth}{kw['path']}?db={kw.get('db', 0)}"
    scheme = "rediss" if "SSL" in pool.connection_class.__name__ else "redis"
    host, port = kw.get("host", "localhost"), kw.get("port", 6379)
    return f"{scheme}://{auth}{host}:{port}/{kw.get('db', 0)}"


async def create_pool(
    settings_: RedisSettings | str | None = None,
    *,
    retry: int = 0,
    job_serializer: Serializer | None = None,
    job_deserializer: Deserializer | None = None,
    default_queue_name: str = default_queue_name,
    expires_extra_ms: int = expires_extra_ms,
) -> ArqRedis:
    """An ArqRedis, retrying ``conn_retries`` times (``conn_retry_delay`` apart) until Redis
    answers. ``settings_`` may also be a URL (``memory://`` runs in-process, for tests)."""
    settings = RedisSettings() if settings_ is None else settings_
    if isinstance(settings, RedisSettings) and isinstance(settings.host, str) and settings.sentinel:
        raise RuntimeError(
            "str provided for 'host' but 'sentinel' is true; list of sentinels expected"
        )
    if job_serializer is not None or job_deserializer is not None:
        logger.warning("job_serializer/job_deserializer ignored: asyncjobs stores JSON")
    url = settings if isinstance(settings, str) else redis_url_of(settings)
    retries = settings.conn_retries if isinstance(settings, RedisSettings) else 0
    delay = settings.conn_retry_delay if isinstance(settings, RedisSettings) else 1
    queue = Queue(url, name=default_queue_name)
    redis = ArqRedis.for_queue(queue, owns=True, default_queue_name=default_queue_name)
    if redis is None:
        await queue.aclose()
        raise ConfigurationError(
            f"arq's client needs a plain Redis, not {queue.store.where}: use asyncjobs.Queue "
            "for a Redis Cluster"
        )
    redis.job_serializer, redis.job_deserializer = job_serializer, job_deserializer
    redis.expires_extra_ms = expires_extra_ms
    while True:
        try:
            await redis.ping()  # type: ignore[misc,unused-ignore]  # sync in some redis-py types
            await queue.store.preload()
        except (ConnectionError, OSError, RedisError, asyncio.TimeoutError) as exc:
            if retry < retries:
                logger.warning(
                    "redis connection error %s %s %s, %s retries remaining...",
                    queue.store.where, type(exc).__name__, exc, retries - retry,
                )  # fmt: skip
                await asyncio.sleep(delay)
                retry += 1
                continue
            await redis.aclose()
            raise
        if retry > 0:
            logger.info("redis connection successful")
        return redis


async def log_redis_info(redis: Redis, log_func: Callable[[str], Any]) -> None:
    """One line: Redis's version, memory used, clients connected, keys."""
    server, memory = await redis.info("server"), await redis.info("memory")
    clients, keys = await redis.info("clients"), await redis.dbsize()
    log_func(
        f"redis_version={server.get('redis_version', '?')} "
        f"mem_usage={memory.get('used_memory_human', '?')} "
        f"clients_connected={clients.get('connected_clients', '?')} db_keys={keys}"
    )
