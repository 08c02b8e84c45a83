"""Runs one claimed job: resolve, decode, call under a timeout, classify the outcome, report it."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from . import _serde
from ._backoff import retry_delay
from ._context import Context
from ._errors import JobTimeout, PayloadError, Retry, SerializationError, UnknownTaskError
from ._keys import QueueKeys
from ._scripts import run_script
from ._task import Task

if TYPE_CHECKING:
    from ._worker import Worker

log = logging.getLogger("asyncjobs.worker")

PERMANENT = -1


@dataclass(slots=True)
class ClaimedJob:
    """A job this worker holds a lease on, as the claim script returned it."""

    keys: QueueKeys
    id: str
    task_name: str
    payload: bytes
    attempt: int
    max_tries: int
    timeout_ms: int
    enqueued_ms: int
    token: str
    claimed_ms: int = 0  # Redis clock at the claim: queue wait = claimed_ms - enqueued_ms
    running: bool = True  # False once the task body ended and the outcome is being reported
    stop_reason: str | None = None  # why the worker cancelled it: cancelled / lease_lost / shutdown


class _TryTimedOut(Exception):
    pass


if sys.version_info >= (3, 11):

    async def _call_with_timeout(coro: Any, seconds: float) -> Any:
        try:
            async with asyncio.timeout(seconds) as scope:
                return await coro
        except TimeoutError:
            if scope.expired():
                raise _TryTimedOut from None
            raise

else:  # pragma: no cover - exercised on 3.10 only

    async def _call_with_timeout(coro: Any, seconds: float) -> Any:
        try:
            return await asyncio.wait_for(coro, seconds)
        except asyncio.TimeoutError:
            raise _TryTimedOut from None


def _error_fields(exc: BaseException) -> tuple[str, str, str]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return type(exc).__name__, str(exc), tb


async def run_job(worker: Worker, job: ClaimedJob) -> None:
    """Run ``job`` to an outcome and report it; never raises for the task's own errors."""
    settings = worker.settings
    task = worker.registry.get(job.task_name)
    max_tries = job.max_tries or (task.max_tries if task else None) or settings.max_tries
    started = time.monotonic()
    ctx = Context(
        job_id=job.id,
        task_name=job.task_name,
        attempt=job.attempt,
        max_tries=max_tries,
        enqueued_ms=job.enqueued_ms,
        queue=worker.queue_client,
        state=worker.state,
        report_progress=lambda v, s, m: _progress(worker, job, v, s, m),
    )

    async def report_failure(exc: BaseException, delay_s: float) -> None:
        error_type, message, tb = _error_fields(exc)
        delay_ms = PERMANENT if delay_s == PERMANENT else int(delay_s * 1000)
        job.running = False
        code = await worker.finisher.fail(
            job.keys,
            job.id,
            job.token,
            retry_delay_ms=delay_ms,
            max_tries=max_tries,
            error_type=error_type,
            error_message=message,
            traceback=tb,
        )
        took = time.monotonic() - started
        ctx.error = exc
        if code == 1:
            ctx.outcome = "retry"
            log.info(
                "job %s %s try %d/%d failed in %.3fs (%s: %s); retry in %.2fs",
                job.id, job.task_name, job.attempt, max_tries, took, error_type, message,
                max(delay_s, 0), extra=_extra(job, "retry", took),
            )  # fmt: skip
        elif code == 2:
            ctx.outcome = "failed"
            log.error(
                "job %s %s try %d/%d failed in %.3fs (%s: %s); dead-lettered",
                job.id, job.task_name, job.attempt, max_tries, took, error_type, message,
                extra=_extra(job, "failed", took),
            )  # fmt: skip
            await worker.hook("on_dead_letter", ctx, exc)
        else:
            ctx.outcome = "refused"
            _log_refused(job)
        if worker.metrics is not None:
            worker.metrics.job_ended(job, ctx.outcome, took)

    if task is None:
        known = ", ".join(sorted(worker.registry)) or "none"
        await report_failure(
            UnknownTaskError(
                f"no task named {job.task_name!r} is registered in this worker (known: {known}); "
                "add it to WorkerSettings.functions, then replay the dead letter"
            ),
            PERMANENT,
        )
        await worker.hook("on_job_end", ctx)
        return
    try:
        if len(job.payload) > settings.max_payload_bytes:
            raise ValueError(
                f"payload of {len(job.payload)} bytes is over max_payload_bytes "
                f"({settings.max_payload_bytes})"
            )
        args, kwargs = _serde.decode_payload(job.payload)
        args, kwargs = task.validate_arguments(args, kwargs)
    except (ValueError, TypeError, ValidationError) as exc:
        await report_failure(PayloadError(f"cannot decode the job's arguments: {exc}"), PERMANENT)
        await worker.hook("on_job_end", ctx)
        return

    timeout = job.timeout_ms / 1000 if job.timeout_ms else (task.timeout or settings.job_timeout)
    ctx.deadline = started + timeout
    log.debug("job %s %s try %d started", job.id, job.task_name, job.attempt)
    if worker.metrics is not None:
        worker.metrics.job_started(job)
    await worker.hook("on_job_start", ctx)
    try:
        result = await _call_with_timeout(task.fn(ctx, *args, **kwargs), timeout)
    except asyncio.CancelledError:
        job.running = False
        if job.stop_reason is None:
            raise  # the worker itself is being torn down
        ctx.outcome = "requeued" if job.stop_reason == "shutdown" else job.stop_reason
        await _stopped(worker, job)
    except _TryTimedOut:
        timed_out = JobTimeout(
            f"try {job.attempt} ran past its timeout of {timeout}s and was cancelled"
        )
        await report_failure(timed_out, _delay_if_retryable(task, timed_out, job.attempt))
    except Retry as exc:
        delay = exc.defer if exc.defer is not None else retry_delay(task.backoff, job.attempt)
        await report_failure(exc, delay)
    except Exception as exc:
        await report_failure(exc, _delay_if_retryable(task, exc, job.attempt))
    else:
        job.running = False
        try:
            encoded = _serde.dumps(result, f"result of {job.task_name!r}")
        except SerializationError as exc:
            await report_failure(exc, PERMANENT)
        else:
            took = time.monotonic() - started
            if await worker.finisher.succeed(job.keys, job.id, job.token, encoded):
                ctx.outcome, ctx.result = "succeeded", result
                if worker.metrics is not None:
                    worker.metrics.job_ended(job, "succeeded", took)
                if settings.log_successes and log.isEnabledFor(logging.INFO):
                    log.info(
                        "job %s %s try %d succeeded in %.3fs",
                        job.id, job.task_name, job.attempt, took,
                        extra=_extra(job, "succeeded", took),
                    )  # fmt: skip
            else:
                ctx.outcome = "refused"
                _log_refused(job)
    await worker.hook("on_job_end", ctx)


