"""arq's worker side: ``func``, ``Retry``, ``Worker``, ``run_worker`` and ``check_health``,
running asyncjobs's worker (leases, fencing, dead letters) under arq's names and semantics.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from datetime import timezone as _timezone
from typing import Any

from .._arq_compat import (
    Function,
    JobExecutionFailed,
    import_string,
    settings_attributes,
    warn_ignored,
)
from .._cron import CronJob as _CronJob
from .._errors import Retry as _Retry
from .._queue import Queue
from .._settings import WorkerSettings
from .._task import Task
from .._worker import Worker as _Worker
from .connections import ArqRedis, RedisSettings
from .constants import default_queue_name, expires_extra_ms
from .cron import CronJob
from .jobs import Deserializer, JobResult, Serializer
from .typing import SecondsTimedelta, StartupShutdown, WorkerCoroutine, WorkerSettingsType
from .utils import to_ms

logger = logging.getLogger("arq.worker")

__all__ = [
    "FailedJobs",
    "Function",
    "JobExecutionFailed",
    "Retry",
    "RetryJob",
    "Worker",
    "async_check_health",
    "check_health",
    "create_worker",
    "func",
    "get_kwargs",
    "run_worker",
]


def func(
    coroutine: str | Function | WorkerCoroutine,
    *,
    name: str | None = None,
    keep_result: SecondsTimedelta | None = None,
    timeout: SecondsTimedelta | None = None,
    keep_result_forever: bool | None = None,
    max_tries: int | None = None,
) -> Function:
    """A job function with its own settings (``coroutine`` may be a dotted path).

    Like every arq function it is retried only when it raises ``Retry``; ``keep_result`` is
    accepted, but results are kept for the worker's ``keep_result``.
    """
    if isinstance(coroutine, Function):
        return coroutine
    fn: Any = coroutine
    if isinstance(fn, str):
        name = name or fn
        fn = import_string(fn)
    if isinstance(fn, Task):
        fn = fn.fn
    if not inspect.iscoroutinefunction(fn):
        raise RuntimeError(f"{fn} is not a coroutine function")
    return Function(
        fn,
        name=name,
        keep_result=keep_result,
        timeout=timeout,
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
    )


class Retry(_Retry, RuntimeError):
    """Raise it in a job to run the job again after ``defer`` (at once without), while
    ``max_tries`` allows."""

    def __init__(self, defer: SecondsTimedelta | None = None) -> None:
        super().__init__(defer)
        self.defer_score: int | None = to_ms(defer)

    def __repr__(self) -> str:
        return f"<Retry defer {(self.defer_score or 0) / 1000:0.2f}s>"

    def __str__(self) -> str:
        return repr(self)


class RetryJob(Retry):
    """arq's 'run it again': retried at once, as a ``Retry`` without a delay."""

    def __init__(self, *args: Any) -> None:
        super().__init__(None)


class FailedJobs(RuntimeError):
    """Raised by ``run_check`` when jobs failed; ``job_results`` holds their results."""

    def __init__(self, count: int, job_results: list[JobResult]) -> None:
        self.count = count
        self.job_results = job_results

    def __str__(self) -> str:
        if self.count == 1 and self.job_results:
            return f"1 job failed {self.job_results[0].result!r}"
        return f"{self.count} jobs failed:\n" + "\n".join(repr(r.result) for r in self.job_results)

    def __repr__(self) -> str:
        return f"<{self}>"


_OUTCOMES = {"succeeded": "complete", "retry": "retried", "requeued": "retried"}
_OUTCOMES |= {"failed": "failed", "cancelled": "failed"}


