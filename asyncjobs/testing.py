"""Helpers for your own tests: a fresh in-process queue, a worker that runs until the queue is
idle, and assertions on what was enqueued and how jobs ended.

Not an "eager mode". Celery's ``task_always_eager`` calls the function in place, so a test
never sees what production does: arguments that cannot be serialized, a task the worker does
not register, a retry policy, a job enqueued inside a job. Here every job takes the real path:
its arguments are encoded, it is stored by the same Lua scripts that run on Redis (``memory://``
runs them in-process on fakeredis), and a real Worker claims and runs it.

    async with Harness(functions=[send_welcome]) as jobs:
        await signup(jobs.queue, "ada@example.com")          # your code enqueues
        await jobs.assert_enqueued(send_welcome, args=["ada@example.com"])
        report = await jobs.run_until_idle()
        assert report.succeeded == ["send_welcome"]

``Harness(settings=WorkerSettings)`` takes your worker's own settings (an arq-style class too)
and runs them on the in-process backend. For pytest fixtures see ``asyncjobs.pytest_plugin``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from . import _serde
from ._models import JobInfo, JobStatus
from ._queue import Queue
from ._settings import WorkerSettings
from ._task import Task
from ._worker import Worker

__all__ = ["Harness", "JobOutcome", "RunReport", "memory_url"]


def memory_url() -> str:
    """A fresh ``memory://`` URL: an in-process Redis of its own, shared by every client that
    uses the same URL (the worker and your code alike)."""
    return f"memory://test-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class JobOutcome:
    """How one try of a job ended: ``succeeded``, ``retry``, ``failed``, ``cancelled``..."""

    job_id: str
    task: str
    attempt: int
    outcome: str
    result: Any = None
    error: BaseException | None = None


@dataclass
class RunReport:
    """What ``run_until_idle`` ran, try by try, in the order the tries ended."""

    tries: list[JobOutcome] = field(default_factory=list)

    def _tasks(self, outcome: str) -> list[str]:
        return [t.task for t in self.tries if t.outcome == outcome]

    @property
    def succeeded(self) -> list[str]:
        """Task names of the tries that succeeded."""
        return self._tasks("succeeded")

    @property
    def failed(self) -> list[str]:
        """Task names of the jobs that ended FAILED (tries used up, or a permanent error)."""
        return self._tasks("failed")

    @property
    def retried(self) -> list[str]:
        """Task names of the tries that failed and will be tried again."""
        return self._tasks("retry")

    def errors(self) -> list[BaseException]:
        """The error of every try that did not succeed."""
        return [t.error for t in self.tries if t.error is not None]


def _stored(args: Sequence[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Arguments as a job stores them (JSON: tuples become lists, datetimes strings...)."""
    return _serde.decode_payload(_serde.encode_payload(tuple(args), kwargs, "expected call"))


def _name(task: Task[Any, Any] | str | Callable[..., Any]) -> str:
    return task if isinstance(task, str) else getattr(task, "name", None) or task.__name__


def _without_backoff(fn: Any) -> Any:
    if isinstance(fn, Task) and fn.backoff != 0:
        fn = copy.copy(fn)
        fn.backoff = 0.0
    return fn


