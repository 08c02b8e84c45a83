"""The claim loop: claim when Redis says there is work, block on the wake keys when there is
none, never poll. Queues are served in the order listed (strict priority); the partitions of a
partitioned queue take turns being first, so none starves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from ._compat import timeout
from ._running import ClaimedJob, RunningJobs
from ._store import Claim, QueueKeys, Store, logical_name

log = logging.getLogger("asyncjobs.worker")

#: Upper bound on one blocking wait; a wait normally ends earlier, when Redis wakes it.
MAX_BLOCK_SECONDS = 30.0


class Claimer:
    """Fills this worker's free slots from its queues, one ``step`` at a time."""

    PART = "claims"

    def __init__(
        self,
        *,
        store: Store,
        queues: Sequence[QueueKeys],
        running: RunningJobs,
        worker_id: str,
        concurrency: int,
        lease_seconds: float,
        start: Callable[[ClaimedJob], None],
        stopping: asyncio.Event,
        burst: bool,
        burst_max_jobs: int | None = None,
        burst_waits_for_deferred: bool = False,
    ) -> None:
        self.store = store
        self.queues: list[QueueKeys] = []
        # first, the one the store writes when this worker stops (Store.leave): the wait
        # returns, and takes that key rather than a queue's wake flag, left for the others
        self.wake_keys: list[str] = [queues[0].own_wake(worker_id)]
        self._groups: list[list[QueueKeys]] = []  # the queues, each with its partitions
        self._turn = 0  # which partition of each queue is claimed from first this step
        self.worker_id = worker_id
        self.add_queues(queues)
        self.running = running
        self.concurrency = concurrency
        self.lease_ms = int(lease_seconds * 1000)
        self.start = start
        self.stopping = stopping
        self.burst = burst
        #: In burst mode: how many more jobs this worker may start (None: no limit).
        self.budget = burst_max_jobs if burst else None
        self.burst_waits_for_deferred = burst_waits_for_deferred
        self._suspect: ClaimedJob | None = None  # the one suspect this worker carries
        #: the claim of the queue first in turn, run behind a wake-up
        self._prefetched: tuple[QueueKeys, Claim] | None = None
        self._wait_next: tuple[int, QueueKeys, int] | None = None  # the wait the next step does
        self._pokes: set[asyncio.Task[Any]] = set()

    def add_queues(self, queues: Sequence[QueueKeys]) -> None:
        """Serve more queues (new partitions of a queue join its turn); the next wait blocks
        on their wake keys too."""
        for keys in queues:
            if keys in self.queues:
                continue
            self.queues.append(keys)
            self.wake_keys.append(keys.wake)
            group = logical_name(keys.name)
            for members in self._groups:
                if logical_name(members[0].name) == group:
                    members.append(keys)
                    break
            else:
                self._groups.append([keys])

    def _order(self) -> list[QueueKeys]:
        """This step's claim order: the queues as listed, each queue's partitions rotated."""
        turn = self._turn
        return [k for g in self._groups for k in (g[turn % len(g) :] + g[: turn % len(g)])]

    def _carries_suspect(self) -> bool:
        job = self._suspect
        return job is not None and job.task is not None and not job.task.done()

    async def step(self) -> bool:
        """Claim what fits, or wait for a slot or for work; True once the loop is done."""
        if self._wait_next is not None and not self.stopping.is_set():
            return await self._wait()
        if self.stopping.is_set() and self._prefetched is None:
            # The worker stops: it marked itself as leaving (Store.leave) and woke our wait, so
            # we end here, or after starting what the claim behind that wait still brought.
            return True
        free = self.concurrency - len(self.running)
        if self.budget is not None:
            if self.budget <= 0:
                return await self._until_running_done()
            free = min(free, self.budget)
        if free <= 0:
            self.running.freed.clear()
            await self.running.freed.wait()
            return False
        next_due_ms, due_queue, suspects_left = -1, self.queues[0], False
        finished_before = self.running.finished
        order = self._order()
        self._turn += 1
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None:
            order = [prefetched[0]] + [k for k in order if k != prefetched[0]]
            if self.stopping.is_set():
                order = order[:1]  # start what it brought; claim nothing more
        for keys in order:
            if prefetched is not None:  # asked for no more than `free` slots: still fits
                claim, prefetched = prefetched[1], None
            else:
                claim = await self.store.claim(
                    keys, self.worker_id, free, self.lease_ms, not self._carries_suspect()
                )
            started = self._start_claimed(keys, claim)
            free -= started
            if self.budget is not None:
                self.budget -= started
            suspects_left = suspects_left or claim.suspects_waiting
            if claim.next_due_ms >= 0 and (next_due_ms < 0 or claim.next_due_ms < next_due_ms):
                next_due_ms, due_queue = claim.next_due_ms, keys
            if free <= 0:
                return False  # every slot filled: more work may be waiting
        # Fewer than asked for: every ready set is empty now, or holds only suspects.
        if suspects_left and self._carries_suspect():
            # We carry one suspect already; the next can come when it is done (checking for
            # new work every second meanwhile).
            self.running.freed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                async with timeout(1.0):  # not wait_for: it can swallow our cancellation
                    await self.running.freed.wait()
            return False
        if self.burst and not (self.burst_waits_for_deferred and next_due_ms >= 0):
            if self.running.finished != finished_before:
                # A job ended while the claims were in flight: Redis may have run a claim while
                # that job still held its concurrency slot (the ack on another connection came
                # back first), and the slot it gave back readied a job the claim could not see.
                return False
            return await self._until_running_done()
        if self.stopping.is_set():
            return True  # (see the top)
        # The wait is a step of its own: the claims above went through, so an outage that
        # just ended is over (and said so) now, not when the wait returns, up to 30 s later.
        self._wait_next = (next_due_ms, due_queue, free)
        return False

    async def _wait(self) -> bool:
        next_due_ms, due_queue, free = self._wait_next or (-1, self.queues[0], 1)
        self._wait_next = None
        # Let the jobs just claimed start first (the wake flag waits for us in Redis).
        await asyncio.sleep(0)
        self._prefetched = await self._block_until_woken(next_due_ms, due_queue, free)
        return False

    async def _until_running_done(self) -> bool:
        """A burst with nothing left to claim: done once no job runs (a retry may come back)."""
        if not len(self.running):
            return True
        self.running.freed.clear()
        await self.running.freed.wait()
        return False

    def _start_claimed(self, keys: QueueKeys, claim: Claim) -> int:
        for record in claim.jobs:
            job = ClaimedJob.from_claim(keys, record, self.worker_id, claim.now_ms)
            if record.id == claim.suspect:
                self._suspect = job
                log.warning("job %s: its last worker died; this worker runs it", job.id)
            self.start(job)
        return len(claim.jobs)

    async def _block_until_woken(
        self, next_due_ms: int, due_queue: QueueKeys, free: int
    ) -> tuple[QueueKeys, Claim] | None:
        """Block on the wake keys until an enqueue (or retry, or recovery) writes one; with a
        Wire the claim of the queue first in turn comes back with the wake-up (see
        Store.wait_then_claim).

        Redis checks blocking timeouts only ``hz`` times a second (100 ms by default), so for a
        deferred job's due time we set our own timer and write the wake key ourselves when it
        fires: the job starts within a millisecond or so of its due time, not up to 100 ms late.
        """
        timer = None
        if next_due_ms >= 0:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(next_due_ms / 1000, self._poke, due_queue)
        first = self._order()[0]
        try:
            claim = self.store.claim_command(
                first, self.worker_id, free, self.lease_ms, not self._carries_suspect()
            )
            wake_keys = list(self.wake_keys)  # add_queues may grow the list meanwhile
            got = await self.store.wait_then_claim(wake_keys, MAX_BLOCK_SECONDS, claim)
            return None if got is None else (first, got)
        finally:
            if timer is not None:
                timer.cancel()

    def _poke(self, keys: QueueKeys) -> None:
        task = asyncio.create_task(self.store.wake(keys))
        self._pokes.add(task)
        task.add_done_callback(_forget_poke(self._pokes))


def _forget_poke(pokes: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def forget(task: asyncio.Task[Any]) -> None:
        pokes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A lost poke only means Redis's own timeout wakes the claim (up to 100 ms late).
            log.debug("could not wake the claim loop early: %s", task.exception())

    return forget
