"""CronScheduler: a worker's cron loop on Redis's clock. It fires the crons of the worker's
settings and the ones added at run time to its queues' crontabs, which it reloads as soon as a
change is published (woken, never polling). Redis decides which worker's tick counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from ._cron import CronJob, definition, from_definition
from ._options import JobDefaults, new_job
from ._store import CronTickOutcome, QueueKeys, Store
from ._task import Task

log = logging.getLogger("asyncjobs.cron")

CronKey = tuple[str, str]  # (queue, cron name)

_OUTCOMES = {
    CronTickOutcome.ENQUEUED: "enqueued",
    CronTickOutcome.ALREADY_HANDLED: "already enqueued by another worker",
    CronTickOutcome.SKIPPED_STILL_RUNNING: "skipped: still running",
    CronTickOutcome.REMOVED: "not enqueued: the cron was removed or replaced",
}


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CronScheduler:
    """Fires cron jobs on time by Redis's clock; Redis decides which worker's tick counts."""

    PART = "cron"
    #: How often a worker renews the listing of its settings' crons in the crontab; a listing
    #: lapses DECLARE_HOLD_MS after the last worker declaring it stopped.
    DECLARE_EVERY_MS = 60_000
    DECLARE_HOLD_MS = 3 * DECLARE_EVERY_MS

    def __init__(
        self,
        *,
        store: Store,
        jobs: Sequence[CronJob],
        default_queue: str,
        prefix: str,
        defaults: JobDefaults,
        registry: dict[str, Task[Any, Any]] | None = None,
        queues: Sequence[QueueKeys] = (),
    ) -> None:
        self.store = store
        self.jobs = list(jobs)  # the worker's settings' crons
        self.default_queue = default_queue
        self.prefix = prefix
        self.defaults = defaults
        self.registry = registry or {}
        self.queues = list(queues)  # the worker's queues: their crontabs are read
        self._crons: dict[CronKey, CronJob] = {}
        self._upcoming: dict[CronKey, datetime] = {}
        self._stale: set[str] = set()  # queues whose crontab changed since it was read
        self._changed = asyncio.Event()
        self._next_declare_ms = 0
        self._told: set[tuple[CronKey, str]] = set()  # what was logged once per revision

    def changed(self, queue_name: str | None) -> None:
        """A queue's crontab changed (None: any may have, e.g. after a lost subscription)."""
        self._stale.update([queue_name] if queue_name else [k.name for k in self.queues])
        self._changed.set()

    def _queue_of(self, job: CronJob) -> str:
        return job.queue or job.task.queue or self.default_queue

    def _keys(self, queue_name: str) -> QueueKeys:
        return QueueKeys(queue_name, self.prefix)

    async def redis_now(self) -> datetime:
        """Now by Redis's clock, which every worker shares (a worker's own may be off)."""
        return datetime.fromtimestamp(await self.store.now_ms() / 1000, tz=timezone.utc)

    async def fire(self, job: CronJob, tick: datetime) -> CronTickOutcome:
        """Enqueue the job of one tick (once, whichever worker fires it first)."""
        keys = self._keys(self._queue_of(job))
        tick_ms = _ms(tick)
        options = {"_job_id": f"cron:{job.name}:{tick_ms}", "_queue_name": keys.name}
        _, new, _ = new_job(job.task, job.args, dict(job.kwargs), options, self.defaults)
        _, outcome = await self.store.cron_tick(
            keys, job.name, tick_ms, job.unique, new, revision=job.revision
        )
        log.info("cron %s tick %s: %s", job.name, tick.isoformat(), _OUTCOMES[outcome])
        return outcome

    async def last_tick(self, job: CronJob) -> datetime | None:
        tick_ms = await self.store.last_cron_tick(self._keys(self._queue_of(job)), job.name)
        return None if tick_ms is None else datetime.fromtimestamp(tick_ms / 1000, tz=timezone.utc)

    async def start(self) -> None:
        """List the settings' crons, load the run-time ones, and enqueue the start-up ticks
        (catch-up, run_at_startup) before the worker claims."""
        now = await self.redis_now()
        for job in self.jobs:
            self._crons[self._queue_of(job), job.name] = job
        if self.jobs:
            await self._declare(now)
        for job in self.jobs:
            await self._catch_up(job, now)
            self._upcoming[self._queue_of(job), job.name] = job.next_after(now)
        self._stale.clear()
        self._changed.clear()
        await self._reload([keys.name for keys in self.queues], now, starting=True)

    async def _catch_up(self, job: CronJob, now: datetime) -> None:
        if job.run_at_startup:
            await self.fire(job, now)
        elif job.missed == "run_once":
            last = await self.last_tick(job)
            previous = job.previous_before(now)
            if last is not None and last < previous:
                await self.fire(job, previous)

    async def step(self) -> None:
        """Sleep until the soonest tick or a change to a crontab (a schedule, not a poll), then
        fire what is due."""
        if self._stale:
            stale, self._stale = self._stale, set()
            self._changed.clear()
            await self._reload(sorted(stale), await self.redis_now())
        now = await self.redis_now()
        deadlines = list(self._upcoming.values())
        if self.jobs:
            deadlines.append(datetime.fromtimestamp(self._next_declare_ms / 1000, timezone.utc))
        if not deadlines:
            await self._changed.wait()
            return
        delay = (min(deadlines) - now).total_seconds()
        if delay > 0:
            try:
                await asyncio.wait_for(self._changed.wait(), delay)
                return  # a crontab changed: reload it first
            except asyncio.TimeoutError:
                now = await self.redis_now()
        for key, upcoming in list(self._upcoming.items()):
            if upcoming > now:
                continue
            job = self._crons[key]
            # After a stall (a blocked loop, an outage), fire only the latest tick.
            tick = job.previous_before(now) if job.next_after(upcoming) <= now else upcoming
            if await self.fire(job, tick) is CronTickOutcome.REMOVED:
                self._forget(key)
                self._stale.add(key[0])
            else:
                self._upcoming[key] = job.next_after(max(tick, now))
        if self.jobs and _ms(now) >= self._next_declare_ms:
            await self._declare(now)

    async def _declare(self, now: datetime) -> None:
        """List the settings' crons in their queues' crontabs (so Queue.crons() shows them)."""
        by_queue: dict[str, list[tuple[str, bytes]]] = {}
        for job in self.jobs:
            entry = (job.name, definition(job, "settings"))
            by_queue.setdefault(self._queue_of(job), []).append(entry)
        for queue_name, entries in by_queue.items():
            keys = self._keys(queue_name)
            for name in await self.store.declare_crons(keys, self.DECLARE_HOLD_MS, entries):
                self._tell_once(
                    (queue_name, name),
                    "settings",
                    logging.WARNING,
                    "cron %s of queue %s: a cron added at run time has the same name; this "
                    "worker fires the one of its settings, which share its tick state. Rename one",
                    name,
                    queue_name,
                )
        self._next_declare_ms = _ms(now) + self.DECLARE_EVERY_MS

    async def _reload(
        self, queue_names: Sequence[str], now: datetime, starting: bool = False
    ) -> None:
        """Read these queues' crontabs: load new and changed run-time crons, drop removed ones."""
        for queue_name in queue_names:
            seen: set[CronKey] = set()
            for name, raw in (await self.store.crontab(self._keys(queue_name))).items():
                stored = orjson.loads(raw)
                if stored.get("source") != "runtime":
                    continue
                key = (queue_name, name)
                seen.add(key)
                current = self._crons.get(key)
                revision = stored.get("revision", "")
                if current is not None and current.revision == revision:
                    continue
                if current is not None and not current.revision:
                    continue  # this worker's settings hold that name (warned by _declare)
                self._forget(key)
                job = self._load(key, raw, stored)
                if job is None:
                    continue
                self._crons[key] = job
                if starting:
                    await self._catch_up(job, now)
                self._upcoming[key] = job.next_after(now)
                log.info("cron %s (%s, %s) loaded from queue %s's crontab",
                         name, job.task_name, job.expression, queue_name)  # fmt: skip
            for key in [k for k, j in self._crons.items() if k[0] == queue_name and j.revision]:
                if key not in seen:
                    self._forget(key)
                    log.info("cron %s removed from queue %s's crontab", key[1], queue_name)

    def _load(self, key: CronKey, raw: bytes, stored: dict[str, Any]) -> CronJob | None:
        """The run-time cron to fire, or None when this worker cannot (said once)."""
        task = self.registry.get(stored.get("task", ""))
        revision = stored.get("revision", "")
        if task is None:
            self._tell_once(
                key, revision, logging.INFO,
                "cron %s of queue %s: this worker does not know task %r; a worker that does "
                "fires it (Queue.crons() shows served=False if none does)",
                key[1], key[0], stored.get("task"),
            )  # fmt: skip
            return None
        try:
            job = from_definition(key[1], raw, task, queue=key[0])
            task.check_arguments(job.args, job.kwargs)  # added by name: checked only here
            job.next_after(datetime.now(timezone.utc))
            return job
        except Exception as exc:  # wrong arguments, a time zone this machine lacks, ...
            self._tell_once(key, revision, logging.ERROR,
                            "cron %s of queue %s cannot be scheduled here: %s", key[1], key[0],
                            exc)  # fmt: skip
            return None

    def _forget(self, key: CronKey) -> None:
        self._crons.pop(key, None)
        self._upcoming.pop(key, None)

    def _tell_once(self, key: CronKey, revision: str, level: int, msg: str, *args: Any) -> None:
        if (key, revision) not in self._told:
            self._told.add((key, revision))
            log.log(level, msg, *args)
