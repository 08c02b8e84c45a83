"""Worker: claims jobs when Redis says there are some, runs them, keeps their leases alive."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from ._compat import cancel_and_wait, timeout
from ._connection import (
    check_reachable,
    close_client,
    create_client,
    is_cluster,
    redact,
    wire_of,
)
from ._cron import CronScheduler
from ._finisher import CONNECTION_ERRORS, Finisher
from ._keys import QueueKeys, queues_registry_key
from ._leases import LeaseKeeper
from ._queue import Queue
from ._runner import ClaimedJob, run_job
from ._scripts import evalsha_command, preload_scripts, run_script
from ._settings import WorkerSettings
from ._task import Task
from ._wire import Wire, wire_for

log = logging.getLogger("asyncjobs.worker")

#: Upper bound on one blocking wait; a wait normally ends earlier, when Redis wakes it.
MAX_BLOCK_SECONDS = 30.0


class Worker:
    """Runs the jobs of ``settings.queues``, at most ``settings.concurrency`` at a time.

    Queues are served in the order listed (strict priority): each claim fills free slots from
    the first queue before the next. ``_priority`` orders jobs inside a queue.
    """

    def __init__(self, settings: WorkerSettings | Any, **overrides: Any) -> None:
        base = WorkerSettings.coerce(settings)
        if overrides:
            base = WorkerSettings.coerce({**dict(base), **overrides})
        self.settings = base
        self.registry: dict[str, Task[Any, Any]] = {t.name: t for t in self.settings.functions}
        for cron_job in self.settings.cron_jobs:
            self.registry.setdefault(cron_job.task.name, cron_job.task)
        self.id = (
            self.settings.name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        )
        self.keys = [QueueKeys(q, self.settings.prefix) for q in self.settings.queues]
        self.state: dict[str, Any] = {}
        self.running: dict[str, tuple[asyncio.Task[None], ClaimedJob]] = {}
        self.client: Any = None
        self._blocker: Wire | None = None  # a connection of its own for the blocking wait
        self.queue_client: Queue = None  # type: ignore[assignment]
        self.finisher: Finisher = None  # type: ignore[assignment]
        self.jobs_done = 0
        self.metrics: Any = None
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pokes: set[asyncio.Task[Any]] = set()
        self._suspect: str | None = None  # the one suspect this worker carries (recover.lua)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, burst: bool = False, *, handle_signals: bool = True) -> None:
        """Serve until SIGINT/SIGTERM (or ``stop()``); with ``burst`` until nothing is left."""
        s = self.settings
        self.client = create_client(s.redis_url, max_connections=None)
        self._blocker = wire_for(self.client) if wire_of(self.client) is not None else None
        self.queue_client = Queue(
            s.redis_url,
            name=s.queues[0],
            prefix=s.prefix,
            keep_result=s.keep_result,
            client=self.client,
        )
        self.finisher = Finisher(self.client, int(s.keep_result * 1000), s.dead_letter_maxlen)
        self.state["queue"] = self.queue_client
        self.state["worker_id"] = self.id
        installed = self._install_signals() if handle_signals else []
        keeper = LeaseKeeper(self)
        scheduler = CronScheduler(self)
        started = stopped_cleanly = False
        claimer: asyncio.Task[None] | None = None
        try:
            await check_reachable(self.client, s.redis_url)
            await preload_scripts(self.client)
            await self.client.sadd(queues_registry_key(s.prefix), *s.queues)
            await self._publish_limits()
            if s.metrics_port is not None:
                from .metrics import WorkerMetrics

                self.metrics = WorkerMetrics()
                self.metrics.serve(s.metrics_port, s.metrics_host)
            await keeper.warn_if_evicting()
            if s.on_startup is not None:
                await s.on_startup(self.state)
            started = True
            log.info(
                "worker %s serving %s on %s: %d task(s), concurrency %d%s",
                self.id,
                ",".join(s.queues),
                redact(s.redis_url),
                len(self.registry),
                s.concurrency,
                " (burst)" if burst else "",
            )
            self.finisher.start()
            await keeper.start()
            await scheduler.start()
            claimer = asyncio.create_task(self._claim_loop(burst), name="asyncjobs-claim")
            stop = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({claimer, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            await cancel_and_wait(claimer)
            await scheduler.stop()
            await self._drain()
            await self.finisher.stop()
            await keeper.stop()
            stopped_cleanly = True
        finally:
            if not stopped_cleanly:  # cancelled, or failed part-way
                await self._stop_at_once(claimer)
            for sig in installed:
                asyncio.get_running_loop().remove_signal_handler(sig)
            await scheduler.stop()
            await keeper.stop()
            try:
                if started and s.on_shutdown is not None:
                    await s.on_shutdown(self.state)
            finally:
                await self.queue_client.waiters.aclose()
                if self._blocker is not None:
                    self._blocker.close()
                await close_client(self.client)
            self._stopping.clear()  # a stop() before run() counts; after it, run() may start again
            log.info("worker %s stopped after %d job(s)", self.id, self.jobs_done)

    async def _publish_limits(self) -> None:
        """Tell the claim script each task's concurrency and rate limits (absent = none)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for keys in self.keys:
                for task in self.registry.values():
                    for field, value in (
                        ("concurrency", task.max_concurrency or 0),
                        ("interval_ms", task.rate_interval_ms),
                        ("max_tries", task.max_tries or 0),
                    ):
                        if value:
                            pipe.hset(keys.limits, f"{task.name}:{field}", value)
                        else:
                            pipe.hdel(keys.limits, f"{task.name}:{field}")
            await pipe.execute()

    def stop(self) -> None:
        """Ask the worker to stop claiming and shut down gracefully."""
        self._stopping.set()

    def _install_signals(self) -> list[int]:
        loop = asyncio.get_running_loop()
        installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or a loop without signal support
        return installed

    def _on_signal(self, sig: int) -> None:
        if self._stopping.is_set():
            log.warning("second %s: cancelling running jobs now", signal.Signals(sig).name)
            self._cancel_running("shutdown")
            return
        log.info(
            "%s received: finishing %d running job(s), grace %.0fs",
            signal.Signals(sig).name,
            len(self.running),
            self.settings.shutdown_grace,
        )
        self.stop()

    async def _drain(self) -> None:
        """Let running jobs finish within the grace period; requeue what is left."""
        if not self.running:
            return
        tasks = [t for t, _ in self.running.values()]
        _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        if pending:
            self._cancel_running("shutdown")
            await asyncio.wait(pending)

    async def _stop_at_once(self, claimer: asyncio.Task[None] | None) -> None:
        """run() was cancelled (or failed): stop claiming, cancel the running jobs (each is
        requeued, its try given back) and report what finished, within the grace period. A
        report that cannot land by then is left to lease expiry, as after a crash."""
        self._stopping.set()
        if claimer is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(claimer)
        self._cancel_running("shutdown")
        tasks = [t for t, _ in self.running.values()]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
            for task in late:
                with contextlib.suppress(Exception):
                    await cancel_and_wait(task)
        await self.finisher.stop(grace=self.settings.shutdown_grace)

    def _cancel_running(self, reason: str, job_ids: Any = None) -> None:
        for job_id in list(job_ids if job_ids is not None else self.running):
            entry = self.running.get(job_id)
            if entry is not None and entry[1].running and entry[1].stop_reason is None:
                entry[1].stop_reason = reason
                entry[0].cancel()

    async def hook(self, name: str, *args: Any) -> None:
        fn = getattr(self.settings, name, None)
        if fn is None:
            return
        try:
            await fn(*args)
        except Exception:
            log.exception("%s hook failed", name)

    # -- claiming ----------------------------------------------------------------------------

    async def _claim_loop(self, burst: bool) -> None:
        backoff = 0.05
        lost = False
        while True:
            try:
                await self._claim_round(burst)
                return
            except ResponseError as exc:  # a script failed: keep serving, say so loudly
                log.error("claim failed (%s); retrying in %.2fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except CONNECTION_ERRORS as exc:
                if not lost:
                    log.error(
                        "lost Redis at %s (%s); reconnecting with backoff",
                        redact(self.settings.redis_url),
                        exc,
                    )
                    lost = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                with contextlib.suppress(*CONNECTION_ERRORS):
                    await self.client.ping()
                    log.info("reconnected to Redis")
                    lost, backoff = False, 0.05

    async def _claim_round(self, burst: bool) -> None:
        s = self.settings
        wake_keys = [k.wake for k in self.keys]
        prefetched: Any = None  # the first queue's claim, already run behind the wake-up
        while True:
            if self._stopping.is_set() and prefetched is None:
                # run() cancels us on stop, but on Python < 3.12 a cancellation that lands as
                # an awaited reply arrives can be swallowed (wait_for). cancel_and_wait would
                # cancel again; this makes sure no job is claimed after the stop meanwhile.
                return
            free = s.concurrency - len(self.running)
            if free <= 0:
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            next_due_ms, due_key, suspects_left = -1, wake_keys[0], False
            for keys in self.keys:
                if prefetched is not None:  # asked for no more than `free` slots: still fits
                    reply, prefetched = prefetched, None
                else:
                    reply = await run_script(self.client, "claim", *self._claim_call(keys, free))
                claimed, due_ms, waiting = self._start_claimed(keys, reply)
                free -= claimed
                suspects_left = suspects_left or waiting
                if due_ms >= 0 and (next_due_ms < 0 or due_ms < next_due_ms):
                    next_due_ms, due_key = due_ms, keys.wake
                if free <= 0:
                    break
            if free <= 0:
                continue  # every slot filled: more work may be waiting
            # Fewer than asked for: every ready set is empty now, or holds only suspects.
            if suspects_left and self._suspect in self.running:
                # We carry one suspect already; the next can come when it is done (checking
                # for new work every second meanwhile).
                self._slot_freed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    async with timeout(1.0):  # not wait_for: it can swallow our cancellation
                        await self._slot_freed.wait()
                continue
            if burst:
                if not self.running:
                    return
                self._slot_freed.clear()
                await self._slot_freed.wait()
                continue
            if self._stopping.is_set():
                return  # (see the top of the loop)
            # Let the jobs just claimed start first (the wake flag waits for us in Redis).
            await asyncio.sleep(0)
            prefetched = await self._block_until_woken(wake_keys, next_due_ms, due_key, free)

    async def _block_until_woken(
        self, wake_keys: list[str], next_due_ms: int, due_key: str, free: int
    ) -> Any:
        """Block on the wake keys until an enqueue (or retry, or recovery) writes one.

        With a Wire, the first queue's claim (for ``free`` slots) is pipelined behind the
        blocking command and its reply returned: waking up and claiming cost one round trip.
        Otherwise returns None and the caller claims.

        Redis checks blocking timeouts only ``hz`` times a second (100 ms by default), so for a
        deferred job's due time we set our own timer and write the wake key ourselves when it
        fires: the job starts within a millisecond or so of its due time, not up to 100 ms late.
        """
        timer = None
        if next_due_ms >= 0:
            timer = asyncio.get_running_loop().call_later(next_due_ms / 1000, self._poke, due_key)
        try:
            if self._blocker is not None:
                claim = evalsha_command("claim", *self._claim_call(self.keys[0], free))
                try:
                    return await self._blocker.block_then(
                        ("BZPOPMIN", *wake_keys, MAX_BLOCK_SECONDS), claim
                    )
                except NoScriptError:  # Redis restarted empty: claim the usual way (loads it)
                    return None
            if len(wake_keys) > 1 and is_cluster(self.client):
                await self._block_on_cluster(wake_keys)
            else:
                await self.client.bzpopmin(wake_keys, timeout=MAX_BLOCK_SECONDS)
            return None
        finally:
            if timer is not None:
                timer.cancel()

    async def _block_on_cluster(self, wake_keys: list[str]) -> None:
        """Queues live in different slots: one blocking call each; the first to wake releases
        the others by writing their wake keys (a BZPOPMIN over several slots is refused)."""
        waits = [
            asyncio.create_task(self.client.bzpopmin([key], timeout=MAX_BLOCK_SECONDS))
            for key in wake_keys
        ]
        try:
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for key, wait in zip(wake_keys, waits, strict=True):
                if wait in pending:
                    await self.client.zadd(key, {"w": 0})
            await asyncio.gather(*waits, return_exceptions=True)
            for wait in done:
                wait.result()  # re-raise a connection error for the claim loop's backoff
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def _poke(self, wake_key: str) -> None:
        task = asyncio.create_task(self.client.zadd(wake_key, {"w": 0}))
        self._pokes.add(task)
        task.add_done_callback(self._pokes.discard)

    def _claim_call(self, keys: QueueKeys, free: int) -> tuple[list[str], list[Any]]:
        """The claim script's keys and arguments for up to ``free`` jobs of one queue."""
        s = self.settings
        return (
            [
                keys.ready,
                keys.deferred,
                keys.leases,
                keys.wake,
                keys.seq,
                keys.stats,
                keys.limits,
                keys.dead_letters,
            ],
            [
                keys.job_prefix,
                self.id,
                free,
                int(s.lease_seconds * 1000),
                int(s.keep_result * 1000),
                keys.events,
                keys.group_prefix,
                keys.rate_prefix,
                keys.cancel,
                s.dead_letter_maxlen,
                int(self._suspect not in self.running),
                keys.rate_started_prefix,
            ],
        )

    def _start_claimed(self, keys: QueueKeys, reply: list[Any]) -> tuple[int, int, bool]:
        """Start a task per job in a claim reply; returns (claimed, next due ms, suspects left)."""
        next_due_ms, now_ms, suspects_left = int(reply[0]), int(reply[1]), bool(reply[2])
        if reply[3]:
            self._suspect = reply[3].decode()
            log.warning("job %s: its last worker died; this worker runs it", self._suspect)
        count = (len(reply) - 4) // 7
        for i in range(4, len(reply), 7):
            job_id = reply[i].decode()
            attempt = int(reply[i + 3])
            job = ClaimedJob(
                keys=keys,
                id=job_id,
                task_name=reply[i + 1].decode(),
                payload=reply[i + 2],
                attempt=attempt,
                max_tries=int(reply[i + 4]),
                timeout_ms=int(reply[i + 5]),
                enqueued_ms=int(reply[i + 6]),
                token=f"{self.id}:{attempt}",
                claimed_ms=now_ms,
            )
            task = asyncio.create_task(self._run(job), name=f"asyncjobs-job-{job_id}")
            self.running[job_id] = (task, job)
        return count, next_due_ms, suspects_left

    async def _run(self, job: ClaimedJob) -> None:
        try:
            await run_job(self, job)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug of ours or a hook: the lease will bring the job back
            log.exception("job %s: unexpected error while finishing it", job.id)
        finally:
            # Only our own entry: after a lost lease this worker may hold the job's next try
            # under the same id (reclaimed while this one still reported), and that try's
            # lease must go on being renewed.
            if self.running.get(job.id, (None, None))[1] is job:
                del self.running[job.id]
            self.jobs_done += 1
            self._slot_freed.set()
