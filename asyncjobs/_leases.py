"""Keeps this worker's leases alive, brings back other workers' expired ones, and listens for
cancel requests; also the heartbeat that `asyncjobs info` counts as a live worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from ._compat import cancel_and_wait
from ._connection import open_pubsub
from ._context import Context
from ._errors import WorkerLost
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
            with contextlib.suppress(Exception):
                await cancel_and_wait(task)
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
            recovered, dead, _, *dead_letters = await run_script(
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
                    keys.deferred,
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
                    keys.cancel,
                ],
            )
            for i in range(0, len(dead_letters), 4):
                job_id, task, error_type, message = (v.decode() for v in dead_letters[i : i + 4])
                error = WorkerLost(error_type, message)
                await w.hook("on_dead_letter", self._context(job_id, task), error)
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

    def _context(self, job_id: str, task: str) -> Context:
        """The context a dead-letter hook gets for a job no worker is running any more."""
        w = self.worker
        return Context(
            job_id=job_id,
            task_name=task,
            attempt=0,
            max_tries=0,
            enqueued_ms=0,
            queue=w.queue_client,
            state=w.state,
        )

    async def _leave(self) -> None:
        for keys in self.worker.keys:
            await run_script(self.worker.client, "heartbeat", [keys.workers], [self.worker.id, 0])

    async def _listen_for_cancels(self) -> None:
        w = self.worker
        channels = {k.cancel: k for k in w.keys}
        while True:
            pubsub = open_pubsub(w.client, ignore_subscribe_messages=True)
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
            reply = await self.worker.client.config_get("maxmemory-policy")
        except Exception:  # CONFIG may be disabled (managed Redis): nothing to check then
            return
        replies = [reply] if _is_config(reply) else list(reply.values())  # a cluster: per node
        for config in replies:
            policy = config.get(b"maxmemory-policy", config.get("maxmemory-policy", b"noeviction"))
            if policy in (b"noeviction", "noeviction"):
                continue
            log.warning(
                "Redis maxmemory-policy is %s: under memory pressure Redis will delete job "
                "records and leases. Set maxmemory-policy noeviction for a job queue.",
                policy.decode() if isinstance(policy, bytes) else policy,
            )
            return


def _is_config(reply: Any) -> bool:
    return any(k in (b"maxmemory-policy", "maxmemory-policy") for k in reply)
