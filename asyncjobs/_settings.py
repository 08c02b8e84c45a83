"""WorkerSettings: validated worker configuration, also built from an arq-style class."""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import _defaults
from ._errors import ConfigurationError
from ._store import check_queue_name
from ._task import Task

Hook = Callable[[Any], Awaitable[None]]

#: arq attribute name → our field name, for settings classes written for arq.
#: arq settings with nothing to do in asyncjobs (no polling, no pickle, leases instead of
#: health keys); accepted so an arq module runs unchanged, and logged once.
ARQ_IGNORED = frozenset(
    {
        "poll_delay",
        "queue_read_limit",
        "health_check_interval",
        "health_check_key",
        "allow_abort_jobs",
        "handle_signals",
        "expires_extra_ms",
        "job_completion_wait",
        "keep_result_forever",
        "log_results",
        "retry_jobs",
        "max_burst_jobs",
        "burst",
        "ctx",
    }
)

ARQ_ALIASES = {
    "max_jobs": "concurrency",
    "queue_name": "queues",
    "redis_settings": "redis_url",
}


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
            user = getattr(value, "username", None) or ""
            password = getattr(value, "password", None)
            auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
            scheme = "rediss" if getattr(value, "ssl", False) else "redis"
            return f"{scheme}://{auth}{value.host}:{value.port}/{getattr(value, 'database', 0)}"
        return value

    @classmethod
    def coerce(cls, obj: Any) -> WorkerSettings:
        """Accept a WorkerSettings, a dict, or an arq-style class/object with the same names."""
        if isinstance(obj, WorkerSettings):
            return obj
        if isinstance(obj, dict):
            raw = dict(obj)
        else:
            raw = {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_")}
        data: dict[str, Any] = {}
        for key, value in raw.items():
            if key in ARQ_IGNORED:
                logging.getLogger("asyncjobs.worker").info(
                    "arq setting %r has no effect in asyncjobs; ignored", key
                )
                continue
            field = ARQ_ALIASES.get(key, key)
            if field not in cls.model_fields:
                hint = difflib.get_close_matches(field, list(cls.model_fields), n=1)
                raise ConfigurationError(
                    f"unknown worker setting {key!r}"
                    + (f"; did you mean {hint[0]!r}?" if hint else "")
                    + f" Known settings: {', '.join(sorted(cls.model_fields))}"
                )
            data[field] = value
        try:
            return cls(**data)
        except ValueError as exc:
            raise ConfigurationError(f"invalid worker settings: {exc}") from None
