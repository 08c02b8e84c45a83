"""WorkerSettings: validated worker configuration, also built from an arq-style class."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import _defaults
from ._arq_compat import (
    ARQ_ALIASES,
    ARQ_IGNORED,
    redis_url_of,
    settings_attributes,
    translate,
    uses_arq_layer,
)
from ._errors import ConfigurationError
from ._store import check_queue_name
from ._task import Task

Hook = Callable[[Any], Awaitable[None]]


class WorkerSettings(BaseModel):
    """Everything a worker needs; unknown names are refused (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    redis_url: str = _defaults.REDIS_URL
    functions: list[Any] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=lambda: [_defaults.QUEUE], min_length=1)
    concurrency: int = Field(_defaults.CONCURRENCY, ge=1)
    on_startup: Hook | None = None
    on_shutdown: Hook | None = None
    on_job_start: Hook | None = None
    on_job_end: Hook | None = None
    on_dead_letter: Callable[[Any, BaseException], Awaitable[None]] | None = None
    cron_jobs: list[Any] = Field(default_factory=list)
    lease_seconds: float = Field(_defaults.LEASE_SECONDS, gt=0.2)
    max_tries: int = Field(_defaults.MAX_TRIES, ge=1)
    job_timeout: float = Field(_defaults.JOB_TIMEOUT, gt=0)
    keep_result: float = Field(_defaults.KEEP_RESULT, ge=0)
    shutdown_grace: float = Field(_defaults.SHUTDOWN_GRACE, ge=0)
    dead_letter_maxlen: int = Field(_defaults.DEAD_LETTER_MAXLEN, ge=1)
    max_stalls: int = Field(_defaults.MAX_STALLS, ge=1)
    #: Seconds a job of a task this worker does not register waits for one that does, before
    #: it is dead-lettered as UnknownTaskError (None: 300, or 0 for a burst worker).
    unknown_task_grace: float | None = Field(None, ge=0)
    max_payload_bytes: int = Field(_defaults.MAX_PAYLOAD_BYTES, ge=64)
    #: The largest encoded result a job may store in Redis; a bigger one fails the job with a
    #: SerializationError (store it elsewhere and return a reference).
    max_result_bytes: int = Field(_defaults.MAX_RESULT_BYTES, ge=64)
    #: Seconds a part of the worker (claims, leases, acks...) may keep failing with an
    #: unexpected error before the worker stops with WorkerFailed (Redis outages never count).
    give_up_after: float = Field(60.0, gt=0)
    prefix: str = _defaults.PREFIX
    name: str | None = None
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    log_successes: bool = True
    #: OpenTelemetry (needs opentelemetry-api): a ``process <queue>`` span per try, linked to
    #: the span that enqueued the job, or its child with ``trace_parent="child"``.
    tracing: bool = True
    trace_parent: Literal["link", "child"] = "link"
    #: Where the spans go: the global tracer provider unless set.
    tracer_provider: Any = None
    #: Run as ``run(burst=True)`` would (arq's ``burst = True`` on a settings class).
    burst: bool = False
    #: In burst mode, start at most this many jobs, then stop (-1: no limit).
    max_burst_jobs: int = Field(-1, ge=-1)
    #: In burst mode, also wait for deferred jobs (retries included) to come due and run, as
    #: arq's burst does; by default a burst returns once nothing is ready or running.
    burst_waits_for_deferred: bool = False
    #: The worker-wide state every job's ctx starts from (arq's ``ctx``); on_startup adds to it.
    state: dict[str, Any] = Field(default_factory=dict)

    @field_validator("functions")
    @classmethod
    def _tasks_only(cls, value: list[Any]) -> list[Any]:
        tasks: list[Task[Any, Any]] = []
        for fn in value:
            if isinstance(fn, Task):
                tasks.append(fn)
            elif inspect.iscoroutinefunction(fn):
                tasks.append(Task(fn))
            else:
                raise ValueError(f"functions must hold @task functions or async defs, got {fn!r}")
        names = [t.name for t in tasks]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"two functions share the task name(s) {sorted(dupes)}")
        return tasks

    @field_validator("queues", mode="before")
    @classmethod
    def _queue_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("queues")
    @classmethod
    def _queue_names(cls, value: list[str]) -> list[str]:
        return [check_queue_name(name) for name in value]

    @field_validator("redis_url", mode="before")
    @classmethod
    def _redis_url(cls, value: Any) -> Any:
        # arq's RedisSettings(host=, port=, database=, password=) → a URL
        if hasattr(value, "host") and hasattr(value, "port"):
            return redis_url_of(value)
        return value

    @classmethod
    def coerce(cls, obj: Any) -> WorkerSettings:
        """Accept a WorkerSettings, a dict of its fields, or a settings class/object: an arq one
        with arq's names and defaults, or one written for asyncjobs (see ``_arq_compat``)."""
        if isinstance(obj, WorkerSettings):
            return obj
        if isinstance(obj, dict):
            data = translate(obj, cls.model_fields, arq_style=False)
        else:
            raw = settings_attributes(obj)
            data = translate(raw, cls.model_fields, uses_arq=uses_arq_layer(obj))
        return cls.checked(data)

    @classmethod
    def from_arq(cls, raw: dict[str, Any]) -> WorkerSettings:
        """Settings from arq's Worker keyword arguments, with arq's defaults."""
        return cls.checked(translate(raw, cls.model_fields, arq_style=True))

    @classmethod
    def checked(cls, data: dict[str, Any]) -> WorkerSettings:
        try:
            return cls(**data)
        except ValueError as exc:
            raise ConfigurationError(f"invalid worker settings: {exc}") from None


__all__ = ["ARQ_ALIASES", "ARQ_IGNORED", "WorkerSettings"]
