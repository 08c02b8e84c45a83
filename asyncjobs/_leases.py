"""Keeps this worker's leases alive, brings back other workers' expired ones, and listens for
cancel requests; also the heartbeat that `asyncjobs info` counts as a live worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ._finisher import CONNECTION_ERRORS
from ._scripts import run_script

if TYPE_CHECKING:
    from ._worker import Worker

log = logging.getLogger("asyncjobs.worker")


class LeaseKeeper:
    """Every lease_seconds/3: extend own leases, recover expired ones, beat the heart."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.interval = worker.settings.lease_seconds / 3
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.tick()
        self._tasks = [
            asyncio.create_task(self._loop(), name="asyncjobs-leases"),
            asyncio.create_task(self._listen_for_cancels(), name="asyncjobs-cancels"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        with contextlib.suppress(*CONNECTION_ERRORS):
            await self._leave()

    async def _loop(self) -> None:
        lag_warned = False
        while True:
            expected = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            lag = time.monotonic() - expected
            if lag > self.interval and not lag_warned:
                # Something held the event loop (a task calling time.sleep or CPU-bound code):
                # while it is blocked, leases are not renewed and may run out.
                log.warning(
                    "event loop was blocked for %.1fs; leases may have run out. "
                    "Run blocking code with asyncio.to_thread()",
                    lag,
                )
                lag_warned = True
            try:
                await self.tick()
            except CONNECTION_ERRORS as exc:
                log.warning("lease upkeep could not reach Redis (%s); will retry", exc)

    async def tick(self) -> None:
        w = self.worker
        s = w.settings
        lease_ms = int(s.lease_seconds * 1000)
        for keys in w.keys:
            owned: list[Any] = []
            for job_id, (_, job) in list(w.running.items()):
                if job.keys is keys:
                    owned += (job_id, job.token)
            if owned:
                lost = await run_script(
                    w.client, "extend", [keys.leases], [keys.job_prefix, lease_ms, *owned]
                )
                # A job whose body ended may be acked between our read and this call; only
                # jobs still running have really lost their lease.
                ids = [i.decode() for i in lost]
                ids = [i for i in ids if i in w.running and w.running[i][1].running]
                if ids:
                    log.warning("lost the lease of job(s) %s; stopping them", ", ".join(ids))
                    w._cancel_running("lease_lost", ids)
            recovered, dead, _ = await run_script(
                w.client,
                "recover",
                [
                    keys.leases,
                    keys.ready,
                    keys.wake,
                    keys.seq,
                    keys.dead_letters,
                    keys.stats,
                    keys.limits,
                ],
                [
                    keys.job_prefix,
                    1000,
                    s.max_tries,
                    int(s.keep_result * 1000),
                    s.dead_letter_maxlen,
                    keys.events,
                    keys.group_prefix,
                    s.max_stalls,
                ],
            )
            if recovered or dead:
                log.warning(
                    "queue %s: %d job(s) with expired leases put back, %d dead-lettered",
                    keys.name,
                    recovered,
                    dead,
                )
            await run_script(w.client, "heartbeat", [keys.workers], [w.id, 3 * lease_ms])
            if w.metrics is not None:
                await w.metrics.refresh(w.client, keys)

    async def _leave(self) -> None:
        for keys in self.worker.keys:
            await run_script(self.worker.client, "heartbeat", [keys.workers], [self.worker.id, 0])

    async def _listen_for_cancels(self) -> None:
        w = self.worker
        channels = {k.cancel: k for k in w.keys}
        while True:
            pubsub = w.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(*channels)
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message and message.get("type") == "message":
                        job_id = message["data"].decode()
                        if job_id in w.running:
                            log.info("job %s: cancel requested", job_id)
                            w._cancel_running("cancelled", [job_id])
            except CONNECTION_ERRORS:
                await asyncio.sleep(0.5)  # the lease check still stops cancelled jobs meanwhile
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def warn_if_evicting(self) -> None:
        """Warn unless Redis refuses to evict: an evicting Redis deletes jobs and leases."""
        try:
            policy = (await self.worker.client.config_get("maxmemory-policy")).get(
                b"maxmemory-policy", b"noeviction"
            )
        except Exception:  # CONFIG may be disabled (managed Redis): nothing to check then
            return
        if policy not in (b"noeviction", "noeviction"):
            log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis will delete job "
                "records and leases. Set maxmemory-policy noeviction for a job queue.",
                policy.decode() if isinstance(policy, bytes) else policy,
            )
