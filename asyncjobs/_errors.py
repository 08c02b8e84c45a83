"""Errors raised by asyncjobs, rooted at one class so callers can catch them all.

    AsyncJobsError
    ├── ConfigurationError      bad settings, an import path that does not resolve, an ACL
    │                           that forbids a command asyncjobs needs
    ├── RedisUnavailable        Redis cannot serve us now: refused, reset, timed out, loading,
    │                           read-only, out of memory, busy (also a ConnectionError)
    ├── RedisCommandError       Redis refused a command as wrong (a bug, or a foreign key type)
    ├── SerializationError      arguments or a result that cannot be stored as JSON
    ├── UnknownTaskError        a task name no worker registered
    ├── PayloadError            a stored payload that cannot be decoded into the task's arguments
    ├── JobFailed               the job ended FAILED (carries error type, message, traceback)
    ├── JobCancelled            the job ended CANCELLED (or EXPIRED) instead of producing a result
    ├── ResultNotFound          the job (or its kept result) no longer exists
    ├── DeadLetterNotFound      no dead letter for that job (also a LookupError)
    ├── QueueInUse              forget_queue() on a queue with jobs, dead letters or workers
    ├── JobTimeout              a try ran past its timeout (recorded as the job's error type)
    ├── SoftTimeout             raised inside a task when its soft_timeout passes (it may
    │                           checkpoint and stop before the hard timeout cancels it)
    ├── LeaseLost               a try that no longer holds its job's lease tried to save a
    │                           checkpoint (another try has the job, or it was cancelled)
    ├── WorkerLost              a job's lease ran out (its worker died, or it is a PoisonPill)
    └── WorkerFailed            a part of the worker kept failing; the worker stopped

``Retry`` is not an error: a task raises it to ask for another try (control flow).
"""

from __future__ import annotations

from datetime import timedelta


class AsyncJobsError(Exception):
    """Root of every error asyncjobs raises."""


class ConfigurationError(AsyncJobsError):
    """Settings or an import path are wrong; the message says which and how to fix it."""


class RedisUnavailable(AsyncJobsError, ConnectionError):
    """Redis cannot serve us now (the message says why); the same call may succeed later."""


class RedisCommandError(AsyncJobsError):
    """Redis refused one of our commands as wrong: a bug of ours, or a key of another type."""


class SerializationError(AsyncJobsError, TypeError):
    """A value cannot be stored as JSON (task arguments or a task's return value)."""


class UnknownTaskError(AsyncJobsError, LookupError):
    """A job names a task that is not registered."""


class PayloadError(AsyncJobsError, ValueError):
    """A stored job payload cannot be decoded, or does not fit the task's signature."""


class JobTimeout(AsyncJobsError, TimeoutError):
    """A try of a job ran longer than its timeout and was cancelled."""


class SoftTimeout(AsyncJobsError):
    """Raised inside a task when its ``soft_timeout`` passes: save a checkpoint and stop (raise
    or return) before the hard ``timeout`` cancels the try."""


class LeaseLost(AsyncJobsError):
    """This try no longer holds its job's lease (the lease ran out and another try has the job,
    or the job was cancelled or has ended): what it saves is refused, so it should stop."""


class JobFailed(AsyncJobsError):
    """The job ended FAILED; the fields say with which error, after how many tries."""

    def __init__(
        self,
        job_id: str,
        error_type: str,
        error_message: str,
        traceback: str = "",
        attempts: int = 0,
    ) -> None:
        self.job_id = job_id
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback
        self.attempts = attempts
        super().__init__(
            f"job {job_id} failed after {attempts} tr{'y' if attempts == 1 else 'ies'}: "
            f"{error_type}: {error_message}"
        )


class JobCancelled(AsyncJobsError):
    """The job ended without a result: cancelled, or expired before it started."""

    def __init__(self, job_id: str, status: str) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(f"job {job_id} ended {status} and has no result")


class ResultNotFound(AsyncJobsError, LookupError):
    """The job is unknown, or its record expired (see `keep_result`)."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(
            f"job {job_id} not found: it never existed here or its record expired "
            "(raise keep_result if you read results late)"
        )


class DeadLetterNotFound(AsyncJobsError, LookupError):
    """No dead letter holds that job (it was replayed, purged, trimmed, or never failed)."""


class QueueInUse(AsyncJobsError):
    """The queue still has jobs, dead letters or live workers, so it cannot be forgotten."""


class WorkerLost(AsyncJobsError):
    """A job's lease ran out: its worker was killed, crashed or blocked (``error_type`` says
    WorkerLost, or PoisonPill once it happened ``max_stalls`` times)."""

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        super().__init__(f"{error_type}: {message}")


class WorkerFailed(AsyncJobsError):
    """A part of the worker kept failing with an unexpected error, so the worker stopped (its
    running jobs come back through their leases); the process should exit non-zero."""


class Retry(Exception):
    """Raised by a task to ask for another try after ``defer`` seconds (bounded by max_tries)."""

    def __init__(self, defer: float | timedelta | None = None) -> None:
        self.defer = defer.total_seconds() if isinstance(defer, timedelta) else defer
        super().__init__(f"retry requested (defer={defer})")
