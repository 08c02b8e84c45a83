"""arq compatibility: port an arq worker module by changing its imports only.

    from arq import cron                       ->  from asyncjobs.arq import cron
    from arq.connections import RedisSettings  ->  from asyncjobs.arq import RedisSettings
    from arq.worker import func                ->  from asyncjobs.arq import func

The settings class itself (functions, cron_jobs, on_startup, on_shutdown, on_job_start,
on_job_end, redis_settings, max_jobs, job_timeout, keep_result, max_tries, queue_name) is
read by ``asyncjobs worker module:WorkerSettings`` unchanged. Tasks keep ``ctx['job_id']``,
``ctx['job_try']``, ``ctx['enqueue_time']`` and ``await ctx['redis'].enqueue_job(...)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._cron import CronJob
from ._cron import cron as _cron
from ._task import Task

Field = int | Collection[int] | None


@dataclass
class RedisSettings:
    """arq's connection settings; turned into a ``redis://`` URL by WorkerSettings."""

    host: str = "localhost"
    port: int = 6379
    database: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    conn_timeout: int = 1
    conn_retries: int = 5
    conn_retry_delay: int = 1

    @classmethod
    def from_dsn(cls, dsn: str) -> RedisSettings:
        parts = urlsplit(dsn)
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 6379,
            database=int((parts.path or "/0").lstrip("/") or 0),
            username=parts.username,
            password=parts.password,
            ssl=parts.scheme == "rediss",
        )


def func(
    coroutine: Callable[..., Awaitable[Any]] | Task[Any, Any],
    *,
    name: str | None = None,
    keep_result: float | None = None,
    timeout: float | None = None,
    max_tries: int | None = None,
    keep_result_forever: bool | None = None,
) -> Task[Any, Any]:
    """arq's ``func()``: per-function options. ``keep_result`` is per worker in asyncjobs."""
    if isinstance(coroutine, Task):
        coroutine = coroutine.fn
    return Task(coroutine, name=name, timeout=timeout, max_tries=max_tries)


def cron(
    coroutine: Callable[..., Awaitable[Any]] | Task[Any, Any],
    *,
    name: str | None = None,
    month: Field = None,
    day: Field = None,
    weekday: Field | str = None,
    hour: Field = None,
    minute: Field = None,
    second: Field = 0,
    microsecond: int = 123_456,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: float | None = None,
    keep_result: float | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
) -> CronJob:
    """arq's ``cron()``: weekday 0 is Monday (as in arq and ``datetime.weekday()``).

    ``microsecond``, ``job_id``, ``keep_result`` and ``keep_result_forever`` are accepted and
    ignored: ticks start on the second, and their job ids are always ``cron:<name>:<tick>``.
    """
    task = coroutine if isinstance(coroutine, Task) else Task(coroutine, name=name)
    if timeout is not None or max_tries is not None:
        task = Task(task.fn, name=task.name, timeout=timeout, max_tries=max_tries)
    return _cron(
        task,
        name=name,
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        run_at_startup=run_at_startup,
        unique=unique,
    )
