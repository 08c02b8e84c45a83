"""Reading arq's settings: its names, its defaults, its functions, and what it ignores.

``WorkerSettings.coerce`` reads a settings class through here, and so does
``asyncjobs.arq.Worker``. It sits below the settings (it imports neither the worker nor the
``asyncjobs.arq`` package, which imports the worker) so that reading a class needs nothing else.

A class is read *arq-style* when it is written for arq: it names a setting only arq has
(``redis_settings``, ``queue_name``, ``max_jobs``, ...), or its module uses ``asyncjobs.arq``
(an arq project after its import lines were changed), and it names no setting only asyncjobs
has (``redis_url``, ``queues``, ``concurrency``, ...). Then arq's defaults apply (queue
``arq:queue``, 10 jobs at a time, results kept an hour, 5 tries), plain ``async def`` functions
fail at once on an ordinary exception (only ``Retry`` retries, as in arq), and names arq would
drop (typos, helper methods) are ignored with one warning line instead of refused. Any other
class is read as a WorkerSettings with the same attribute names.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from datetime import timedelta, tzinfo
from importlib import import_module
from typing import Any
from urllib.parse import quote, urlencode

from ._errors import ConfigurationError
from ._task import Task

log = logging.getLogger("asyncjobs.worker")

#: arq's keyword for a setting → ours.
ARQ_ALIASES = {
    "max_jobs": "concurrency",
    "queue_name": "queues",
    "redis_settings": "redis_url",
    "ctx": "state",
    "job_completion_wait": "shutdown_grace",
}

#: arq settings with nothing to do in asyncjobs, each with the reason (named in the warning).
ARQ_IGNORED = {
    "poll_delay": "no polling: Redis wakes the workers",
    "queue_read_limit": "no polling: Redis wakes the workers",
    "health_check_interval": "workers heartbeat on their own; see check_health",
    "health_check_key": "workers heartbeat on their own; see check_health",
    "allow_abort_jobs": "abort always works",
    "handle_signals": "the command handles signals",
    "expires_extra_ms": "set _expires when you enqueue",
    "log_results": "results are never logged",
    "job_serializer": "arguments and results are JSON",
    "job_deserializer": "arguments and results are JSON",
    "redis_pool": "the worker opens its own connection",
}

#: Every keyword arq 0.28's Worker takes (what arq itself reads from a settings class).
ARQ_NAMES = frozenset(ARQ_ALIASES) | frozenset(ARQ_IGNORED)
ARQ_NAMES |= {
    "functions", "cron_jobs", "burst", "on_startup", "on_shutdown", "on_job_start",
    "on_job_end", "after_job_end", "job_timeout", "keep_result", "keep_result_forever",
    "max_tries", "retry_jobs", "max_burst_jobs", "timezone",
}  # fmt: skip

#: arq's defaults, which an arq-style class gets where asyncjobs's own would differ.
ARQ_DEFAULTS: dict[str, Any] = {
    "queues": ["arq:queue"],
    "concurrency": 10,
    "keep_result": 3600.0,
    "max_tries": 5,
    "job_timeout": 300.0,
    "burst_waits_for_deferred": True,
}

#: ``keep_result_forever``: a record kept for a century is kept for good.
FOREVER_SECONDS = 100 * 365 * 86_400.0


def import_string(dotted_path: str) -> Any:
    """``"pkg.module.name"`` → that object; ImportError naming what is missing."""
    module_path, _, name = dotted_path.strip().rpartition(".")
    if not module_path:
        raise ImportError(f"{dotted_path!r} doesn't look like a module path (pkg.module.name)")
    module = import_module(module_path)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ImportError(f"module {module_path!r} does not define {name!r}") from None


def seconds(value: float | timedelta | None) -> float | None:
    """arq's SecondsTimedelta (a number of seconds or a timedelta) as seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else value


