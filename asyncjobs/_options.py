"""Enqueue options (``_job_id``, ``_defer_by``, ...) checked and turned into a NewJob.

Used by ``Queue.enqueue``, ``enqueue_many``, cron ticks and workflow members alike, so an
option means the same everywhere and a bad one is refused with one line that names it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._checks import (
    count_option,
    positive_seconds_option,
    priority_option,
    seconds_option,
    text_option,
    when_option,
)
from ._errors import SerializationError
from ._serde import encode_payload
from ._store import NewJob, check_queue_name
from ._task import Task

#: Keyword arguments of enqueue() that are options, not task arguments (arq's convention).
ENQUEUE_OPTIONS = frozenset(
    {
        "_job_id",
        "_queue_name",
        "_defer_by",
        "_defer_until",
        "_priority",
        "_idempotency_key",
        "_idempotency_ttl",
        "_max_tries",
        "_timeout",
        "_expires",
    }
)


@dataclass(frozen=True)
class JobDefaults:
    """What a Queue fills in for options a call leaves out."""

    queue_name: str
    idempotency_ttl_ms: int
    max_payload_bytes: int


def split_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Take the underscore options out of ``kwargs`` (in place); refuse unknown ones."""
    options = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("_")}
    unknown = set(options) - ENQUEUE_OPTIONS
    if unknown:
        raise TypeError(
            f"unknown enqueue option(s) {sorted(unknown)}; options are "
            f"{sorted(ENQUEUE_OPTIONS)} (task arguments may not start with '_')"
        )
    return options


def new_job(
    task: Task[Any, Any] | str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: Mapping[str, Any],
    defaults: JobDefaults,
) -> tuple[str, NewJob, Task[Any, Any] | None]:
    """Check a call and its options; returns (queue name, the NewJob, the Task if given)."""
    task_obj: Task[Any, Any] | None = None
    if isinstance(task, Task):
        task_obj = task
        task.check_arguments(args, kwargs)
        name = task.name
    elif isinstance(task, str) and task:
        name = task
    else:
        raise TypeError(f"enqueue takes a Task or a task name, not {task!r}")
    payload = encode_payload(args, kwargs, name)
    if len(payload) > defaults.max_payload_bytes:
        raise SerializationError(
            f"the arguments of {name!r} take {len(payload)} bytes, over max_payload_bytes "
            f"({defaults.max_payload_bytes}): store big data elsewhere (S3, a database) and "
            "pass a reference"
        )
    get = options.get
    queue_name = get("_queue_name") or (task_obj and task_obj.queue) or defaults.queue_name
    if queue_name is not defaults.queue_name:
        check_queue_name(queue_name)
    job_id = get("_job_id")
    if job_id is None and task_obj is not None and task_obj.unique:
        job_id = task_obj.unique_job_id(payload)
    fresh = job_id is None  # drawn at random here: no job can have it yet
    job_id = os.urandom(16).hex() if fresh else text_option(job_id, "_job_id")
    if not options:  # the common call: only the task's own defaults apply
        job = _with_task_defaults(job_id, name, payload, task_obj, defaults, args, kwargs, fresh)
        return queue_name, job, task_obj
    max_tries = get("_max_tries")
    timeout = get("_timeout")
    idem_key = get("_idempotency_key")
    idem_ttl = get("_idempotency_ttl")
    defer_until = get("_defer_until")
    base = _with_task_defaults(job_id, name, payload, task_obj, defaults, args, kwargs, fresh)
    job = base._replace(
        priority=priority_option(get("_priority", 0)),
        max_tries=base.max_tries if max_tries is None else count_option(max_tries, "_max_tries"),
        timeout_ms=(
            base.timeout_ms if timeout is None else positive_seconds_option(timeout, "_timeout")
        ),
        delay_ms=seconds_option(get("_defer_by"), "_defer_by"),
        defer_until_ms=0 if defer_until is None else when_option(defer_until),
        expires_ms=seconds_option(get("_expires"), "_expires"),
        idempotency_key="" if idem_key is None else text_option(idem_key, "_idempotency_key"),
        idempotency_ttl_ms=(
            base.idempotency_ttl_ms
            if idem_ttl is None
            else positive_seconds_option(idem_ttl, "_idempotency_ttl")
        ),
    )
    return queue_name, job, task_obj


def _with_task_defaults(
    job_id: str,
    name: str,
    payload: bytes,
    task: Task[Any, Any] | None,
    defaults: JobDefaults,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    fresh: bool,
) -> NewJob:
    """The job as the task's own settings make it, before any underscore option."""
    if task is None:
        return NewJob(
            job_id,
            name,
            payload,
            idempotency_ttl_ms=defaults.idempotency_ttl_ms,
            fresh=int(fresh),
        )
    return NewJob(
        job_id,
        name,
        payload,
        max_tries=task.max_tries or 0,
        timeout_ms=round((task.timeout or 0) * 1000),
        idempotency_ttl_ms=(
            round(task.idempotency_ttl * 1000)
            if task.idempotency_ttl is not None
            else defaults.idempotency_ttl_ms
        ),
        concurrency_key=_concurrency_key(task, args, kwargs),
        fresh=int(fresh),
    )


def _concurrency_key(
    task: Task[Any, Any] | None, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    if task is None or task.concurrency_key is None:
        return ""
    key = str(task.concurrency_key(*args, **kwargs))
    if not key:
        raise ValueError(f"concurrency_key of task {task.name!r} returned an empty key")
    return key