class Worker:
    """arq's Worker, with arq's keyword arguments and defaults, running asyncjobs's worker.

    ``main()`` (or ``async_run()``) runs it in the running loop, ``run()`` in a new one. With
    ``burst`` it returns once nothing is queued, deferred (retries included) or running.
    """

    def __init__(
        self,
        functions: Sequence[Function | WorkerCoroutine] = (),
        *,
        queue_name: str | None = default_queue_name,
        cron_jobs: Sequence[CronJob] | None = None,
        redis_settings: RedisSettings | None = None,
        redis_pool: ArqRedis | None = None,
        burst: bool = False,
        on_startup: StartupShutdown | None = None,
        on_shutdown: StartupShutdown | None = None,
        on_job_start: StartupShutdown | None = None,
        on_job_end: StartupShutdown | None = None,
        after_job_end: StartupShutdown | None = None,
        handle_signals: bool = True,
        job_completion_wait: int = 0,
        max_jobs: int = 10,
        job_timeout: SecondsTimedelta = 300,
        keep_result: SecondsTimedelta = 3600,
        keep_result_forever: bool = False,
        poll_delay: SecondsTimedelta = 0.5,
        queue_read_limit: int | None = None,
        max_tries: int = 5,
        health_check_interval: SecondsTimedelta = 3600,
        health_check_key: str | None = None,
        ctx: dict[Any, Any] | None = None,
        retry_jobs: bool = True,
        allow_abort_jobs: bool = False,
        max_burst_jobs: int = -1,
        job_serializer: Serializer | None = None,
        job_deserializer: Deserializer | None = None,
        expires_extra_ms: int = expires_extra_ms,
        timezone: _timezone | None = None,
        log_results: bool = True,
    ) -> None:
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        defaults = {
            p.name: p.default for p in inspect.signature(Worker.__init__).parameters.values()
        }
        self._raw = {k: v for k, v in given.items() if v is not defaults.get(k)}
        self._raw.pop("redis_pool", None)
        self._raw.pop("handle_signals", None)
        if queue_name is None:
            if redis_pool is None:
                raise ValueError("If queue_name is absent, redis_pool must be present.")
            queue_name = redis_pool.default_queue_name
        self._raw["queue_name"] = self.queue_name = queue_name
        if redis_pool is not None:
            self._raw["redis_settings"] = redis_pool.queue.url
        elif redis_settings is None:
            self._raw["redis_settings"] = RedisSettings()
        if cron_jobs is not None and not all(isinstance(j, _CronJob) for j in cron_jobs):
            raise RuntimeError("cron_jobs, must be instances of CronJob")
        if not functions and not cron_jobs:
            raise RuntimeError("at least one function or cron_job must be registered")
        self.burst = burst
        self.redis_settings = redis_settings
        self.health_check_key = health_check_key or queue_name + ":health-check"
        self.retry_jobs = retry_jobs
        self.allow_abort_jobs = allow_abort_jobs
        self.max_burst_jobs = max_burst_jobs
        self.on_stop: Callable[[signal.Signals], None] | None = None
        self.main_task: asyncio.Task[None] | None = None
        self.jobs_complete = self.jobs_failed = self.jobs_retried = 0
        self._pool = redis_pool
        self._owns_pool = False
        self._handle_signals = handle_signals
        self._build()

    def _build(self) -> None:
        raw = dict(self._raw, retry_jobs=self.retry_jobs, max_burst_jobs=self.max_burst_jobs)
        raw["on_job_end"] = self._counting(raw.get("on_job_end"))
        self.settings = WorkerSettings.from_arq(raw)
        self._worker = _Worker(self.settings)
        #: The worker-wide ctx dict: what on_startup puts here, every job's ctx starts from.
        self.ctx = self._worker.state
        self.functions: dict[str, Task[Any, Any] | _CronJob] = dict(self._worker.registry)
        self.functions.update({job.name: job for job in self.settings.cron_jobs})
        self.max_jobs = self.settings.concurrency
        self.job_timeout_s = self.settings.job_timeout
        self.keep_result_s = self.settings.keep_result
        self.max_tries = self.settings.max_tries

    def _counting(
        self, hook: Callable[[Any], Awaitable[None]] | None
    ) -> Callable[[Any], Awaitable[None]]:
        async def on_job_end(ctx: Any) -> None:
            counter = _OUTCOMES.get(ctx.outcome or "")
            if counter is not None:
                setattr(self, f"jobs_{counter}", getattr(self, f"jobs_{counter}") + 1)
            if hook is not None:
                await hook(ctx)

        return on_job_end

    @property
    def pool(self) -> ArqRedis:
        """An ArqRedis on the worker's Redis and queue (the one it was given, if any), open
        until ``close()``, as arq's."""
        if self._pool is None:
            queue = Queue(self.settings.redis_url, name=self.queue_name)
            self._pool = ArqRedis.for_queue(queue, owns=True)
            self._owns_pool = True
        return self._pool  # type: ignore[return-value]

    async def main(self) -> None:
        """Run in the running loop: until a signal (or ``close()``), or with ``burst`` until
        nothing is left."""
        self.main_task = asyncio.current_task()
        await self._worker.run(burst=self.burst, handle_signals=self._handle_signals)

    async def async_run(self) -> None:
        await self.main()

    def run(self) -> None:
        """Run in a new event loop (until SIGINT/SIGTERM, or with ``burst`` until done)."""
        asyncio.run(self.main())

    async def run_check(
        self, retry_jobs: bool | None = None, max_burst_jobs: int | None = None
    ) -> int:
        """Run (``burst`` as set); raise FailedJobs if any job failed, else return how many
        succeeded."""
        if retry_jobs is not None or max_burst_jobs is not None:
            self.retry_jobs = self.retry_jobs if retry_jobs is None else retry_jobs
            self.max_burst_jobs = self.max_burst_jobs if max_burst_jobs is None else max_burst_jobs
            self._build()
        await self.async_run()
        if self.jobs_failed:
            results = await self.pool.job_results(self.settings.queues)
            raise FailedJobs(self.jobs_failed, [r for r in results if not r.success])
        return self.jobs_complete

    def handle_sig(self, signum: int) -> None:
        """Stop as a signal would: running jobs finish within the grace period."""
        sig = signal.Signals(signum)
        logger.info(
            "shutdown on %s ◆ %d jobs complete ◆ %d failed ◆ %d retries",
            sig.name, self.jobs_complete, self.jobs_failed, self.jobs_retried,
        )  # fmt: skip
        self._worker.stop()
        if self.on_stop is not None:
            self.on_stop(sig)

    async def close(self) -> None:
        """Stop a running worker and wait for it (on_shutdown runs as it stops); close the
        pool it opened."""
        task = self.main_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            self._worker.stop()
            await asyncio.wait({task})
        if self._owns_pool and self._pool is not None:
            pool, self._pool, self._owns_pool = self._pool, None, False
            await pool.aclose()

    def __repr__(self) -> str:
        return (
            f"<Worker j_complete={self.jobs_complete} j_failed={self.jobs_failed} "
            f"j_retried={self.jobs_retried} j_ongoing={len(self._worker.running)}>"
        )


