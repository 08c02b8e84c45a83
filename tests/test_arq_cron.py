"""asyncjobs.arq.cron keeps arq's schedule semantics: every given field must match (day AND
weekday), times in the job's, else the worker's, timezone; next_cron as arq computes it."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from asyncjobs import WorkerSettings
from asyncjobs import cron as native_cron
from asyncjobs.arq import Worker, create_pool
from asyncjobs.arq.cron import CronJob, cron, next_cron

UTC = timezone.utc


async def report(ctx: Any) -> None: ...


def _matches(value: int, wanted: Any) -> bool:
    return wanted is None or (value in wanted if isinstance(wanted, set) else value == wanted)


def _reference_next(after: datetime, **fields: Any) -> datetime:
    """The first whole second after ``after`` where every given field matches: day by day,
    then hour, minute and second (written from arq's documentation, nothing shared)."""
    seconds = [s for s in range(60) if _matches(s, fields.get("second", 0))]
    minutes = [m for m in range(60) if _matches(m, fields.get("minute"))]
    hours = [h for h in range(24) if _matches(h, fields.get("hour"))]
    day = after.date()
    for _ in range(366 * 30):
        if (
            _matches(day.month, fields.get("month"))
            and _matches(day.day, fields.get("day"))
            and _matches(day.weekday(), fields.get("weekday"))
        ):
            for h in hours:
                for m in minutes:
                    for s in seconds:
                        at = datetime(day.year, day.month, day.day, h, m, s, tzinfo=after.tzinfo)
                        if at > after.replace(microsecond=0):
                            return at
        day += timedelta(days=1)
    raise AssertionError("no match within 30 years")


def _random_fields(rng: random.Random) -> dict[str, Any]:
    def pick(low: int, high: int) -> Any:
        if rng.random() < 0.5:
            return rng.randint(low, high)
        return set(rng.sample(range(low, high + 1), rng.randint(1, 3)))

    fields: dict[str, Any] = {"day": pick(1, 28), "weekday": pick(0, 6)}
    for name, low, high in (("month", 1, 12), ("hour", 0, 23), ("minute", 0, 59)):
        if rng.random() < 0.5:
            fields[name] = pick(low, high)
    return fields


def test_day_and_weekday_must_both_match_as_in_arq() -> None:
    rng = random.Random(19)
    for _ in range(300):
        fields = _random_fields(rng)
        start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**8))
        got = next_cron(start, **fields)
        assert got.replace(microsecond=0) == _reference_next(start, **fields), fields
        assert got.microsecond == 123_456


def test_friday_the_13th_is_not_every_friday_and_every_13th() -> None:
    arq_job = cron(report, day=13, weekday="fri", hour=9, minute=0)
    native = native_cron(report, day=13, weekday="fri", hour=9, minute=0)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    arq_next = arq_job.next_after(start.astimezone(arq_job.timezone))
    assert arq_next.date() == date(2026, 2, 13) and arq_next.weekday() == 4
    assert native.next_after(start).date() == date(2026, 1, 2), "ours keeps cron's OR"


def test_next_cron_keeps_the_timezone_and_the_microsecond() -> None:
    paris = ZoneInfo("Europe/Paris")
    got = next_cron(datetime(2026, 3, 1, 10, 0, 30, tzinfo=paris), minute=5, microsecond=7)
    assert got == datetime(2026, 3, 1, 10, 5, 0, 7, tzinfo=paris)
    assert next_cron(datetime(2026, 3, 1, 10, 0, 0), second={0, 30}) == datetime(
        2026, 3, 1, 10, 0, 30, 123_456
    )
    with pytest.raises(ValueError, match="unknown weekday"):
        next_cron(datetime(2026, 1, 1), weekday="monday")  # type: ignore[arg-type]


def test_cron_jobs_are_named_and_configured_as_in_arq() -> None:
    job = cron(report, minute={0, 30}, timeout=5, max_tries=2)
    assert isinstance(job, CronJob) and job.name == "cron:report" and job.task.name == "cron:report"
    assert job.coroutine is report and job.timeout_s == 5 and job.max_tries == 2
    assert cron(report).max_tries == 1, "arq's cron jobs get one try unless told"
    assert cron(report, name="nightly").name == "nightly"
    assert not cron(report).unique and cron(report, job_id="fixed").unique
    with pytest.raises(RuntimeError, match="not a coroutine function"):
        cron(len)  # type: ignore[arg-type]


def test_the_worker_timezone_applies_to_crons_without_their_own() -> None:
    new_york, tokyo = ZoneInfo("America/New_York"), ZoneInfo("Asia/Tokyo")

    class Settings:
        functions = [report]
        cron_jobs = [
            cron(report, hour=9, minute=0),
            cron(report, hour=9, name="tk", timezone=tokyo),
        ]
        timezone = new_york

    plain, pinned = WorkerSettings.coerce(Settings).cron_jobs
    assert plain.timezone == new_york and pinned.timezone == tokyo
    winter = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    assert plain.next_after(winter).astimezone(UTC) == datetime(2026, 1, 10, 14, 0, tzinfo=UTC)
    local = datetime.now().astimezone().utcoffset()
    assert cron(report).timezone.utcoffset(None) == local, "no timezone at all: local time"


async def test_run_at_startup_runs_the_cron_job_once_in_a_burst(arq_url: str) -> None:
    ran: list[str] = []

    async def tick(ctx: Any) -> None:
        ran.append(ctx["job_id"])

    pool = await create_pool(arq_url, default_queue_name=f"cron-{uuid.uuid4().hex[:8]}")
    try:
        job = cron(tick, name="tick", hour=3, run_at_startup=True)
        worker = Worker(
            cron_jobs=[job], redis_pool=pool, queue_name=None, burst=True, handle_signals=False
        )
        await worker.main()
        assert len(ran) == 1 and worker.jobs_complete == 1
    finally:
        await pool.close()
