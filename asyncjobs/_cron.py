"""cron(): periodic jobs, and how a cron is stored in a queue's crontab and listed.

Schedules are parsed by croniter (a maintained parser; we do not write our own). The tick's
job id is deterministic (``cron:<name>:<tick ms>``) and the cron_tick script records the last
tick per cron job in Redis, so two workers firing the same tick create one job. Crons added at
run time (``Queue.add_cron``) live in the queue's crontab hash as JSON definitions; workers
declare their settings' crons there too, so ``Queue.crons()`` lists both. The scheduler that
fires them is in ``_cron_scheduler``.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Literal

import orjson

from . import _serde
from ._errors import ConfigurationError, UnknownTaskError
from ._models import Model
from ._options import JobDefaults, new_job
from ._presence import worker_info
from ._store import CronChange, QueueKeys, Store
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
    #: A run-time cron's stored revision (what cron_tick checks); '' for a settings cron.
    revision: str = ""

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def by_name_only(self) -> bool:
        """Made from a task name (``cron("reports.daily", ...)``): its workers know the task."""
        return self.task.fn is _known_by_name

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (aware datetimes)."""
        return next_tick(self.expression, self.timezone, moment)

    def previous_before(self, moment: datetime) -> datetime:
        from croniter import croniter

        at: datetime = croniter(self.expression, moment.astimezone(self.timezone)).get_prev(
            datetime
        )
        return at


def next_tick(expression: str, zone: tzinfo, moment: datetime) -> datetime:
    """The first tick of ``expression`` in ``zone`` strictly after ``moment``."""
    from croniter import croniter

    at: datetime = croniter(expression, moment.astimezone(zone)).get_next(datetime)
    return at


