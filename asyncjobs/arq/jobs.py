"""arq's job handle (``Job``), its records (``JobDef``, ``JobResult``) and ``JobStatus``,
read from asyncjobs's job records.

A failed job's error comes back as the exception type it raised (found by name among the
builtins and the modules already imported; never unpickled), with its message and, on Python
3.11+, the worker's traceback as a note.
"""

from __future__ import annotations

import asyncio
import builtins
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Protocol

from .._arq_compat import JOB_TRY_KEY, JobExecutionFailed
from .._errors import JobCancelled, JobFailed
from .._errors import ResultNotFound as _ResultNotFound
from .._job import Job as _Job
from .._models import JobInfo
from .._models import JobStatus as _Status
from .._queue import Queue
from .constants import default_queue_name
from .utils import ms_to_datetime, to_unix_ms

__all__ = [
    "DeserializationError",
    "Deserializer",
    "Job",
    "JobDef",
    "JobExecutionFailed",
    "JobResult",
    "JobStatus",
    "ResultNotFound",
    "SerializationError",
    "Serializer",
]

Serializer = Callable[[dict[str, Any]], bytes]
Deserializer = Callable[[bytes], dict[str, Any]]


class ResultNotFound(RuntimeError, _ResultNotFound):
    """arq's: the job is not queued and has no result (also asyncjobs's ResultNotFound)."""

    def __init__(self, message: str) -> None:
        RuntimeError.__init__(self, message)


class SerializationError(RuntimeError):
    pass


class DeserializationError(SerializationError):
    pass


class JobStatus(str, Enum):
    """arq's job statuses: every way a job can end is ``complete``."""

    #: in the queue, its time not yet reached
    deferred = "deferred"
    #: in the queue, its time reached
    queued = "queued"
    #: running
    in_progress = "in_progress"
    #: ended (succeeded, failed, aborted or expired); the result is available
    complete = "complete"
    #: not found in any way
    not_found = "not_found"


_STATUS = {
    _Status.QUEUED: JobStatus.queued,
    _Status.DEFERRED: JobStatus.deferred,
    _Status.IN_PROGRESS: JobStatus.in_progress,
    _Status.NOT_FOUND: JobStatus.not_found,
}


@dataclass
class JobDef:
    function: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    job_try: int | None
    enqueue_time: datetime
    score: int | None
    job_id: str | None

    def __post_init__(self) -> None:
        if isinstance(self.score, float):
            self.score = int(self.score)


@dataclass
class JobResult(JobDef):
    success: bool
    result: Any
    start_time: datetime
    finish_time: datetime
    queue_name: str


class ArqClient(Protocol):
    """What a Job needs of the ArqRedis that made it."""

    @property
    def queue(self) -> Queue: ...


class Job:
    """A handle on one job by id, as arq's: ``status()``, ``result()``, ``info()``, ``abort()``."""

    __slots__ = ("_deserializer", "_queue_name", "_redis", "job_id")

    def __init__(
        self,
        job_id: str,
        redis: ArqClient,
        _queue_name: str = default_queue_name,
        _deserializer: Deserializer | None = None,
    ) -> None:
        self.job_id = job_id
        self._redis = redis
        self._queue_name = _queue_name
        self._deserializer = _deserializer

    def __repr__(self) -> str:
        return f"<arq job {self.job_id}>"

    async def _handle(self) -> _Job[Any]:
        """Our handle on the job: in its queue, else in whichever known queue holds it (arq
        finds a result whatever queue the handle names)."""
        queue = self._redis.queue
        handle = queue.job(self.job_id, self._queue_name)
        if await handle.status() is not _Status.NOT_FOUND:
            return handle
        for name in await queue.store.queue_names(queue.prefix):
            if name != self._queue_name:
                other = queue.job(self.job_id, name)
                if await other.status() is not _Status.NOT_FOUND:
                    self._queue_name = name
                    return other
        return handle

    async def result(
        self,
        timeout: float | None = None,
        *,
        poll_delay: float = 0.5,
        pole_delay: float | None = None,
    ) -> Any:
        """Wait for the job's result (woken by Redis: ``poll_delay`` is not needed) or re-raise
        its error. ResultNotFound if the job is neither queued nor finished;
        ``asyncio.TimeoutError`` if ``timeout`` seconds pass first."""
        handle = await self._handle()
        try:
            return await handle.result(timeout)
        except TimeoutError:
            raise asyncio.TimeoutError() from None
        except JobFailed:
            raise failure(await handle.info(), self._queue_name) from None
        except JobCancelled as exc:
            raise failure(exc, self._queue_name) from None
        except _ResultNotFound:
            raise ResultNotFound(
                "Not waiting for job result because the job is not in queue. "
                "Is the worker function configured to keep result?"
            ) from None

    async def info(self) -> JobDef | None:
        """The job's definition, or its result once it has one; None if it is unknown."""
        info = await (await self._handle()).info()
        return None if info.status is _Status.NOT_FOUND else job_record(info)

    async def result_info(self) -> JobResult | None:
        """The job's result if it has one (its error as the result if it failed); no waiting."""
        record = await self.info()
        return record if isinstance(record, JobResult) else None

    async def status(self) -> JobStatus:
        return _STATUS.get(await (await self._handle()).status(), JobStatus.complete)

    async def abort(self, *, timeout: float | None = None, poll_delay: float = 0.5) -> bool:
        """Abort the job: a queued one never runs, a running one is cancelled. True if it ended
        aborted; False if it ended otherwise or is unknown."""
        handle = await self._handle()
        await handle.cancel()
        try:
            await self.result(timeout=timeout)
        except asyncio.CancelledError:
            return True
        except ResultNotFound:
            return False
        except Exception:
            return False
        return False


