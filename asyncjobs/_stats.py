"""QueueStats: one queue's counts, pause state and history, as `queue.stats()` returns them."""

from __future__ import annotations

from datetime import datetime, timezone

from ._models import Model, ms_to_datetime
from ._store import QueueCounts

#: The outcomes the history counts (each counted where the try ends, in Lua: see tally).
OUTCOMES = ("succeeded", "failed", "retried", "recovered", "cancelled", "expired")
MINUTE_MS, HOUR_MS = 60_000, 3_600_000
#: How far back the buckets go (Redis keeps them so long; see the Lua prelude and heartbeat).
MAX_MINUTES, MAX_HOURS = 8 * 60, 7 * 24


class _Outcomes(Model):
    succeeded: int = 0  # jobs that ended succeeded
    failed: int = 0  # jobs that ended failed (dead-lettered)
    retried: int = 0  # failed tries given another try
    recovered: int = 0  # jobs put back after their worker's lease ran out
    cancelled: int = 0
    expired: int = 0


class HistoryBucket(_Outcomes):
    """What ended in one minute (``minute`` is its start, UTC, Redis's clock)."""

    minute: datetime


class HourlyBucket(_Outcomes):
    """What ended in one hour (``hour`` is its start, UTC)."""

    hour: datetime


class UnknownTask(Model):
    """A task some job names that a worker serving the queue does not register."""

    task: str
    last_seen: datetime  # when a worker last gave such a job back
    worker: str  # which one


class QueueStats(Model):
    """One queue now: its jobs, workers, pause state, counters since it was created, and what
    ended per minute (``history``, oldest first) and per hour (``hourly``)."""

    name: str
    queued: int  # ready to run, in claim order (see `blocked` for the others)
    deferred: int  # waiting for a due time: deferrals, retries, rate limits
    in_progress: int
    blocked: int  # queued, but waiting for a concurrency slot
    dead_letters: int
    workers: int  # live workers
    paused: bool
    paused_at: datetime | None = None
    enqueued: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    recovered: int = 0
    cancelled: int = 0
    expired: int = 0
    replayed: int = 0
    unknown_task: int = 0  # jobs given back by a worker that did not know their task
    history: list[HistoryBucket] = []
    hourly: list[HourlyBucket] = []
    unknown_tasks: list[UnknownTask] = []
    as_of: datetime  # Redis's clock when the snapshot was taken


def _when(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def queue_stats(name: str, counts: QueueCounts, minutes: int, hours: int) -> QueueStats:
    """QueueStats from a snapshot: every minute and hour in range, zeros where nothing ended.

    The hourly history holds the minutes the workers' heartbeats have folded in; the minutes
    read here that are newer than that are added to their hour, so the last hour is complete.
    """
    now_minute = counts.now_ms // MINUTE_MS
    history = []
    for minute in range(now_minute - minutes + 1, now_minute + 1):
        found = counts.minutes.get(minute, {})
        values = {k: found.get(k, 0) for k in OUTCOMES}
        history.append(HistoryBucket(minute=_when(minute * MINUTE_MS), **values))
    per_hour = {hour: dict(values) for hour, values in counts.hours.items()}
    for minute, found in counts.minutes.items():
        if minute > counts.rolled_minute:
            bucket = per_hour.setdefault(minute // 60, {})
            for k in OUTCOMES:
                bucket[k] = bucket.get(k, 0) + found.get(k, 0)
    now_hour = counts.now_ms // HOUR_MS
    hourly = []
    for hour in range(now_hour - hours + 1, now_hour + 1):
        found = per_hour.get(hour, {})
        values = {k: found.get(k, 0) for k in OUTCOMES}
        hourly.append(HourlyBucket(hour=_when(hour * HOUR_MS), **values))
    totals = {
        k: counts.stats.get(k, 0) for k in (*OUTCOMES, "enqueued", "replayed", "unknown_task")
    }
    return QueueStats(
        name=name,
        queued=counts.ready,
        deferred=counts.deferred,
        in_progress=counts.in_progress,
        blocked=counts.blocked,
        dead_letters=counts.dead_letters,
        workers=counts.workers,
        paused=counts.paused,
        paused_at=ms_to_datetime(counts.paused_ms),
        history=history,
        hourly=hourly,
        unknown_tasks=[
            UnknownTask(task=task, last_seen=_when(ms), worker=worker)
            for task, (ms, worker) in sorted(counts.unknown_tasks.items())
        ],
        as_of=_when(counts.now_ms),
        **totals,
    )


_SUMMED = (
    "queued", "deferred", "in_progress", "blocked", "dead_letters", "enqueued", "succeeded",
    "failed", "retried", "recovered", "cancelled", "expired", "replayed", "unknown_task",
)  # fmt: skip


def _sum_buckets(
    parts: list[list[HistoryBucket]] | list[list[HourlyBucket]], at: str
) -> list[dict[str, object]]:
    """Buckets of several partitions added up by their start (the first partition's range)."""
    merged: dict[datetime, dict[str, object]] = {}
    for buckets in parts:
        for bucket in buckets:
            start = getattr(bucket, at)
            entry = merged.setdefault(start, {at: start, **dict.fromkeys(OUTCOMES, 0)})
            for k in OUTCOMES:
                entry[k] = int(entry[k]) + getattr(bucket, k)  # type: ignore[call-overload]
    keep = [getattr(b, at) for b in parts[0]]
    return [merged[start] for start in keep]


def sum_stats(name: str, parts: list[QueueStats]) -> QueueStats:
    """A partitioned queue as one queue: its partitions' stats added up (``parts[0]`` is the
    queue itself). Workers serve every partition, so the live ones are the most any counts;
    the queue is paused when every partition is."""
    first = parts[0]
    totals = {k: sum(getattr(p, k) for p in parts) for k in _SUMMED}
    unknown = {u.task: u for p in parts for u in p.unknown_tasks}
    return QueueStats(
        name=name,
        workers=max(p.workers for p in parts),
        paused=all(p.paused for p in parts),
        paused_at=first.paused_at if all(p.paused for p in parts) else None,
        history=[HistoryBucket(**b) for b in _sum_buckets([p.history for p in parts], "minute")],  # type: ignore[arg-type]
        hourly=[HourlyBucket(**b) for b in _sum_buckets([p.hourly for p in parts], "hour")],  # type: ignore[arg-type]
        unknown_tasks=sorted(unknown.values(), key=lambda u: u.task),
        as_of=first.as_of,
        **totals,
    )


def sum_counts(parts: list[QueueCounts]) -> QueueCounts:
    """A partitioned queue's snapshot as one queue's (the sizes and counters added up; live
    workers: the most any partition has, since workers serve every partition)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    stats: dict[str, int] = {}
    for part in parts:
        for k, v in part.stats.items():
            stats[k] = stats.get(k, 0) + v
    return QueueCounts(
        ready=sum(p.ready for p in parts),
        deferred=sum(p.deferred for p in parts),
        in_progress=sum(p.in_progress for p in parts),
        dead_letters=sum(p.dead_letters for p in parts),
        workers=max(p.workers for p in parts),
        stats=stats,
        now_ms=first.now_ms,
        paused_ms=first.paused_ms if all(p.paused for p in parts) else 0,
        blocked=sum(p.blocked for p in parts),
        groups=sum(p.groups for p in parts),
        unknown_tasks={t: u for p in parts for t, u in p.unknown_tasks.items()},
    )
