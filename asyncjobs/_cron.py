"""cron(): periodic jobs, each tick enqueued exactly once however many workers run the list.

Schedules are parsed by croniter (a maintained parser; we do not write our own). The tick's
job id is deterministic (``cron:<name>:<tick ms>``) and the cron_tick script records the last
tick per cron job in Redis, so two workers firing the same tick create one job.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any, Literal

from ._options import JobDefaults, new_job
from ._store import CronTickOutcome, QueueKeys, Store
from ._task import Task

log = logging.getLogger("asyncjobs.cron")

Field = int | Collection[int] | None
MissedPolicy = Literal["skip", "run_once"]


def _field(value: Field | str) -> str:
    if value is None:
        return "*"
    if isinstance(value, (int, str)):
        return str(value)
    return ",".join(str(v) for v in sorted(value))


_DAY_NAMES = {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thurs": 3, "fri": 4}
_DAY_NAMES |= {"sat": 5, "sun": 6}


def _weekday(value: Field | str) -> Field:
    """arq's (and ``datetime.weekday()``'s) Monday = 0, turned into cron's Sunday = 0."""
    if value is None:
        return None
    values = [value] if isinstance(value, (int, str)) else list(value)
    try:
        days = [_DAY_NAMES[v.lower()] if isinstance(v, str) else int(v) for v in values]
    except KeyError as exc:
        raise ValueError(
            f"unknown weekday {exc.args[0]!r}: use 0-6 (Monday = 0) or mon..sun"
        ) from None
    return {(d + 1) % 7 for d in days}


@dataclass(frozen=True)
class CronJob:
    """One periodic job: which task, when (a croniter expression, seconds last), and how."""

    task: Task[Any, Any]
    name: str
    expression: str
    timezone: tzinfo = timezone.utc
    run_at_startup: bool = False
    unique: bool = True
    missed: MissedPolicy = "skip"
    queue: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (aware datetimes)."""
        from croniter import croniter

        at: datetime = croniter(self.expression, moment.astimezone(self.timezone)).get_next(
            datetime
        )
        return at

    def previous_before(self, moment: datetime) -> datetime:
        from croniter import croniter

        at: datetime = croniter(self.expression, moment.astimezone(self.timezone)).get_prev(
            datetime
        )
        return at


def cron(
    task: Task[Any, Any] | Callable[..., Awaitable[Any]],
    expression: str | None = None,
    *,
    name: str | None = None,
    month: Field = None,
    day: Field = None,
    weekday: Field | str = None,
    hour: Field = None,
    minute: Field = None,
    second: Field = 0,
    timezone: tzinfo = timezone.utc,
    run_at_startup: bool = False,
    unique: bool = True,
    missed: MissedPolicy = "skip",
    queue: str | None = None,
    args: tuple[Any, ...] = (),
    kwargs: dict[str, Any] | None = None,
) -> CronJob:
    """A periodic job, arq's field style or a cron expression, in UTC unless ``timezone``.

    In the field style ``weekday`` counts Monday = 0 as arq does (or takes "mon".."sun");
    an expression uses cron's own numbering (Sunday = 0).

    ``cron(cleanup, minute={0, 30})`` runs at :00 and :30 of every hour (second 0);
    ``cron(report, "0 6 * * mon-fri")`` uses an expression (a 6th field is seconds).
    ``unique`` skips a tick while the previous run is still queued or running;
    ``missed="run_once"`` runs one catch-up tick at start if ticks were missed while no worker
    ran (``"skip"``, the default, does not); ``run_at_startup`` runs it once per worker start.
    """
    if not isinstance(task, Task):
        if not inspect.iscoroutinefunction(task):
            raise TypeError(f"cron() takes a @task or an async def, got {task!r}")
        task = Task(task)
    if expression is None:
        parts = [minute, hour, day, month, _weekday(weekday), second]
        expression = " ".join(_field(p) for p in parts)
    from croniter import croniter  # imported here: it costs ~0.2 s, and most apps have no cron

    if not croniter.is_valid(expression):
        raise ValueError(f"invalid cron expression {expression!r}")
    if missed not in ("skip", "run_once"):
        raise ValueError("missed must be 'skip' or 'run_once'")
    return CronJob(
        task=task,
        name=name or task.name,
        expression=expression,
        timezone=timezone,
        run_at_startup=run_at_startup,
        unique=unique,
        missed=missed,
        queue=queue,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
    )


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CronScheduler:
    """Fires cron jobs on time by Redis's clock; Redis decides which worker's tick counts."""

    PART = "cron"

    def __init__(
        self,
        *,
        store: Store,
        jobs: Sequence[CronJob],
        default_queue: str,
        prefix: str,
        defaults: JobDefaults,
    ) -> None:
        self.store = store
        self.jobs = list(jobs)
        self.default_queue = default_queue
        self.prefix = prefix
        self.defaults = defaults
        self._upcoming: dict[str, datetime] = {}

    def _keys(self, job: CronJob) -> QueueKeys:
        return QueueKeys(job.queue or job.task.queue or self.default_queue, self.prefix)

    async def redis_now(self) -> datetime:
        """Now by Redis's clock, which every worker shares (a worker's own may be off)."""
        return datetime.fromtimestamp(await self.store.now_ms() / 1000, tz=timezone.utc)

    async def fire(self, job: CronJob, tick: datetime) -> CronTickOutcome:
        """Enqueue the job of one tick (once, whichever worker fires it first)."""
        keys = self._keys(job)
        tick_ms = _ms(tick)
        options = {"_job_id": f"cron:{job.name}:{tick_ms}", "_queue_name": keys.name}
        _, new, _ = new_job(job.task, job.args, dict(job.kwargs), options, self.defaults)
        _, outcome = await self.store.cron_tick(keys, job.name, tick_ms, job.unique, new)
        what = {
            CronTickOutcome.ENQUEUED: "enqueued",
            CronTickOutcome.ALREADY_HANDLED: "already enqueued by another worker",
            CronTickOutcome.SKIPPED_STILL_RUNNING: "skipped: still running",
        }
        log.info("cron %s tick %s: %s", job.name, tick.isoformat(), what[outcome])
        return outcome

    async def last_tick(self, job: CronJob) -> datetime | None:
        tick_ms = await self.store.last_cron_tick(self._keys(job), job.name)
        return None if tick_ms is None else datetime.fromtimestamp(tick_ms / 1000, tz=timezone.utc)

    async def start(self) -> None:
        """Enqueue the start-up ticks (catch-up, run_at_startup) before the worker claims."""
        if not self.jobs:
            return
        now = await self.redis_now()
        for job in self.jobs:
            if job.run_at_startup:
                await self.fire(job, now)
            elif job.missed == "run_once":
                last = await self.last_tick(job)
                previous = job.previous_before(now)
                if last is not None and last < previous:
                    await self.fire(job, previous)
        self._upcoming = {job.name: job.next_after(now) for job in self.jobs}

    async def step(self) -> None:
        """Sleep until the soonest tick (a schedule, not a poll), then fire what is due."""
        if not self.jobs:
            await asyncio.Event().wait()  # nothing to schedule: wait to be cancelled
        now = await self.redis_now()
        soonest = min(self._upcoming.values())
        delay = (soonest - now).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
            now = await self.redis_now()
        for job in self.jobs:
            upcoming = self._upcoming[job.name]
            if upcoming > now:
                continue
            # After a stall (a blocked loop, an outage), fire only the latest tick.
            tick = job.previous_before(now) if job.next_after(upcoming) <= now else upcoming
            await self.fire(job, tick)
            self._upcoming[job.name] = job.next_after(max(tick, now))