def _arq_try(info: JobInfo) -> tuple[dict[str, Any], int | None]:
    """The job's kwargs without the ``_job_try`` it was enqueued with, and that try."""
    kwargs = dict(info.kwargs)
    first = kwargs.pop(JOB_TRY_KEY, None)
    return kwargs, None if first is None else int(first)


def _score(info: JobInfo) -> int | None:
    """arq's score: when the job is (or was) due, in ms, while it is queued or running."""
    if info.status in (_Status.QUEUED, _Status.DEFERRED, _Status.IN_PROGRESS):
        when = info.scheduled_at or info.enqueued_at
        return None if when is None else to_unix_ms(when)
    return None


def job_record(info: JobInfo) -> JobDef:
    """A JobDef, or a JobResult once the job ended, from asyncjobs's JobInfo."""
    kwargs, first_try = _arq_try(info)
    enqueued = ms_to_datetime(to_unix_ms(info.enqueued_at)) if info.enqueued_at else None
    common = {
        "function": info.task,
        "args": tuple(info.args),
        "kwargs": kwargs,
        "enqueue_time": enqueued,
        "score": _score(info),
        "job_id": info.id,
    }
    if not info.status.is_terminal:
        return JobDef(job_try=first_try, **common)  # type: ignore[arg-type]
    started = info.started_at or info.finished_at or info.enqueued_at
    finished = info.finished_at or started
    succeeded = info.status is _Status.SUCCEEDED
    return JobResult(
        job_try=info.attempts + (first_try or 1) - 1,
        success=succeeded,
        result=info.result if succeeded else failure(info, info.queue),
        start_time=ms_to_datetime(to_unix_ms(started)) if started else None,  # type: ignore[arg-type]
        finish_time=ms_to_datetime(to_unix_ms(finished)) if finished else None,  # type: ignore[arg-type]
        queue_name=info.queue,
        **common,  # type: ignore[arg-type]
    )


def failure(source: JobFailed | JobCancelled | JobInfo, queue_name: str) -> BaseException:
    """The exception arq code sees for a job that did not succeed."""
    if isinstance(source, JobCancelled) or (
        isinstance(source, JobInfo) and source.status in (_Status.CANCELLED, _Status.EXPIRED)
    ):
        status = source.status if isinstance(source, JobCancelled) else source.status.value
        return (
            asyncio.CancelledError() if status == "cancelled" else JobExecutionFailed("job expired")
        )
    if isinstance(source, JobFailed):
        kind, message, tb = source.error_type, source.error_message, source.traceback
        attempts, task, job_id = source.attempts, "", source.job_id
    else:
        kind, message = source.error_type or "", source.error_message or ""
        tb, attempts, task, job_id = source.traceback or "", source.attempts, source.task, source.id
    rebuilt = _rebuilt(kind, message, tb, attempts, task)
    if rebuilt is None:
        rebuilt = JobFailed(job_id, kind, message, tb, attempts)
    elif tb and hasattr(rebuilt, "add_note"):
        rebuilt.add_note(f"Raised by the job {job_id} in queue {queue_name!r}:\n{tb.rstrip()}")
    return rebuilt


_ARQ_ERRORS: dict[str, Callable[[str, int, str], BaseException]] = {
    "JobTimeout": lambda message, attempts, task: asyncio.TimeoutError(),
    "Retry": lambda message, attempts, task: JobExecutionFailed(f"max {attempts} retries exceeded"),
    "WorkerLost": lambda message, attempts, task: JobExecutionFailed(
        f"max {attempts} retries exceeded"
    ),
    "PoisonPill": lambda message, attempts, task: JobExecutionFailed(
        f"max {attempts} retries exceeded"
    ),
    "UnknownTaskError": lambda message, attempts, task: JobExecutionFailed(
        f"function {task!r} not found"
    ),
    "PayloadError": lambda message, attempts, task: DeserializationError(
        "unable to deserialize job"
    ),
    "SerializationError": lambda message, attempts, task: SerializationError(
        "unable to serialize result"
    ),
    "JobExecutionFailed": lambda message, attempts, task: JobExecutionFailed(message),
}


def _rebuilt(kind: str, message: str, tb: str, attempts: int, task: str) -> BaseException | None:
    if kind in _ARQ_ERRORS:
        return _ARQ_ERRORS[kind](message, attempts, task)
    cls = _exception_class(kind, tb)
    if cls is None:
        return None
    try:
        return cls(message)
    except Exception:  # a constructor that wants other arguments
        return None


def _exception_class(kind: str, tb: str) -> type[BaseException] | None:
    """The exception class named ``kind``: a builtin, or the one the traceback's last line
    names (``pkg.module.Error: ...``) in a module this process has already imported."""
    found = getattr(builtins, kind, None)
    if isinstance(found, type) and issubclass(found, BaseException):
        return found
    pattern = re.compile(rf"^(?P<path>[\w.]*\b{re.escape(kind)})(: |$)")
    for line in reversed(tb.splitlines()):
        match = pattern.match(line)
        if match is None:
            continue
        parts = match.group("path").split(".")
        if len(parts) == 1:  # raised from a class of the __main__ module
            parts.insert(0, "__main__")
        for cut in range(len(parts) - 1, 0, -1):
            module = sys.modules.get(".".join(parts[:cut]))
            if module is None:
                continue
            obj: Any = module
            for name in parts[cut:]:
                obj = getattr(obj, name, None)
            if isinstance(obj, type) and issubclass(obj, BaseException):
                return obj
        return None
    return None
