"""Keeps this worker's leases alive, brings back other workers' expired ones, and beats the
heart that `asyncjobs info` and `asyncjobs health` count as a live worker (declaring its tasks'
limits with it, so that they hold while the worker lives)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from ._running import RunningJobs
from ._store import DeadLettered, QueueKeys, Store

log = logging.getLogger("asyncjobs.worker")

#: How many expired leases one recover call handles (it is called again next tick).
RECOVER_LIMIT = 1000


class LeaseKeeper:
    """Every lease_seconds/3: extend own leases, recover expired ones, beat the heart."""

    PART = "lease upkeep"

    def __init__(
        self,
        *,
        store: Store,
        queues: Sequence[QueueKeys],
        running: RunningJobs,
        worker_id: str,
        lease_seconds: float,
        default_max_tries: int,
        max_stalls: int,
        limits: Sequence[tuple[str, int, int, int]],
        on_dead_letter: Callable[[QueueKeys, DeadLettered], Awaitable[None]],
        about: str = "{}",
    ) -> None:
        self.store = store
        self.queues = list(queues)
        self.running = running
        self.worker_id = worker_id
        self.lease_ms = int(lease_seconds * 1000)
        self.interval = lease_seconds / 3
        self.default_max_tries = default_max_tries
        self.max_stalls = max_stalls
        self.limits = list(limits)
        self.on_dead_letter = on_dead_letter
        self.about = about  # what the heartbeat tells about this worker (JSON)
        self._lag_warned = False

    async def step(self) -> None:
        """One tick, then the wait until the next (a loop step for the supervisor)."""
        await self.tick()
        expected = time.monotonic() + self.interval
        await asyncio.sleep(self.interval)
        lag = time.monotonic() - expected
        if lag > self.interval and not self._lag_warned:
            # Something held the event loop (a task calling time.sleep or CPU-bound code):
            # while it is blocked, leases are not renewed and may run out.
            log.warning(
                "event loop was blocked for %.1fs; leases may have run out. "
                "Run blocking code with asyncio.to_thread()",
                lag,
            )
            self._lag_warned = True

    async def tick(self) -> None:
        for keys in self.queues:
            held = self.running.held(keys)
            if held:
                lost = await self.store.extend(keys, self.lease_ms, held)
                # Decided for the very tries extended: a try that ended meanwhile, or a newer
                # try of the same job claimed meanwhile, is not touched. A cancel whose message
                # has not arrived (or was missed) is still a cancel, not a lost lease.
                cancelled = [job_id for job_id, by_request in lost if by_request]
                for job_id in self.running.lose(held, cancelled, "cancelled"):
                    log.info("job %s: cancel requested", job_id)
                stopped = self.running.lose(
                    held, [job_id for job_id, by_request in lost if not by_request]
                )
                if stopped:
                    log.warning("lost the lease of job(s) %s; stopping them", ", ".join(stopped))
            recovery = await self.store.recover(
                keys,
                limit=RECOVER_LIMIT,
                default_max_tries=self.default_max_tries,
                max_stalls=self.max_stalls,
            )
            for dead in recovery.dead_lettered:
                await self.on_dead_letter(keys, dead)
            if recovery.recovered or recovery.dead_lettered:
                log.warning(
                    "queue %s: %d job(s) with expired leases put back, %d dead-lettered",
                    keys.name,
                    recovery.recovered,
                    len(recovery.dead_lettered),
                )
            await self.store.heartbeat(
                keys,
                self.worker_id,
                3 * self.lease_ms,
                len(self.running),
                self.about,
                self.limits,
            )

    async def leave(self) -> None:
        """Tell every queue this worker is gone (so it stops counting as alive at once)."""
        for keys in self.queues:
            await self.store.heartbeat(keys, self.worker_id, 0)
