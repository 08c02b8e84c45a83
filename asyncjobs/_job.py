"""Job: a handle on one job by (queue, id): status, result, info, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Generic, Protocol, TypeVar

from . import _serde
from ._errors import JobCancelled, JobFailed, RedisUnavailable, ResultNotFound
from ._models import TERMINAL, JobInfo, JobStatus, job_info_from_fields
from ._store import CancelOutcome, QueueKeys, Store
from ._task import Task
from ._waiters import Waiters

R = TypeVar("R")
T = TypeVar("T")


class JobSource(Protocol):
    """What a Job needs of the Queue that made it (the Queue is one)."""

    @property
    def store(self) -> Store: ...
    @property
    def waiters(self) -> Waiters: ...
    def keys_for(self, queue_name: str) -> QueueKeys: ...
    async def locate(self, job_id: str, queue_name: str) -> str: ...


_RESULT_FIELDS = ("status", "result", "error_type", "error_message", "traceback", "attempts")


class Job(Generic[R]):
    """A handle on a job; cheap to create, holds no state but the id and queue name.

    ``queue_name`` is the queue's partition that holds the job once known (a handle made by
    ``queue.job(id)`` on a partitioned queue finds it on first use)."""

    __slots__ = ("_located", "_queue", "_task", "duplicate", "id", "queue_name")

    def __init__(
        self,
        queue: JobSource,
        job_id: str,
        queue_name: str,
        *,
        duplicate: bool = False,
        task: Task[Any, R] | None = None,
        located: bool = False,
    ) -> None:
        self._queue = queue
        self._task = task
        self.id = job_id
        self.queue_name = queue_name
        self.duplicate = duplicate
        self._located = located  # True when made by enqueue: the partition is known

    def __repr__(self) -> str:
        dup = " duplicate" if self.duplicate else ""
        return f"<Job {self.id} queue={self.queue_name}{dup}>"

    async def status(self) -> JobStatus:
        [raw] = await self._queue.store.job_values(await self._keys(), self.id, ("status",))
        return JobStatus(raw.decode()) if raw else JobStatus.NOT_FOUND

    async def info(self) -> JobInfo:
        fields = await self._queue.store.job_fields(await self._keys(), self.id)
        if not fields:
            return JobInfo(id=self.id, queue=self.queue_name, task="", status=JobStatus.NOT_FOUND)
        return job_info_from_fields(self.id, self.queue_name, fields)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the job to end (woken by Redis, no polling) and return its result.

        Raises JobFailed if it failed, JobCancelled if it was cancelled or expired,
        ResultNotFound if it does not exist, TimeoutError if ``timeout`` seconds pass first.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        store, keys = self._queue.store, await self._keys()
        async with self._queue.waiters.listen(keys.events, self.id) as changed:
            while True:
                changed.clear()
                values = await self._read_through_outages(
                    store.job_values(keys, self.id, _RESULT_FIELDS), deadline
                )
                if values is not None:  # None: Redis is away; we are woken when it is back
                    status = JobStatus(values[0].decode()) if values[0] else JobStatus.NOT_FOUND
                    if status in TERMINAL:
                        return self._outcome(status, values)
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"job {self.id} did not finish within {timeout} s")
                try:
                    await asyncio.wait_for(changed.wait(), remaining)
                except asyncio.TimeoutError:
                    raise TimeoutError(f"job {self.id} did not finish within {timeout} s") from None

    @staticmethod
    async def _read_through_outages(read: Awaitable[T], deadline: float | None) -> T | None:
        """``read``, or None if Redis is unavailable now and the deadline has not passed
        (the waiter then waits to be woken, as after any other change)."""
        try:
            return await read
        except RedisUnavailable:
            if deadline is not None and asyncio.get_running_loop().time() >= deadline:
                raise
            return None

    async def watch(self) -> AsyncIterator[JobInfo]:
        """Yield the job's info now and after each change (start, progress, retry, end), until
        it ends; woken by Redis. Changes that come faster than you read coalesce: you always
        see the latest state, in order, never an older one after a newer one."""
        seen: tuple[Any, ...] | None = None
        keys = await self._keys()
        async with self._queue.waiters.listen(keys.events, self.id) as changed:
            while True:
                changed.clear()
                info = await self.info()
                state = (info.status, info.attempts, info.progress, info.stage, info.message)
                if state != seen:
                    seen = state
                    yield info
                if info.status in TERMINAL:
                    return
                await changed.wait()

    def _outcome(self, status: JobStatus, values: list[Any]) -> R:
        if status is JobStatus.SUCCEEDED:
            value = _serde.loads(values[1])
            return self._task.validate_result(value) if self._task is not None else value  # type: ignore[no-any-return]
        if status is JobStatus.FAILED:
            raise JobFailed(
                self.id,
                (values[2] or b"").decode(),
                (values[3] or b"").decode(),
                (values[4] or b"").decode(),
                int(values[5] or 0),
            )
        if status is JobStatus.NOT_FOUND:
            raise ResultNotFound(self.id)
        raise JobCancelled(self.id, status.value)

    async def cancel(self) -> bool:
        """Cancel the job: a waiting job never runs, a running one is stopped. False if it
        ended otherwise (or does not exist); True if it is cancelled, now or before."""
        outcome = await self._queue.store.cancel(await self._keys(), self.id)
        return outcome in (
            CancelOutcome.CANCELLED_WAITING,
            CancelOutcome.CANCELLED_RUNNING,
            CancelOutcome.ALREADY_CANCELLED,
        )

    async def _keys(self) -> QueueKeys:
        if not self._located:
            self.queue_name = await self._queue.locate(self.id, self.queue_name)
            self._located = True
        return self._queue.keys_for(self.queue_name)