def cron(
    task: Task[Any, Any] | Callable[..., Awaitable[Any]] | str,
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

    ``task`` is a ``@task``, an async def, or a registered task name (for ``Queue.add_cron``
    from a process that does not import the task's code).

    In the field style ``weekday`` counts Monday = 0 as arq does (or takes "mon".."sun");
    an expression uses cron's own numbering (Sunday = 0).

    ``cron(cleanup, minute={0, 30})`` runs at :00 and :30 of every hour (second 0);
    ``cron(report, "0 6 * * mon-fri")`` uses an expression (a 6th field is seconds).
    ``unique`` skips a tick while the previous run is still queued or running;
    ``missed="run_once"`` runs one catch-up tick at start if ticks were missed while no worker
    ran (``"skip"``, the default, does not); ``run_at_startup`` runs it once per worker start.
    """
    if isinstance(task, str):
        if not task:
            raise ValueError("cron() needs a task: a @task, an async def or a task name")
        task = Task(_known_by_name, name=task)
    elif not isinstance(task, Task):
        if not inspect.iscoroutinefunction(task):
            raise TypeError(f"cron() takes a @task, an async def or a task name, got {task!r}")
        task = Task(task)
    if expression is None:
        parts = [minute, hour, day, month, _weekday(weekday), second]
        expression = " ".join(_field(p) for p in parts)
    from croniter import croniter  # imported here: it costs ~0.2 s, and most apps have no cron

    if not croniter.is_valid(expression):
        raise ValueError(
            f"invalid cron expression {expression!r}: use five fields (minute hour day month "
            "weekday), or six with seconds last, e.g. '0 6 * * mon-fri'"
        )
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


async def _known_by_name(ctx: Any, *args: Any, **kwargs: Any) -> None:
    """Stands for a task known by name only (cron("name", ...)): the worker runs its own."""
    raise UnknownTaskError(
        f"task {ctx.task_name!r} was given to cron() by name; register it in the worker's "
        "WorkerSettings.functions"
    )


# -- stored definitions ----------------------------------------------------------------------

Source = Literal["runtime", "settings"]


def zone_key(zone: tzinfo, *, strict: bool = True) -> str:
    """How a cron's time zone is stored: "UTC", an IANA name, or a fixed offset "+02:00"."""
    key = getattr(zone, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    offset = zone.utcoffset(None) if isinstance(zone, timezone) else None
    if offset is not None:
        if not offset:
            return "UTC"
        minutes = int(offset.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    if strict:
        raise ValueError(
            f"cannot store the time zone {zone!r}: use zoneinfo.ZoneInfo('Europe/Paris') or a "
            "datetime.timezone"
        )
    return str(zone)


def zone_from_key(key: str) -> tzinfo:
    if key == "UTC":
        return timezone.utc
    if key[:1] in "+-" and len(key) == 6:
        minutes = int(key[1:3]) * 60 + int(key[4:6])
        return timezone(timedelta(minutes=-minutes if key[0] == "-" else minutes))
    from zoneinfo import ZoneInfo

    return ZoneInfo(key)


def definition(job: CronJob, source: Source, revision: str = "", added_ms: int = 0) -> bytes:
    """The JSON a crontab entry holds (a settings cron's `until` is added by cron_declare)."""
    return _serde.dumps(
        {
            "task": job.task_name,
            "expression": job.expression,
            "timezone": zone_key(job.timezone, strict=source == "runtime"),
            "args": list(job.args),
            "kwargs": job.kwargs,
            "unique": job.unique,
            "missed": job.missed,
            "source": source,
            "revision": revision,
            "added_at": added_ms,
        },
        f"cron {job.name!r}",
    )


def from_definition(name: str, raw: bytes, task: Task[Any, Any], queue: str) -> CronJob:
    """The run-time cron a crontab entry of ``queue`` holds (``task`` resolved by the worker)."""
    d = orjson.loads(raw)
    return CronJob(
        task=task,
        name=name,
        queue=queue,
        expression=d["expression"],
        timezone=zone_from_key(d.get("timezone", "UTC")),
        unique=bool(d.get("unique", True)),
        missed=d.get("missed", "skip"),
        args=tuple(d.get("args", ())),
        kwargs=dict(d.get("kwargs", {})),
        revision=d.get("revision", ""),
    )


class CronInfo(Model):
    """A cron as ``Queue.crons()`` lists it: added at run time, or declared by live workers'
    settings (``source``)."""

    name: str
    task: str
    expression: str
    #: The next tick by Redis's clock (None if the stored schedule cannot be read here).
    next_run: datetime | None = None
    #: The last tick handled (enqueued, or skipped because the previous run was still live).
    last_run: datetime | None = None
    queue: str
    timezone: str = "UTC"
    source: Source = "runtime"
    #: Whether a live worker of its queue knows its task. False: no tick is enqueued until one
    #: does (deploy a worker with that task, or fix the name).
    served: bool = False
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    unique: bool = True
    missed: MissedPolicy = "skip"


def _info(
    name: str, queue: str, raw: bytes, last_ms: int | None, served: bool, now: datetime
) -> CronInfo:
    d = orjson.loads(raw)
    next_run = None
    try:
        next_run = next_tick(d["expression"], zone_from_key(d.get("timezone", "UTC")), now)
    except Exception:  # an IANA zone this machine lacks, a schedule written by hand
        log.debug("cron %s: cannot compute its next tick", name, exc_info=True)
    return CronInfo(
        name=name,
        task=d["task"],
        expression=d["expression"],
        next_run=next_run,
        last_run=None if last_ms is None else datetime.fromtimestamp(last_ms / 1000, timezone.utc),
        queue=queue,
        timezone=d.get("timezone", "UTC"),
        source=d.get("source", "runtime"),
        served=served,
        args=d.get("args", []),
        kwargs=d.get("kwargs", {}),
        unique=d.get("unique", True),
        missed=d.get("missed", "skip"),
    )


def _is_live(raw: bytes, now_ms: int) -> bool:
    """A run-time entry, or a settings one some live worker still declares."""
    d = orjson.loads(raw)
    return bool(d.get("source") != "settings" or d.get("until", 0) > now_ms)


# -- the client's side: Queue.add_cron / remove_cron / crons ---------------------------------


def queue_of(job: CronJob, default: str) -> str:
    """The queue a cron's jobs go to (and whose crontab holds it)."""
    if not isinstance(job, CronJob):
        raise TypeError(f"add_cron takes a cron(...), not {job!r}")
    return job.queue or job.task.queue or default


async def add_cron(store: Store, keys: QueueKeys, job: CronJob, defaults: JobDefaults) -> CronInfo:
    """Check a cron like an enqueue of its task, then store it in ``keys``' crontab."""
    if job.run_at_startup:
        raise ValueError(
            "run_at_startup runs a cron at each worker start: give it to WorkerSettings.cron_jobs; "
            "a cron added at run time starts at its next tick"
        )
    new_job(job.task, job.args, dict(job.kwargs), {"_queue_name": keys.name}, defaults)
    now_ms = await store.now_ms()
    stored = definition(job, "runtime", os.urandom(8).hex(), now_ms)
    if await store.add_cron(keys, job.name, stored) is CronChange.REFUSED:
        raise ConfigurationError(
            f"cron {job.name!r} of queue {keys.name!r} is declared in the settings of a live "
            "worker (WorkerSettings.cron_jobs): give the run-time cron another name"
        )
    now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    served = job.task_name in await _served_tasks(store, keys)
    return _info(job.name, keys.name, stored, None, served, now)


async def remove_cron(store: Store, keys: QueueKeys, name: str) -> bool:
    """Delete the run-time cron ``name`` of a queue; True if it was there."""
    change = await store.remove_cron(keys, name)
    if change is CronChange.REFUSED:
        raise ConfigurationError(
            f"cron {name!r} of queue {keys.name!r} comes from the settings of a live worker: "
            "remove it from WorkerSettings.cron_jobs and restart those workers"
        )
    return change is CronChange.REMOVED


async def list_crons(store: Store, queues: Sequence[QueueKeys]) -> list[CronInfo]:
    """Every cron of these queues, by queue then name."""
    now_ms = await store.now_ms()
    now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    out: list[CronInfo] = []
    for keys in queues:
        entries = {
            n: raw for n, raw in (await store.crontab(keys)).items() if _is_live(raw, now_ms)
        }
        if not entries:
            continue
        ticks = await store.cron_ticks(keys)
        served = await _served_tasks(store, keys)
        for name in sorted(entries):
            known = orjson.loads(entries[name])["task"] in served
            out.append(_info(name, keys.name, entries[name], ticks.get(name), known, now))
    return out


async def _served_tasks(store: Store, keys: QueueKeys) -> set[str]:
    """The tasks some live worker of the queue registers, as its heartbeat describes it."""
    tasks: set[str] = set()
    for record in await store.worker_records(keys):
        tasks.update(worker_info(record).tasks)
    return tasks
