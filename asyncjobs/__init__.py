"""asyncjobs: a pure-asyncio job queue on Redis with atomic Lua state changes and short leases."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("asyncjobs-redis")  # the distribution name, not the import name
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

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
