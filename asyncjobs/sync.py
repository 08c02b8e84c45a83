"""A blocking client for code without an event loop (Django and Flask views, scripts, shells).

It is the async client underneath: a private event loop runs in a daemon thread and every call
is submitted to it, so the same Lua scripts do the work. Nothing starts until the first call.

    from asyncjobs.sync import Queue

    queue = Queue("redis://localhost:6379/0")
    job = queue.enqueue("reports.build", 42)
    print(job.result(timeout=30))
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Coroutine, Iterable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar, overload

from . import _defaults
from ._cron import CronInfo, CronJob
from ._job import Job as AsyncJob
from ._models import JobInfo, JobStatus
from ._queue import Queue as AsyncQueue
from ._task import Task

__all__ = ["Job", "Queue"]

T = TypeVar("T")
R = TypeVar("R")

_thread_numbers = itertools.count(1)


def _refuse_inside_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        "asyncjobs.sync.Queue blocks, and this thread runs an event loop that it would stall. "
        "In async code use asyncjobs.Queue and await its methods (or move the blocking call off "
        "the loop with `await asyncio.to_thread(...)`)."
    )


class _LoopThread:
    """An event loop in a daemon thread that owns one async Queue; closes both on close()."""

    def __init__(self, make_queue: Callable[[], AsyncQueue]) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self._serve, name=f"asyncjobs-sync-{next(_thread_numbers)}", daemon=True
        )
        self.thread.start()
        self.queue: AsyncQueue | None = None
        try:
            self.queue = self.call(lambda: self._open(make_queue))
        except BaseException:
            self.close()
            raise

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            pending = asyncio.all_tasks(self.loop)
            for task in pending:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    @staticmethod
    async def _open(make_queue: Callable[[], AsyncQueue]) -> AsyncQueue:
        # Built inside the loop so its client, locks and subscription belong to this loop.
        queue = make_queue()
        try:
            return await queue.__aenter__()
        except BaseException:
            await queue.aclose()
            raise

    def call(self, make: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run ``make()`` on the loop and block for its outcome (cancelled if interrupted).

        It runs in a copy of the caller's context (call_soon_threadsafe copies it), so the span
        of the view that enqueues is the parent of the enqueue's ``send`` span.
        """
        coro = make()
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError:  # the loop closed under us (close() from another thread)
            coro.close()
            raise RuntimeError("this asyncjobs.sync.Queue is closed") from None
        try:
            return future.result()
        except BaseException:
            future.cancel()  # KeyboardInterrupt while waiting: do not leave the call running
            raise

    def close(self) -> None:
        if self.loop.is_closed() or not self.thread.is_alive():
            return
        try:
            if self.queue is not None and threading.current_thread() is not self.thread:
                self.call(self.queue.aclose)
        finally:
            self.queue = None
            self.loop.call_soon_threadsafe(self.loop.stop)
            if threading.current_thread() is not self.thread:
                self.thread.join(timeout=10)


