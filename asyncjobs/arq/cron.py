"""arq's ``cron()``: every field must match, ``day`` and ``weekday`` included.

``cron(report, day=13, weekday="fri")`` runs on Fridays that are the 13th, as in arq (a cron
expression would mean "every Friday and every 13th"; asyncjobs's own ``cron`` keeps that).
Times are in the job's ``timezone``, else the worker's ``timezone`` setting, else this
machine's local time, as in arq. Each tick is enqueued once however many workers run it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, fields
from datetime import datetime, tzinfo
from typing import Any

from .._arq_compat import Function, import_string
from .._cron import CronJob as _CronJob
from .._cron import cron as _cron
from .typing import OptionType, SecondsTimedelta, WeekdayOptionType, WorkerCoroutine
from .utils import to_seconds

__all__ = ["CronJob", "cron", "next_cron"]


def _croniter(expression: str, moment: datetime) -> Any:
    from croniter import croniter

    return croniter(expression, moment, day_or=False)


@dataclass(frozen=True)
class CronJob(_CronJob):
    """A cron job with arq's semantics (all fields AND-ed) and arq's attribute names."""

    #: No timezone was given: the worker's ``timezone`` setting applies.
    follows_worker_timezone: bool = False
    month: OptionType = None
    day: OptionType = None
    weekday: WeekdayOptionType = None
    hour: OptionType = None
    minute: OptionType = None
    second: OptionType = 0
    microsecond: int = 123_456
    job_id: str | None = None

    @property
    def coroutine(self) -> WorkerCoroutine:
        return self.task.coroutine if isinstance(self.task, Function) else self.task.fn  # type: ignore[return-value]

    @property
    def timeout_s(self) -> float | None:
        return self.task.timeout

    @property
    def max_tries(self) -> int | None:
        return self.task.max_tries

    def next_after(self, moment: datetime) -> datetime:
        at: datetime = _croniter(self.expression, moment.astimezone(self.timezone)).get_next(
            datetime
        )
        return at

    def previous_before(self, moment: datetime) -> datetime:
        at: datetime = _croniter(self.expression, moment.astimezone(self.timezone)).get_prev(
            datetime
        )
        return at

    def __repr__(self) -> str:
        return f"<CronJob {self.name} [{self.expression}] {self.timezone}>"


def _local_timezone() -> tzinfo:
    """This machine's timezone now, as arq's worker takes it."""
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


def cron(
    coroutine: str | WorkerCoroutine,
    *,
    name: str | None = None,
    month: OptionType = None,
    day: OptionType = None,
    weekday: WeekdayOptionType = None,
    hour: OptionType = None,
    minute: OptionType = None,
    second: OptionType = 0,
    microsecond: int = 123_456,
    run_at_startup: bool = False,
    unique: bool = True,
    job_id: str | None = None,
    timeout: SecondsTimedelta | None = None,
    keep_result: float | None = 0,
    keep_result_forever: bool | None = False,
    max_tries: int | None = 1,
    timezone: tzinfo | None = None,
) -> CronJob:
    """A job run at the times all the given fields match (weekday 0 or "mon" is Monday).

    ``unique`` (on by default) is always true here: each tick runs once however many workers
    there are. With ``job_id`` a tick is skipped while the previous run is still queued or
    running. ``timezone`` (not in arq) pins the job's times to a zone.
    """
    if isinstance(coroutine, str):
        name = name or "cron:" + coroutine
        coroutine = import_string(coroutine)
    if not inspect.iscoroutinefunction(coroutine):
        raise RuntimeError(f"{coroutine} is not a coroutine function")
    name = name or "cron:" + coroutine.__qualname__
    task = Function(
        coroutine,
        name=name,
        timeout=to_seconds(timeout),
        keep_result=keep_result,
        keep_result_forever=keep_result_forever,
        max_tries=max_tries,
    )
    base = _cron(
        task,
        name=name,
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        timezone=timezone or _local_timezone(),
        run_at_startup=run_at_startup,
        unique=job_id is not None,
    )
    return CronJob(
        **{f.name: getattr(base, f.name) for f in fields(_CronJob)},
        follows_worker_timezone=timezone is None,
        month=month,
        day=day,
        weekday=weekday,
        hour=hour,
        minute=minute,
        second=second,
        microsecond=microsecond,
        job_id=job_id,
    )


def next_cron(
    previous_dt: datetime,
    *,
    month: OptionType = None,
    day: OptionType = None,
    weekday: WeekdayOptionType = None,
    hour: OptionType = None,
    minute: OptionType = None,
    second: OptionType = 0,
    microsecond: int = 123_456,
) -> datetime:
    """The first time after ``previous_dt``'s second at which every given field matches, at
    ``microsecond`` past that second (arq's helper; its timezone is ``previous_dt``'s)."""

    async def _placeholder(ctx: Any) -> None: ...

    job = _cron(
        _placeholder, month=month, day=day, weekday=weekday, hour=hour, minute=minute,
        second=second,
    )  # fmt: skip
    start = previous_dt.replace(microsecond=0)
    at: datetime = _croniter(job.expression, start).get_next(datetime)
    return at.replace(microsecond=microsecond)
