"""Hard timeouts of the tries a worker runs: one loop timer per 10 ms of deadlines, not one per try.

A drain claims a hundred jobs at a time, all with the same timeout: a timer (and an
``asyncio.timeout`` scope) per try was a tenth of what the worker spent per job. Here the tries
whose deadlines fall in the same 10 ms share one timer, which cancels those still running when it
fires (at most 10 ms after their deadline) and marks them, so the runner tells a timeout from any
other cancellation.
"""

from __future__ import annotations

import asyncio
import math

from ._running import ClaimedJob

GRAIN = 0.01  # seconds: a try is cancelled at most this long after its deadline

TIMED_OUT = "timeout"  # ClaimedJob.stop_reason of a try its deadline cancelled


class Deadlines:
    """The running tries by the 10 ms slot their deadline falls in (loop time)."""

    def __init__(self) -> None:
        self._slots: dict[int, tuple[asyncio.TimerHandle, set[ClaimedJob]]] = {}

    def add(self, job: ClaimedJob, seconds: float) -> int | None:
        """Cancel ``job``'s try if it still runs ``seconds`` from now; returns the slot for
        ``remove`` (None: an infinite timeout, no timer)."""
        if not math.isfinite(seconds):
            return None
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + seconds) / GRAIN)
        entry = self._slots.get(slot)
        if entry is None:
            entry = (loop.call_at(slot * GRAIN, self._expire, slot), set())
            self._slots[slot] = entry
        entry[1].add(job)
        return slot

    def remove(self, slot: int | None, job: ClaimedJob) -> None:
        """The try's body ended: it can no longer time out."""
        if slot is None:
            return
        entry = self._slots.get(slot)
        if entry is None:
            return
        jobs = entry[1]
        jobs.discard(job)
        if not jobs:
            entry[0].cancel()
            del self._slots[slot]

    def _expire(self, slot: int) -> None:
        _, jobs = self._slots.pop(slot, (None, set()))
        for job in jobs:
            if job.running and job.stop_reason is None and job.task is not None:
                job.stop_reason = TIMED_OUT
                job.task.cancel()

    def __len__(self) -> int:
        return sum(len(jobs) for _, jobs in self._slots.values())