def _delay_if_retryable(task: Task[Any, Any], exc: BaseException, attempt: int) -> float:
    """The backoff delay if ``retry_on`` covers ``exc`` (default: any Exception), else PERMANENT."""
    retry_on = task.retry_on if task.retry_on is not None else (Exception,)
    return retry_delay(task.backoff, attempt) if isinstance(exc, retry_on) else PERMANENT


async def _stopped(worker: Worker, job: ClaimedJob) -> None:
    if job.stop_reason == "shutdown":
        if await worker.finisher.requeue(job.keys, job.id, job.token) > 0:
            log.warning("job %s %s requeued: shutdown grace ran out", job.id, job.task_name)
        return
    # A lost lease is already reported once for all its jobs by the lease keeper ("lost the
    # lease of job(s) ..."): repeating it per job would make an outage's log grow with the
    # number of jobs in flight.
    level = logging.DEBUG if job.stop_reason == "lease_lost" else logging.WARNING
    log.log(
        level,
        "job %s %s try %d stopped: %s",
        job.id,
        job.task_name,
        job.attempt,
        "cancelled by request" if job.stop_reason == "cancelled" else "its lease was lost",
        extra=_extra(job, job.stop_reason or "stopped", None),
    )


def _log_refused(job: ClaimedJob) -> None:
    log.warning(
        "job %s %s try %d: outcome refused, the lease token no longer matches "
        "(the job was reclaimed after the lease ran out, or cancelled)",
        job.id,
        job.task_name,
        job.attempt,
    )


async def _progress(
    worker: Worker, job: ClaimedJob, value: float, stage: str | None, message: str | None
) -> None:
    await run_script(
        worker.client,
        "progress",
        [job.keys.job(job.id)],
        [job.id, job.token, repr(value), stage or "", message or "", job.keys.events],
    )


def _extra(job: ClaimedJob, outcome: str, took: float | None) -> dict[str, Any]:
    return {
        "job_id": job.id,
        "task": job.task_name,
        "queue": job.keys.name,
        "attempt": job.attempt,
        "outcome": outcome,
        "duration": took,
    }
