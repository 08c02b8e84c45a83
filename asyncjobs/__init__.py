"""asyncjobs: a pure-asyncio job queue on Redis with atomic Lua state changes and short leases."""

from __future__ import annotations

from ._context import Context
from ._cron import CronInfo, CronJob, cron
from ._errors import (
    AsyncJobsError,
    ConfigurationError,
    DeadLetterNotFound,
    JobCancelled,
    JobFailed,
    JobTimeout,
    LeaseLost,
    PayloadError,
    QueueInUse,
    RedisCommandError,
    RedisUnavailable,
    ResultNotFound,
    Retry,
    SerializationError,
    SoftTimeout,
    UnknownTaskError,
    WorkerFailed,
    WorkerLost,
)
from ._job import Job
from ._models import JobInfo, JobStatus, WorkflowFailure, WorkflowStep
from ._presence import WorkerInfo
from ._queue import Queue
from ._settings import WorkerSettings
from ._stats import HistoryBucket, HourlyBucket, QueueStats, UnknownTask
from ._task import Task, task
from ._worker import Worker
from ._workflow import Chain, Chord, Group, Signature, chain, chord, group


def __getattr__(name: str) -> str:
    """``asyncjobs.__version__``, read from the installed metadata only when asked for (reading
    it costs more start-up time than any module of the package)."""
    if name == "__version__":
        from ._presence import package_version

        return package_version()
    raise AttributeError(f"module 'asyncjobs' has no attribute {name!r}")


__all__ = [
    "AsyncJobsError",
    "Chain",
    "Chord",
    "ConfigurationError",
    "Context",
    "CronInfo",
    "CronJob",
    "DeadLetterNotFound",
    "Group",
    "HistoryBucket",
    "HourlyBucket",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobInfo",
    "JobStatus",
    "JobTimeout",
    "LeaseLost",
    "PayloadError",
    "Queue",
    "QueueInUse",
    "QueueStats",
    "RedisCommandError",
    "RedisUnavailable",
    "ResultNotFound",
    "Retry",
    "SerializationError",
    "Signature",
    "SoftTimeout",
    "Task",
    "UnknownTask",
    "UnknownTaskError",
    "Worker",
    "WorkerFailed",
    "WorkerInfo",
    "WorkerLost",
    "WorkerSettings",
    "WorkflowFailure",
    "WorkflowStep",
    "chain",
    "chord",
    "cron",
    "group",
    "task",
]
