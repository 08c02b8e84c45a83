"""cron(): periodic jobs, each tick enqueued exactly once however many workers run the list.

Schedules are parsed by croniter (a maintained parser; we do not write our own). The tick's
job id is deterministic (``cron:<name>:<tick ms>``) and the cron_tick script records the last
tick per cron job in Redis, so two workers firing the same tick create one job.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import TYPE_CHECKING, Any, Literal

from ._compat import cancel_and_wait
from ._keys import QueueKeys
from ._scripts import run_script
from ._serde import encode_payload
from ._task import Task

if TYPE_CHECKING:
    from ._worker import Worker

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
    """Fires a worker's cron jobs on time; Redis decides which worker's tick counts."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.jobs: list[CronJob] = list(worker.settings.cron_jobs)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Enqueue the start-up ticks (catch-up, run_at_startup) now, before the worker claims
        anything, then keep firing ticks in the background."""
        if not self.jobs:
            return
        now = datetime.now(timezone.utc)
        for job in self.jobs:
            try:
                await self._at_startup(job, now)
            except Exception:
                log.exception("cron %s: start-up tick failed; the schedule goes on", job.name)
        self._task = asyncio.create_task(self._run(now), name="asyncjobs-cron")

    async def stop(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(self._task)
            self._task = None

    def _keys(self, job: CronJob) -> QueueKeys:
        name = job.queue or job.task.queue or self.worker.settings.queues[0]
        return QueueKeys(name, self.worker.settings.prefix)

    async def fire(self, job: CronJob, tick: datetime) -> int:
        """Enqueue the job of one tick; 0 enqueued, 1 already handled, 2 skipped (unique)."""
        keys = self._keys(job)
        tick_ms = _ms(tick)
        payload = encode_payload(job.args, job.kwargs, job.task.name)
        fields = [f"cron:{job.name}:{tick_ms}", job.task.name, payload, 0, 0, 0, 0, 0, 0, "", 1]
        key_of = job.task.concurrency_key
        fields.append(str(key_of(*job.args, **job.kwargs)) if key_of is not None else "")
        _, code = await run_script(
            self.worker.client,
            "cron_tick",
            [keys.ready, keys.deferred, keys.wake, keys.seq, keys.stats, keys.cron],
            [keys.job_prefix, keys.idempotency_prefix, job.name, tick_ms, int(job.unique), *fields],
        )
        what = {0: "enqueued", 1: "already enqueued by another worker", 2: "skipped: still running"}
        log.info("cron %s tick %s: %s", job.name, tick.isoformat(), what[int(code)])
        return int(code)

    async def last_tick(self, job: CronJob) -> datetime | None:
        state = await self.worker.client.hget(self._keys(job).cron, job.name)
        if not state:
            return None
        return datetime.fromtimestamp(int(state.split(b" ")[0]) / 1000, tz=timezone.utc)

    async def _at_startup(self, job: CronJob, now: datetime) -> None:
        if job.run_at_startup:
            await self.fire(job, now)
        elif job.missed == "run_once":
            last = await self.last_tick(job)
            previous = job.previous_before(now)
            if last is not None and last < previous:
                await self.fire(job, previous)

    async def _run(self, now: datetime) -> None:
        upcoming = {job.name: job.next_after(now) for job in self.jobs}
        while True:
            soonest = min(upcoming.values())
            delay = (soonest - datetime.now(timezone.utc)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)  # a schedule, not a poll: we sleep until the tick
            now = datetime.now(timezone.utc)
            for job in self.jobs:
                if upcoming[job.name] > now:
                    continue
                # After a stall (a blocked loop, a suspended host), fire only the latest tick.
                tick = (
                    job.previous_before(now)
                    if job.next_after(upcoming[job.name]) <= now
                    else upcoming[job.name]
                )
                try:
                    await self.fire(job, tick)
                except Exception:
                    log.exception("cron %s: could not enqueue tick %s", job.name, tick)
                upcoming[job.name] = job.next_after(max(tick, now))
