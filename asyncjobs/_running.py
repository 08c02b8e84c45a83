"""The tries a worker is running: one table, one place that adds to it and one that removes."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ._store import ClaimedRecord, QueueKeys


@dataclass(slots=True, eq=False)
class ClaimedJob:
    """A try this worker holds a lease on, as the claim handed it out."""

    keys: QueueKeys
    id: str
    task_name: str
    payload: bytes
    attempt: int
    max_tries: int
    timeout_ms: int
    enqueued_ms: int
    token: str
    claimed_ms: int = 0  # Redis clock at the claim: queue wait = claimed_ms - enqueued_ms
    trace: bytes = b""  # the trace context stored at enqueue (b"" = none)
    checkpoint: bytes = b""  # the last checkpoint an earlier try saved (JSON; b"" = none)
    running: bool = True  # False once the task body ended and the outcome is being reported
    stop_reason: str | None = None  # why the worker cancelled it: cancelled / lease_lost / shutdown
    task: asyncio.Task[None] | None = None

    @classmethod
    def from_claim(
        cls, keys: QueueKeys, record: ClaimedRecord, worker: str, now_ms: int
    ) -> ClaimedJob:
        return cls(
            keys, record.id, record.task, record.payload, record.attempt, record.max_tries,
            record.timeout_ms, record.enqueued_ms, f"{worker}:{record.attempt}", now_ms,
            record.trace, record.checkpoint,
        )  # fmt: skip


#: The try the current asyncio task runs (set by the runner in the try's own task), so that
#: log records emitted while it runs can carry its job id, task, queue and attempt.
CURRENT_TRY: contextvars.ContextVar[ClaimedJob | None] = contextvars.ContextVar(
    "asyncjobs_current_try", default=None
)


class RunningJobs:
    """Every try this worker runs, by job id and lease token (a try of a job).

    A try enters when it is started and leaves when its asyncio task ends, whatever ended it
    (a cancel that lands before the task's first step included): the done-callback is the one
    place the table shrinks, so no slot can leak and a finished try never removes another.
    Keyed so, two tries of one job (an old one still reporting after its lease was lost,
    and the new one) are two entries, each renewed and counted on its own.
    """

    def __init__(self) -> None:
        self._tries: dict[tuple[str, str], ClaimedJob] = {}
        self.freed = asyncio.Event()  # set whenever a try leaves
        self.finished = 0

    def __len__(self) -> int:
        return len(self._tries)

    def __iter__(self) -> Iterator[ClaimedJob]:
        return iter(list(self._tries.values()))

    def has_job(self, job_id: str) -> bool:
        return any(job.id == job_id for job in self._tries.values())

    def start(
        self, job: ClaimedJob, run: Callable[[ClaimedJob], Coroutine[Any, Any, None]]
    ) -> None:
        """Run ``run(job)`` in a task of its own and track it until that task ends."""
        task = asyncio.create_task(run(job), name=f"asyncjobs-job-{job.id}")
        job.task = task
        self._tries[job.id, job.token] = job
        task.add_done_callback(lambda _: self._ended(job))

    def _ended(self, job: ClaimedJob) -> None:
        if self._tries.get((job.id, job.token)) is job:
            del self._tries[job.id, job.token]
        self.finished += 1
        self.freed.set()

    def held(self, keys: QueueKeys) -> list[tuple[str, str]]:
        """``(job id, token)`` of every try on this queue: their leases must be renewed until
        their outcome is reported, whether or not their body still runs."""
        return [(job.id, job.token) for job in self._tries.values() if job.keys == keys]

    def lose(
        self, held: Iterable[tuple[str, str]], lost_ids: Iterable[str], reason: str = "lease_lost"
    ) -> list[str]:
        """Stop the tries whose lease Redis says is lost. Only the very tries that were
        extended count (matched by token): a newer try of the same job keeps running."""
        lost = set(lost_ids)
        stopped = []
        for job_id, token in held:
            job = self._tries.get((job_id, token))
            if job_id in lost and job is not None and self._stop(job, reason):
                stopped.append(job_id)
        return stopped

    def cancel(self, reason: str, job_id: str | None = None) -> int:
        """Cancel the running tries (of one job, or all); returns how many were cancelled."""
        return sum(
            self._stop(job, reason)
            for job in list(self._tries.values())
            if job_id is None or job.id == job_id
        )

    @staticmethod
    def _stop(job: ClaimedJob, reason: str) -> bool:
        if not job.running or job.stop_reason is not None or job.task is None:
            return False
        job.stop_reason = reason
        job.task.cancel()
        return True

    def tasks(self) -> list[asyncio.Task[None]]:
        return [job.task for job in self._tries.values() if job.task is not None]