class Harness:
    """A queue on a fresh in-process backend and the worker settings to run its jobs.

    Args:
        settings: your WorkerSettings, an arq-style settings class, or None.
        functions: the tasks to register (when no ``settings``).
        url: the backend (default: a fresh ``memory://``); a real ``redis://`` works too.
        fast_retries: run retries at once instead of after the tasks' backoff, so a test sees
            every try without waiting (``Retry(defer=...)`` still waits).
        worker_options: more WorkerSettings fields (``concurrency``, ``on_startup``...).
    """

    def __init__(
        self,
        settings: WorkerSettings | Any | None = None,
        *,
        functions: Sequence[Any] = (),
        url: str | None = None,
        fast_retries: bool = True,
        **worker_options: Any,
    ) -> None:
        self.url = url or memory_url()
        if settings is None:
            base = WorkerSettings(functions=list(functions), **worker_options)
        else:
            base = WorkerSettings.coerce(settings)
            if functions or worker_options:
                extra = {"functions": list(functions)} if functions else {}
                base = WorkerSettings.coerce({**dict(base), **extra, **worker_options})
        updates: dict[str, Any] = {"redis_url": self.url}
        if fast_retries:
            updates["functions"] = [_without_backoff(fn) for fn in base.functions]
        self.settings = WorkerSettings.coerce({**dict(base), **updates})
        self.queue = Queue(self.url, name=self.settings.queues[0], prefix=self.settings.prefix)
        self._redis: Any = None

    async def __aenter__(self) -> Harness:
        await self.queue.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.queue.aclose()

    @property
    def redis(self) -> Any:
        """arq's client (``ArqRedis``) on this harness's backend, for arq-style code."""
        if self._redis is None:
            from .arq.connections import ArqRedis

            self._redis = ArqRedis.for_queue(self.queue)
        return self._redis

    # -- running -------------------------------------------------------------------------

    async def run_until_idle(
        self, *, include_deferred: bool = False, max_jobs: int | None = None, timeout: float = 30
    ) -> RunReport:
        """Run a worker (in this event loop) until no job is ready or running, then stop it.

        With ``include_deferred`` it also waits for deferred jobs (``_defer_by``,
        ``Retry(defer=...)``) to come due and run. ``max_jobs`` starts at most that many.
        Each call starts the worker afresh: on_startup and on_shutdown run every time.
        """
        report = RunReport()
        worker = Worker(
            self.settings,
            burst=True,
            burst_waits_for_deferred=include_deferred,
            max_burst_jobs=-1 if max_jobs is None else max_jobs,
            on_job_end=self._recording(report, self.settings.on_job_end),
        )
        await asyncio.wait_for(worker.run(burst=True, handle_signals=False), timeout)
        return report

    @staticmethod
    def _recording(
        report: RunReport, hook: Callable[[Any], Awaitable[None]] | None
    ) -> Callable[[Any], Awaitable[None]]:
        async def on_job_end(ctx: Any) -> None:
            report.tries.append(
                JobOutcome(
                    ctx.job_id, ctx.task_name, ctx.attempt, ctx.outcome or "", ctx.result, ctx.error
                )
            )
            if hook is not None:
                await hook(ctx)

        return on_job_end

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RunReport]:
        """Keep a worker running (in this event loop) for the block, for code that enqueues
        and then waits for results; stopped gracefully at the end. Yields its RunReport."""
        report = RunReport()
        worker = Worker(self.settings, on_job_end=self._recording(report, self.settings.on_job_end))
        task = asyncio.create_task(worker.run(handle_signals=False))
        try:
            yield report
        finally:
            worker.stop()
            await asyncio.wait_for(task, 30)

    async def run(self, task: Task[Any, Any] | str, /, *args: Any, **kwargs: Any) -> Any:
        """Enqueue one job, run the worker until idle, and return the job's result (raises
        JobFailed if it failed, as ``job.result()`` does)."""
        job = await self.queue.enqueue(task, *args, **kwargs)
        await self.run_until_idle()
        return await job.result(timeout=0.1)

    # -- looking -------------------------------------------------------------------------

    async def enqueued(
        self, task: Task[Any, Any] | str | None = None, *, queue: str | None = None
    ) -> list[JobInfo]:
        """The jobs waiting to run (queued, then deferred), of one task or all."""
        keys = self.queue.keys_for(queue or self.queue.name)
        client = self.queue.client
        ids = [*await client.zrange(keys.ready, 0, -1), *await client.zrange(keys.deferred, 0, -1)]
        found = []
        for raw in ids:
            info = await self.queue.job(raw.decode(), keys.name).info()
            waiting = info.status in (JobStatus.QUEUED, JobStatus.DEFERRED)
            if waiting and (task is None or info.task == _name(task)):
                found.append(info)
        return found

    async def assert_enqueued(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
        count: int | None = None,
    ) -> list[JobInfo]:
        """Fail unless ``task`` is waiting to run with these arguments (None: any), compared
        as the job stores them (JSON); ``count`` pins how many such jobs. Returns them."""
        waiting = await self.enqueued(queue=queue)
        matching = self._matching(waiting, task, args, kwargs)
        if (count is None and not matching) or (count is not None and len(matching) != count):
            wanted = f"{_name(task)}(args={args!r}, kwargs={kwargs!r})"
            have = [f"{i.task}(args={i.args!r}, kwargs={i.kwargs!r})" for i in waiting] or [
                "nothing"
            ]
            many = "at least one job" if count is None else f"{count} job(s)"
            raise AssertionError(
                f"expected {many} of {wanted} waiting, found {len(matching)}; "
                f"waiting: {', '.join(have)}"
            )
        return matching

    async def assert_not_enqueued(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *,
        queue: str | None = None,
    ) -> None:
        """Fail if ``task`` is waiting to run with these arguments (None: any)."""
        await self.assert_enqueued(task, args, kwargs, queue=queue, count=0)

    @staticmethod
    def _matching(
        waiting: list[JobInfo],
        task: Task[Any, Any] | str,
        args: Sequence[Any] | None,
        kwargs: dict[str, Any] | None,
    ) -> list[JobInfo]:
        want_args, want_kwargs = _stored(args or (), kwargs or {})
        return [
            info
            for info in waiting
            if info.task == _name(task)
            and (args is None or info.args == want_args)
            and (kwargs is None or info.kwargs == want_kwargs)
        ]

    async def result(self, job_id: str) -> Any:
        """A finished job's result (raises JobFailed if it failed); it must have ended."""
        job = self.queue.job(job_id)
        info = await job.info()
        if not info.status.is_terminal or info.status is JobStatus.NOT_FOUND:
            raise AssertionError(f"job {job_id} has not ended: it is {info.status.value}")
        return await job.result(timeout=0.1)