class Queue:
    """Blocking twin of ``asyncjobs.Queue``; safe to share between threads.

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``memory://`` (default:
            ``ASYNCJOBS_REDIS_URL``, then ``redis://localhost:6379/0``). One ``memory://`` URL
            is one in-process server, shared with async Queues and workers in this process.
        name, prefix, keep_result, idempotency_ttl: as for ``asyncjobs.Queue``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = _defaults.QUEUE,
        prefix: str = _defaults.PREFIX,
        keep_result: float = _defaults.KEEP_RESULT,
        idempotency_ttl: float = _defaults.IDEMPOTENCY_TTL,
        tracing: bool = True,
        tracer_provider: Any = None,
    ) -> None:
        self.url = url or os.environ.get("ASYNCJOBS_REDIS_URL")
        self.name = name
        self._options: dict[str, Any] = {
            "name": name,
            "prefix": prefix,
            "keep_result": keep_result,
            "idempotency_ttl": idempotency_ttl,
            "tracing": tracing,
            "tracer_provider": tracer_provider,
        }
        self._lock = threading.Lock()
        self._runner: _LoopThread | None = None
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def __enter__(self) -> Queue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the background thread; later calls raise."""
        with self._lock:
            self._closed = True
            if self._finalizer is not None:
                self._finalizer()  # runs _LoopThread.close once, then detaches
            self._runner = None

    @property
    def thread(self) -> threading.Thread | None:
        """The background thread, once the first call started it."""
        runner = self._runner
        return None if runner is None else runner.thread

    def _call(self, make: Callable[[AsyncQueue], Coroutine[Any, Any, T]]) -> T:
        _refuse_inside_event_loop()
        runner = self._start()
        assert runner.queue is not None
        queue = runner.queue
        return runner.call(lambda: make(queue))

    def _start(self) -> _LoopThread:
        with self._lock:
            if self._closed:
                raise RuntimeError("this asyncjobs.sync.Queue is closed")
            runner = self._runner
            if runner is not None and runner.pid != os.getpid():
                # Forked (e.g. a pre-forking web server): the thread did not come along, and
                # the parent's sockets are not ours to close. Start afresh.
                if self._finalizer is not None:
                    self._finalizer.detach()
                runner = None
            if runner is None:
                url, options = self.url, self._options
                runner = _LoopThread(lambda: AsyncQueue(url, **options))
                self._runner = runner
                self._finalizer = weakref.finalize(self, runner.close)
            return runner

    @overload
    def enqueue(self, task: Task[Any, R], /, *args: Any, **kwargs: Any) -> Job[R]: ...

    @overload
    def enqueue(self, task: str, /, *args: Any, **kwargs: Any) -> Job[Any]: ...

    def enqueue(self, task: Task[Any, Any] | str, /, *args: Any, **kwargs: Any) -> Job[Any]:
        """Store one job and return its handle (an existing one, ``.duplicate``, if deduped)."""
        return self.enqueue_many([(task, args, kwargs)])[0]

    def enqueue_many(
        self, items: Iterable[tuple[Task[Any, Any] | str, Sequence[Any], dict[str, Any]]]
    ) -> list[Job[Any]]:
        """Enqueue a batch of ``(task, args, kwargs)`` in one round trip per queue."""
        batch = list(items)
        jobs = self._call(lambda queue: queue.enqueue_many(batch))
        return [
            Job(self, job.id, job.queue_name, duplicate=job.duplicate, task=job._task)
            for job in jobs
        ]

    def job(self, job_id: str, queue_name: str | None = None) -> Job[Any]:
        """A handle on any job by id (in this Queue's default queue unless named)."""
        return Job(self, job_id, queue_name or self.name)

    def add_cron(self, job: CronJob) -> CronInfo:
        """Store a cron in Redis; running workers pick it up at once (``Queue.add_cron``)."""
        return self._call(lambda queue: queue.add_cron(job))

    def remove_cron(self, name: str, queue_name: str | None = None) -> bool:
        """Delete a cron added at run time; no tick of it is enqueued after this returns."""
        return self._call(lambda queue: queue.remove_cron(name, queue_name))

    def crons(self, queue_name: str | None = None, *, all_queues: bool = False) -> list[CronInfo]:
        """The crons of a queue, run-time and settings ones (``Queue.crons``)."""
        return self._call(lambda queue: queue.crons(queue_name, all_queues=all_queues))


class Job(Generic[R]):
    """Blocking twin of ``asyncjobs.Job``: ``status()``, ``result()``, ``info()``, ``cancel()``."""

    __slots__ = ("_queue", "_task", "duplicate", "id", "queue_name")

    def __init__(
        self,
        queue: Queue,
        job_id: str,
        queue_name: str,
        *,
        duplicate: bool = False,
        task: Task[Any, R] | None = None,
    ) -> None:
        self._queue = queue
        self._task = task
        self.id = job_id
        self.queue_name = queue_name
        #: True if enqueue found this job already there (same ``_job_id`` or idempotency key).
        self.duplicate = duplicate

    def __repr__(self) -> str:
        dup = " duplicate" if self.duplicate else ""
        return f"<sync Job {self.id} queue={self.queue_name}{dup}>"

    def status(self) -> JobStatus:
        return self._queue._call(lambda queue: self._on(queue).status())

    def info(self) -> JobInfo:
        return self._queue._call(lambda queue: self._on(queue).info())

    def result(self, timeout: float | None = None) -> R:
        """Block until the job ends and return its result; raises as ``asyncjobs.Job.result``."""
        return self._queue._call(lambda queue: self._on(queue).result(timeout))

    def cancel(self) -> bool:
        """Cancel the job (a running one is stopped); False if it had already ended."""
        return self._queue._call(lambda queue: self._on(queue).cancel())

    def _on(self, queue: AsyncQueue) -> AsyncJob[R]:
        return AsyncJob(queue, self.id, self.queue_name, duplicate=self.duplicate, task=self._task)
