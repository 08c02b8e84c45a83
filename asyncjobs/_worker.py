"""Worker: claims jobs when Redis says there are some, runs them, keeps their leases alive.

``Worker.run`` is the one place that starts and stops the worker's parts: the claim loop, the
ack flusher, the lease keeper, the cancel listener, cron and metrics, each a supervised loop
(see _supervise) that survives every fault or, failing for good, stops the worker loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from . import _defaults
from ._cancels import CancelListener
from ._claimer import Claimer
from ._compat import cancel_and_wait, timeout
from ._context import Context, WorkerState
from ._cron_scheduler import CronScheduler
from ._errors import ConfigurationError, WorkerFailed, WorkerLost
from ._finisher import Finisher
from ._leases import LeaseKeeper
from ._options import JobDefaults
from ._partitions import PartitionWatch
from ._presence import describe, package_version
from ._queue import Queue
from ._runner import Hooks, Runner
from ._running import ClaimedJob, RunningJobs
from ._settings import WorkerSettings
from ._stats import sum_counts
from ._store import Connection, DeadLettered, QueueCounts, QueueKeys, Store, logical_name
from ._supervise import OutageLog, Supervisor
from ._task import Task
from ._tracing import for_worker, suppressed, suppressed_context

log = logging.getLogger("asyncjobs.worker")

#: How long a stop waits for the claim loop to end by itself (one Redis round trip, normally).
STOP_CLAIMS_SECONDS = 5.0


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
            if cron_job.by_name_only and cron_job.task.name not in self.registry:
                raise ConfigurationError(
                    f"cron {cron_job.name!r} names task {cron_job.task.name!r}, which is not in "
                    "WorkerSettings.functions: add it there (or give cron() the task itself)"
                )
            task = self.registry.setdefault(cron_job.task.name, cron_job.task)
            try:
                task.check_arguments(cron_job.args, cron_job.kwargs)
            except TypeError as exc:
                raise ConfigurationError(f"cron {cron_job.name!r}: {exc}") from None
        self.id = (
            self.settings.name or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        )
        self.keys = [QueueKeys(q, self.settings.prefix) for q in self.settings.queues]
        #: The worker-wide state: what on_startup puts here, every job's ctx starts from.
        self.state = WorkerState.of(self.settings.state, self._arq_client)
        self._arq_redis: Any = None
        self.running = RunningJobs()
        self.metrics: Any = None
        self.outages = OutageLog(log)
        self._stopping = asyncio.Event()

    @property
    def jobs_done(self) -> int:
        return self.running.finished

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, burst: bool = False, *, handle_signals: bool = True) -> None:
        """Serve until SIGINT/SIGTERM (or ``stop()``); with ``burst`` until nothing is left.

        Raises WorkerFailed if a part of the worker kept failing (the process should exit
        non-zero; its running jobs come back through their leases).
        """
        s = self.settings
        burst = burst or s.burst
        connection = Connection(s.redis_url)
        store = Store(
            connection,
            keep_result_ms=int(s.keep_result * 1000),
            dead_letter_cap=s.dead_letter_maxlen,
        )
        watch = PartitionWatch(store, s.queues, s.prefix)
        queue = Queue(
            store=store,
            name=s.queues[0],
            prefix=s.prefix,
            max_payload_bytes=s.max_payload_bytes,
            tracing=s.tracing,
            tracer_provider=s.tracer_provider,
        )
        self.state["queue"] = queue
        self.state.pop("redis", None)  # arq's client on this run's pool, made at its first read
        self._arq_redis = None
        if "asyncjobs.arq" in sys.modules:  # arq code: ctx lists "redis" from the start, as arq's
            self.state["redis"] = self._arq_client()  # (free: that import was its cost)
        self.state["worker_id"] = self.id
        supervisor = Supervisor(log, self.outages, give_up_after=s.give_up_after)
        finisher = Finisher(store, supervisor)
        hooks = Hooks(s)
        parts: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
        background: list[asyncio.Task[None]] = []
        claims: asyncio.Task[None] | None = None
        installed = self._install_signals() if handle_signals else []
        started = stopped_cleanly = False
        cron_queues = list(self.keys)  # crons live on a queue itself, never on its partitions
        keeper = LeaseKeeper(
            store=store,
            queues=self.keys,
            running=self.running,
            worker_id=self.id,
            lease_seconds=s.lease_seconds,
            default_max_tries=s.max_tries,
            max_stalls=s.max_stalls,
            limits=self._limits(),
            on_dead_letter=self._dead_letter_hook(hooks, queue),
        )
        cron = CronScheduler(
            store=store,
            jobs=s.cron_jobs,
            default_queue=s.queues[0],
            prefix=s.prefix,
            defaults=JobDefaults(s.queues[0], queue.idempotency_ttl_ms, s.max_payload_bytes),
            registry=self.registry,
            queues=cron_queues,
        )
        cancels = CancelListener(
            connection,
            self.keys,
            self.running,
            on_cron_change=cron.changed,
            on_partition_change=watch.changed,
        )
        try:
            with suppressed():  # the worker's own Redis calls never show in the app's traces
                await connection.check()
                await store.preload()
                await store.register_queues(s.prefix, s.queues)
                # a partitioned queue: serve every partition it has (or had, until drained)
                await self._serve(await watch.added(), keeper, cancels, None)
                if s.name is not None:  # the same name may have left a minute ago
                    for keys in self.keys:
                        await store.leave(keys, self.id, "clear")
                keeper.about = describe(
                    queues=list(s.queues),
                    concurrency=s.concurrency,
                    started_ms=await store.now_ms(),
                    task_names=self.registry,
                    version=package_version(),
                )
                if s.metrics_port is not None:
                    from .metrics import WorkerMetrics

                    self.metrics = WorkerMetrics()
                    self.metrics.serve(s.metrics_port, s.metrics_host)
                    parts.append(("metrics", self._metrics_step(store, keeper.interval)))
                await self._warn_if_evicting(store)
                await keeper.tick()
            if s.on_startup is not None:
                await s.on_startup(self.state)
            started = True
            # Tries run in the app's context as on_startup left it; the loops, suppressed.
            quiet = suppressed_context()  # None without opentelemetry-api: nothing to suppress
            jobs_context = contextvars.copy_context() if quiet is not None else None
            runner = Runner(
                settings=s,
                registry=self.registry,
                store=store,
                finisher=finisher,
                queue=queue,
                state=self.state,
                hooks=hooks,
                metrics=self.metrics,
                tracing=for_worker(s.tracing, s.tracer_provider, self.id, s.trace_parent),
                worker_id=self.id,
                unknown_task_grace=self._unknown_task_grace(burst),
            )
            log.info(
                "worker %s serving %s on %s: %d task(s), concurrency %d%s",
                self.id,
                ",".join(s.queues),
                store.where,
                len(self.registry),
                s.concurrency,
                " (burst)" if burst else "",
            )
            with suppressed():
                await supervisor.run(CronScheduler.PART, _once(cron.start))
            claimer = Claimer(
                store=store,
                queues=self.keys,
                running=self.running,
                worker_id=self.id,
                concurrency=s.concurrency,
                lease_seconds=s.lease_seconds,
                start=self._starter(runner, jobs_context),
                stopping=self._stopping,
                burst=burst,
                burst_max_jobs=s.max_burst_jobs if s.max_burst_jobs >= 0 else None,
                burst_waits_for_deferred=s.burst_waits_for_deferred,
            )
            parts += [
                (PartitionWatch.PART, self._watch_step(watch, keeper, cancels, claimer)),
                (Finisher.PART, finisher.flush),
                (LeaseKeeper.PART, keeper.step),
                (CancelListener.PART, cancels.step),
                (CronScheduler.PART, cron.step),  # also with no cron: some may be added
            ]
            background = [
                _spawn(quiet, supervisor.run(name, step), f"asyncjobs-{name}")
                for name, step in parts
            ]
            claims = _spawn(quiet, supervisor.run(Claimer.PART, claimer.step), "asyncjobs-claims")
            stop = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({claims, stop, *background}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            failed = [t for t in (claims, *background) if t.done() and t.exception()]
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            await self._stop_claiming(store, claims)
            await self._drain()
            await finisher.drain()
            stopped_cleanly = True
        finally:
            if not stopped_cleanly:  # cancelled, or failed part-way
                await self._stop_at_once(claims, finisher)
            for task in background:
                with contextlib.suppress(Exception):
                    await cancel_and_wait(task)
            await cancels.close()
            for sig in installed:
                asyncio.get_running_loop().remove_signal_handler(sig)
            try:
                with contextlib.suppress(Exception), suppressed():
                    await keeper.leave()
                if started and s.on_shutdown is not None:
                    await s.on_shutdown(self.state)
            finally:
                await queue.waiters.aclose()
                await store.close()
                await connection.close()
            self._stopping.clear()  # a stop() before run() counts; after it, run() may start again
            log.info("worker %s stopped after %d job(s)", self.id, self.jobs_done)

    async def _serve(
        self,
        added: list[QueueKeys],
        keeper: LeaseKeeper,
        cancels: CancelListener,
        claimer: Claimer | None,
    ) -> None:
        """Serve new partitions of the worker's queues: claims, leases, heartbeats, cancels."""
        fresh = [keys for keys in added if keys not in self.keys]
        if not fresh:
            return
        self.keys += fresh
        keeper.queues += fresh
        await cancels.add_queues(fresh)
        if claimer is not None:
            claimer.add_queues(fresh)
        log.info("worker %s now serves partition(s) %s", self.id, ",".join(k.name for k in fresh))

    def _watch_step(
        self,
        watch: PartitionWatch,
        keeper: LeaseKeeper,
        cancels: CancelListener,
        claimer: Claimer,
    ) -> Callable[[], Awaitable[None]]:
        """Serve the partitions a queue gained, once its change is announced (woken by the
        subscription, never polling)."""

        async def step() -> None:
            await watch.wait()
            added = await watch.added()
            if added:
                await self._serve(added, keeper, cancels, claimer)
                await watch.store.wake(claimer.queues[0])  # the claimer re-blocks on every key

        return step

    def _starter(
        self, runner: Runner, context: contextvars.Context | None
    ) -> Callable[[ClaimedJob], None]:
        """How the claim loop starts a try: in its own task, made from ``context`` when given
        (the claim loop's own context suppresses instrumentation; a task's calls must not be)."""
        if context is None:
            return lambda job: self.running.start(job, runner.run_or_leave)
        return lambda job: context.run(self.running.start, job, runner.run_or_leave)

    def _limits(self) -> list[tuple[str, int, int, int]]:
        """Each task's concurrency and rate limits and tries, for the claim and recover scripts."""
        return [
            (task.name, task.max_concurrency or 0, task.rate_interval_ms, task.max_tries or 0)
            for task in self.registry.values()
        ]

    async def _stop_claiming(self, store: Store, claims: asyncio.Task[None]) -> None:
        """End the claim loop without losing a claim in flight: cancelling it mid-claim closes
        the connection the reply comes on, and that claim's jobs wait out their leases. So
        mark this worker as leaving (a claim Redis runs from then on takes nothing), wake its
        own wait, and let the loop start what it already holds and end; cancel it only if
        Redis does not answer within STOP_CLAIMS_SECONDS."""
        if claims.done():  # a burst that ran out of work
            return
        with suppressed(), contextlib.suppress(Exception):
            async with timeout(STOP_CLAIMS_SECONDS):
                served = list(self.keys)
                for i, keys in enumerate(served):
                    await store.leave(keys, self.id, "wake" if i == 0 else "mark")
                self.running.freed.set()  # a loop waiting for a free slot looks again
                await asyncio.wait({claims})  # (does not cancel it on the timeout)
                for keys in served:  # nothing of ours is in flight now: leave no keys behind
                    await store.leave(keys, self.id, "clear")
        await cancel_and_wait(claims)

    def _unknown_task_grace(self, burst: bool) -> float:
        grace = self.settings.unknown_task_grace
        if grace is not None:
            return grace
        return 0.0 if burst else _defaults.UNKNOWN_TASK_GRACE

    def stop(self) -> None:
        """Ask the worker to stop claiming and shut down gracefully."""
        self._stopping.set()

    def _arq_client(self) -> Any:
        """``ctx["redis"]``: arq's client (raw commands and ``enqueue_job``) on the worker's
        connection pool; the Queue itself where arq's client cannot share it (a cluster)."""
        if self._arq_redis is None:
            from .arq.connections import ArqRedis  # the arq package imports this module

            queue = self.state["queue"]
            self._arq_redis = ArqRedis.for_queue(queue) or queue
        return self._arq_redis

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
            self.running.cancel("shutdown")
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
        tasks = self.running.tasks()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=self.settings.shutdown_grace)
        if pending:
            self.running.cancel("shutdown")
            await asyncio.wait(pending)

    async def _stop_at_once(self, claims: asyncio.Task[None] | None, finisher: Finisher) -> None:
        """run() was cancelled (or failed): stop claiming, cancel the running jobs (each is
        requeued, its try given back) and report what finished, within the grace period. A
        report that cannot land by then is left to lease expiry, as after a crash."""
        self._stopping.set()
        if claims is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(claims)
        self.running.cancel("shutdown")
        grace = self.settings.shutdown_grace
        tasks = self.running.tasks()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                with contextlib.suppress(Exception):
                    await cancel_and_wait(task)
        await finisher.drain(grace=grace)

    def _dead_letter_hook(
        self, hooks: Hooks, queue: Queue
    ) -> Callable[[QueueKeys, DeadLettered], Awaitable[None]]:
        """What the lease keeper calls for a job recovery dead-lettered (no worker runs it)."""

        async def call(keys: QueueKeys, dead: DeadLettered) -> None:
            if self.settings.on_dead_letter is None:
                return
            ctx = Context(
                job_id=dead.id,
                task_name=dead.task,
                attempt=0,
                max_tries=0,
                enqueued_ms=0,
                queue=queue,
                state=self.state.copy(),
            )
            await hooks.call("on_dead_letter", ctx, WorkerLost(dead.error_type, dead.error_message))

        return call

    def _metrics_step(self, store: Store, interval: float) -> Callable[[], Awaitable[None]]:
        async def step() -> None:
            by_queue: dict[str, list[QueueCounts]] = {}
            for keys in self.keys:  # a partitioned queue is one queue: its partitions added up
                by_queue.setdefault(logical_name(keys.name), []).append(await store.counts(keys))
            for name, parts in by_queue.items():
                self.metrics.refresh(name, sum_counts(parts))
            await asyncio.sleep(interval)

        return step

    async def _warn_if_evicting(self, store: Store) -> None:
        """Warn unless Redis refuses to evict: an evicting Redis deletes jobs and leases."""
        for policy in await store.maxmemory_policies():
            if policy != "noeviction":
                log.warning(
                    "Redis maxmemory-policy is %s: under memory pressure Redis will delete job "
                    "records and leases. Set maxmemory-policy noeviction for a job queue.",
                    policy,
                )
                return


def _spawn(
    context: contextvars.Context | None, coro: Coroutine[Any, Any, None], name: str
) -> asyncio.Task[None]:
    """A task for one of the worker's loops, made from ``context`` when given."""
    if context is None:
        return asyncio.create_task(coro, name=name)
    return context.run(asyncio.create_task, coro, name=name)


def _once(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[bool]]:
    """A supervised step that runs ``fn`` once (retried on failure) and is then done."""

    async def step() -> bool:
        await fn()
        return True

    return step


__all__ = ["ClaimedJob", "Worker", "WorkerFailed"]