def get_kwargs(settings_cls: WorkerSettingsType) -> dict[str, Any]:
    """The attributes of a settings class (or dict) that are Worker keyword arguments."""
    names = set(inspect.signature(Worker).parameters)
    raw = settings_cls if isinstance(settings_cls, dict) else settings_attributes(settings_cls)
    return {k: v for k, v in raw.items() if k in names}


def create_worker(settings_cls: WorkerSettingsType, **kwargs: Any) -> Worker:
    """A Worker from a settings class (or dict); attributes that are not settings are named in
    one warning line."""
    raw = settings_cls if isinstance(settings_cls, dict) else settings_attributes(settings_cls)
    known = get_kwargs(settings_cls)
    warn_ignored([], [k for k in raw if k not in known], known)
    return Worker(**{**known, **kwargs})


def run_worker(settings_cls: WorkerSettingsType, **kwargs: Any) -> Worker:
    """Create a Worker from the settings and run it in a new event loop until it stops."""
    worker = create_worker(settings_cls, **kwargs)
    worker.run()
    return worker


async def async_check_health(
    redis_settings: RedisSettings | None,
    health_check_key: str | None = None,
    queue_name: str | None = None,
) -> int:
    """0 if a live worker serves the queue (its heartbeat is fresh), else 1."""
    settings = redis_settings or RedisSettings()
    name = queue_name or default_queue_name
    async with Queue(settings.url if isinstance(settings, RedisSettings) else settings) as q:
        alive = (await q.store.counts(q.keys_for(name))).workers > 0
    if alive:
        logger.info("Health check successful: a worker serves %s", name)
        return 0
    logger.warning("Health check failed: no live worker serves %s", name)
    return 1


def check_health(settings_cls: WorkerSettingsType) -> int:
    """Run a health check for the worker these settings describe; 0 if healthy, 1 if not."""
    kwargs = get_kwargs(settings_cls)
    return asyncio.run(
        async_check_health(
            kwargs.get("redis_settings"), kwargs.get("health_check_key"), kwargs.get("queue_name")
        )
    )