class Function(Task[Any, Any]):
    """An arq job function: retried only when it raises ``Retry``, at once unless deferred.

    arq's attribute names (``coroutine``, ``timeout_s``, ``max_tries``...) still work.
    """

    def __init__(
        self,
        coroutine: Callable[..., Awaitable[Any]],
        *,
        name: str | None = None,
        timeout: float | timedelta | None = None,
        keep_result: float | timedelta | None = None,
        keep_result_forever: bool | None = None,
        max_tries: int | None = None,
    ) -> None:
        super().__init__(
            _with_job_try(coroutine),
            name=name or coroutine.__qualname__,
            timeout=seconds(timeout),
            max_tries=max_tries,
            retry_on=(),
            backoff=0.0,
        )
        self.coroutine = coroutine
        self.keep_result_s = seconds(keep_result)
        self.keep_result_forever = keep_result_forever

    @property
    def timeout_s(self) -> float | None:
        return self.timeout

    def validate_arguments(
        self, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        job_try = kwargs.pop(JOB_TRY_KEY, None)
        args, kwargs = super().validate_arguments(args, kwargs)
        if job_try is not None:
            kwargs[JOB_TRY_KEY] = job_try
        return args, kwargs


#: Where ``enqueue_job(..., _job_try=n)`` keeps ``n`` in the payload's keyword arguments (an arq
#: function takes it out before calling the coroutine); no parameter can have this name.
JOB_TRY_KEY = "arq:job_try"


class JobExecutionFailed(RuntimeError):
    """arq's error for a job that could not run: expired, unknown function, tries used up."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JobExecutionFailed) and self.args == other.args

    __hash__ = RuntimeError.__hash__


def _with_job_try(coroutine: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The coroutine, taking ``_job_try`` (if given at enqueue) into ``ctx["job_try"]``."""
    if not inspect.iscoroutinefunction(coroutine):
        raise ConfigurationError(f"{coroutine!r} is not a coroutine function (async def)")

    async def call(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        first = kwargs.pop(JOB_TRY_KEY, None)
        if first is not None:
            job_try = ctx.attempt + int(first) - 1
            ctx["job_try"] = job_try
            if job_try > ctx.max_tries:
                raise JobExecutionFailed(f"max {ctx.max_tries} retries exceeded")
        return await coroutine(ctx, *args, **kwargs)

    call.__name__ = getattr(coroutine, "__name__", "call")
    call.__qualname__ = getattr(coroutine, "__qualname__", call.__name__)
    call.__doc__ = coroutine.__doc__
    call.__wrapped__ = coroutine  # type: ignore[attr-defined]  # signature and annotations
    call.__annotations__ = getattr(coroutine, "__annotations__", {})
    call.__module__ = coroutine.__module__
    return call


def arq_function(fn: Any) -> Any:
    """What arq makes of an entry of ``functions``: a coroutine or a dotted path becomes an arq
    Function; a Function or an asyncjobs ``@task`` stays as it is."""
    if isinstance(fn, Task):
        return fn
    if isinstance(fn, str):
        return Function(import_string(fn), name=fn)
    if inspect.iscoroutinefunction(fn):
        return Function(fn)
    raise ConfigurationError(
        f"functions must hold async defs, func(...) or @task objects, got {fn!r}"
    )


def redis_url_of(settings: Any) -> str:
    """arq's RedisSettings (host, port, database, unix_socket_path, sentinel, ssl...) as a URL."""
    user = getattr(settings, "username", None) or ""
    password = getattr(settings, "password", None)
    auth = f"{quote(user)}:{quote(password)}@" if password else (f"{quote(user)}@" if user else "")
    database = getattr(settings, "database", 0) or 0
    query: dict[str, Any] = {}
    if getattr(settings, "conn_timeout", None):
        query["socket_connect_timeout"] = settings.conn_timeout
    if getattr(settings, "max_connections", None):
        query["max_connections"] = settings.max_connections
    host = settings.host
    if getattr(settings, "sentinel", False):
        nodes = ",".join(f"{h}:{p}" for h, p in host)
        master = getattr(settings, "sentinel_master", "mymaster")
        return f"redis+sentinel://{auth}{nodes}/{master}/{database}"
    if getattr(settings, "unix_socket_path", None):
        query["db"] = database
        return f"unix://{auth}{settings.unix_socket_path}?{urlencode(query)}"
    scheme = "redis"
    if getattr(settings, "ssl", False):
        scheme = "rediss"
        for name in ("ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs"):
            if getattr(settings, name, None):
                query[name] = getattr(settings, name)
        if getattr(settings, "ssl_check_hostname", False):
            query["ssl_check_hostname"] = "true"
    url = f"{scheme}://{auth}{host}:{settings.port}/{database}"
    return f"{url}?{urlencode(query)}" if query else url


def _in_turn(first: Any, second: Any) -> Callable[[Any], Awaitable[None]]:
    """arq's on_job_end, then its after_job_end; one that raises is logged, the other runs."""

    async def call(ctx: Any) -> None:
        for hook in (first, second):
            if hook is None:
                continue
            try:
                await hook(ctx)
            except Exception:
                log.exception("%s hook failed", getattr(hook, "__name__", hook))

    return call


def settings_attributes(obj: Any) -> dict[str, Any]:
    """The public attributes of a settings class or object (inherited ones included)."""
    return {k: getattr(obj, k) for k in dir(obj) if not k.startswith("_")}


def is_arq_style(raw: Mapping[str, Any], fields: Iterable[str], uses_arq: bool = False) -> bool:
    """Whether settings are written for arq (see the module doc); ``uses_arq``: their module
    imports from ``asyncjobs.arq``."""
    fields = set(fields)
    if (fields - ARQ_NAMES) & set(raw):
        return False  # names a setting only asyncjobs has
    return uses_arq or bool((ARQ_NAMES - fields) & set(raw))


def uses_arq_layer(obj: Any) -> bool:
    """Whether the module that defines ``obj`` imports anything from ``asyncjobs.arq``."""
    module = inspect.getmodule(obj)
    for value in vars(module).values() if module is not None else ():
        origin = value.__name__ if inspect.ismodule(value) else getattr(value, "__module__", "")
        if isinstance(origin, str) and (
            origin == "asyncjobs.arq" or origin.startswith("asyncjobs.arq.")
        ):
            return True
    return False


def translate(
    raw: Mapping[str, Any],
    fields: Iterable[str],
    *,
    arq_style: bool | None = None,
    uses_arq: bool = False,
) -> dict[str, Any]:
    """Settings written for arq (or for us) → keyword arguments of ``WorkerSettings``.

    Names arq ignores, and arq settings with no effect here, are named in one warning line.
    An unknown name is refused for settings written for asyncjobs (a typo must not pass), and
    only named in that warning for arq-style ones (arq itself drops it silently).
    """
    fields = list(fields)
    arq = is_arq_style(raw, fields, uses_arq) if arq_style is None else arq_style
    data: dict[str, Any] = dict(ARQ_DEFAULTS) if arq else {}
    no_effect: list[str] = []
    unknown: list[str] = []
    for key, value in raw.items():
        if key in ARQ_IGNORED:
            no_effect.append(key)
            continue
        field = ARQ_ALIASES.get(key, key)
        if value is None and field in ("queues", "state", "shutdown_grace"):
            continue  # arq's "not given": its default (or ours) applies
        if field in fields:
            data[field] = value
        elif key in ARQ_NAMES:
            pass  # read below
        elif arq:
            unknown.append(key)
        else:
            hint = difflib.get_close_matches(field, fields, n=1)
            raise ConfigurationError(
                f"unknown worker setting {key!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else "")
                + f" Known settings: {', '.join(sorted(fields))}"
            )
    if "redis_url" in data and not isinstance(data["redis_url"], str):
        data["redis_url"] = redis_url_of(data["redis_url"])
    for name in ("job_timeout", "keep_result", "shutdown_grace"):
        if isinstance(data.get(name), timedelta):
            data[name] = data[name].total_seconds()
    if not data.get("shutdown_grace") and "shutdown_grace" in data:
        del data["shutdown_grace"]  # arq's job_completion_wait=0: keep our grace period
    if raw.get("keep_result_forever"):
        data["keep_result"] = FOREVER_SECONDS
    if arq:
        functions = [arq_function(fn) for fn in data.get("functions") or ()]
        if raw.get("retry_jobs") is False:  # arq: Retry is then a failure like any other
            functions = [_one_try(fn) for fn in functions]
        data["functions"] = functions
    if raw.get("after_job_end") is not None:
        data["on_job_end"] = _in_turn(data.get("on_job_end"), raw["after_job_end"])
    zone = raw.get("timezone")
    if isinstance(zone, tzinfo) and data.get("cron_jobs"):
        data["cron_jobs"] = [_in_zone(job, zone) for job in data["cron_jobs"]]
    warn_ignored(no_effect, unknown, fields)
    return data


def _one_try(fn: Task[Any, Any]) -> Task[Any, Any]:
    single = copy.copy(fn)  # the caller's own object keeps its tries
    single.max_tries = 1
    return single


def _in_zone(job: Any, zone: tzinfo) -> Any:
    """An arq cron job without a timezone of its own follows the worker's ``timezone``."""
    return replace(job, timezone=zone) if getattr(job, "follows_worker_timezone", False) else job


def warn_ignored(no_effect: list[str], unknown: list[str], fields: Iterable[str]) -> None:
    """The one warning line naming every ignored setting (and a likely meant one)."""
    parts = []
    if no_effect:
        reasons = ", ".join(f"{name} ({ARQ_IGNORED[name]})" for name in sorted(no_effect))
        parts.append(f"arq settings with no effect here: {reasons}")
    if unknown:
        names = []
        for name in sorted(unknown):
            hint = difflib.get_close_matches(name, sorted(ARQ_NAMES | set(fields)), n=1)
            names.append(f"{name} (did you mean {hint[0]!r}?)" if hint else name)
        parts.append(f"not settings at all (arq drops them too): {', '.join(names)}")
    if parts:
        log.warning("ignored settings: %s", "; ".join(parts))
