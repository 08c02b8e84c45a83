"""The @task decorator and Task: a typed, awaitable task with its per-task defaults."""

from __future__ import annotations

import hashlib
import inspect
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import TypeAdapter

from ._backoff import Backoff
from ._workflow import Signature

P = ParamSpec("P")
R = TypeVar("R")

RateLimit = str | tuple[int, float]
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_UNIT_SECONDS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNIT_SECONDS |= {"h": 3600, "hour": 3600}


def rate_interval_ms(rate: RateLimit) -> int:
    """Milliseconds between two starts for ``"100/s"``, ``"5/10s"``, ``"30/m"``, ``(n, secs)``.

    Rounded up, so the enforced rate never exceeds the one asked for.
    """
    if isinstance(rate, str):
        match = _RATE.match(rate)
        if match is None:
            raise ValueError(f"rate_limit {rate!r}: write it as '100/s', '5/10s', '30/m' or '2/h'")
        count = int(match.group(1))
        period = float(match.group(2) or 1) * _UNIT_SECONDS[match.group(3)]
    else:
        count, period = int(rate[0]), float(rate[1])
    if count < 1 or period <= 0:
        raise ValueError(f"rate_limit {rate!r} must allow at least one start per positive period")
    return max(1, math.ceil(period * 1000 / count))


def _positional_range(signature: inspect.Signature) -> tuple[int, int] | None:
    """(fewest, most) positional arguments after ctx, for a function with only plain
    positional parameters; None when binding needs the full rules (kw-only, *args, **kwargs)."""
    params = list(signature.parameters.values())[1:]
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind not in plain for p in params):
        return None
    required = sum(1 for p in params if p.default is inspect.Parameter.empty)
    return required, len(params)


def _check_takes_context(fn: Callable[..., Any]) -> None:
    """Refuse, at decoration, a function whose first parameter cannot take the job context
    (the worker calls ``fn(ctx, *args, **kwargs)``; otherwise every try fails on the worker)."""
    signature = inspect.signature(fn)
    params = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if params and params[0].kind in (*positional, inspect.Parameter.VAR_POSITIONAL):
        return
    name = getattr(fn, "__name__", repr(fn))
    rest = str(_unquoted(signature))[1:]  # "(*, a: int) -> None" without its "("
    raise TypeError(
        f"task {name!r} must take the job context as its first parameter: write "
        f"`async def {name}(ctx: Context{', ' if params else ''}{rest}`"
    )


class _Source(str):
    """Annotation text shown as written (``int``), not as a string literal (``'int'``)."""

    def __repr__(self) -> str:
        return str(self)


def _unquoted(signature: inspect.Signature) -> inspect.Signature:
    """The signature with string annotations (``from __future__ import annotations``) bare."""

    def bare(annotation: Any) -> Any:
        return _Source(annotation) if isinstance(annotation, str) else annotation

    params = [p.replace(annotation=bare(p.annotation)) for p in signature.parameters.values()]
    return signature.replace(parameters=params, return_annotation=bare(signature.return_annotation))


def _adapter_for(annotation: Any) -> TypeAdapter[Any] | None:
    """A validator for one annotation, or None when there is nothing worth checking."""
    if annotation in (inspect.Parameter.empty, Any, None, type(None), object):
        return None
    try:
        return TypeAdapter(annotation)
    except Exception:  # an annotation pydantic cannot build a schema for: pass values through
        return None


class Task(Generic[P, R]):
    """A registered task. Awaiting ``task(ctx, *args)`` runs the function directly (for tests)."""

    def __init__(
        self,
        fn: Callable[Concatenate[Any, P], Awaitable[R]],
        *,
        name: str | None = None,
        queue: str | None = None,
        max_tries: int | None = None,
        timeout: float | None = None,
        soft_timeout: float | None = None,
        backoff: Backoff | None = None,
        retry_on: tuple[type[BaseException], ...] | None = None,
        unique: bool = False,
        idempotency_ttl: float | None = None,
        max_concurrency: int | None = None,
        singleton: bool = False,
        concurrency_key: Callable[..., str] | None = None,
        rate_limit: RateLimit | None = None,
    ) -> None:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(
                f"@task needs an `async def` function; {getattr(fn, '__name__', fn)!r} is not one"
            )
        _check_takes_context(fn)
        if max_tries is not None and max_tries < 1:
            raise ValueError("max_tries counts executions and must be at least 1")
        self.fn = fn
        self.name = name or fn.__name__
        self.queue = queue
        self.max_tries = max_tries
        self.timeout = timeout
        if soft_timeout is not None and not soft_timeout > 0:
            raise ValueError("soft_timeout is seconds into a try and must be positive")
        if soft_timeout is not None and timeout is not None and soft_timeout >= timeout:
            raise ValueError(
                f"soft_timeout ({soft_timeout}s) must be shorter than timeout ({timeout}s): it "
                "warns the task before the timeout cancels it"
            )
        self.soft_timeout = soft_timeout
        self.backoff = backoff
        self.retry_on = retry_on
        self.unique = unique
        self.idempotency_ttl = idempotency_ttl
        if singleton:
            max_concurrency = 1
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if concurrency_key is not None and max_concurrency is None:
            raise ValueError("concurrency_key needs max_concurrency (or singleton=True)")
        self.max_concurrency = max_concurrency
        self.concurrency_key = concurrency_key
        self.rate_limit = rate_limit
        self.rate_interval_ms = rate_interval_ms(rate_limit) if rate_limit is not None else 0
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__wrapped__ = fn
        self._signature = inspect.signature(fn)
        self._positional_range = _positional_range(self._signature)
        self._validators: dict[str, TypeAdapter[Any]] | None = None
        self._result_adapter: TypeAdapter[Any] | bool | None = False

    def __call__(self, ctx: Any, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        return self.fn(ctx, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def s(self, *args: Any, **kwargs: Any) -> Signature[R]:
        """A signature for workflows; in a chain it gets the previous result as first argument.

        Underscore keywords (``_priority``, ``_max_tries``, ``_timeout``, ``_queue_name``) are
        enqueue options, as with ``Queue.enqueue``.
        """
        options = {k: kwargs.pop(k) for k in list(kwargs) if k.startswith("_")}
        return Signature(self, args, kwargs, options)

    def si(self, *args: P.args, **kwargs: P.kwargs) -> Signature[R]:
        """An immutable signature: all arguments given (checked by mypy), no previous result.

        Add options with ``.set(priority=..., max_tries=...)``.
        """
        return Signature(self, args, dict(kwargs), {}, immutable=True)

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise TypeError now, at enqueue, if the arguments cannot bind to the function."""
        span = self._positional_range
        if not kwargs and span is not None and span[0] <= len(args) <= span[1]:
            return  # plain positional call of a plain function: nothing more to check
        try:
            self._signature.bind(None, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"wrong arguments for task {self.name!r}: {exc}") from None

    def validate_arguments(
        self, args: list[Any], kwargs: dict[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        """Turn decoded JSON back into the annotated types (pydantic models, dates...)."""
        if self._validators is None:
            hints = inspect.get_annotations(self.fn, eval_str=True)
            params = list(self._signature.parameters.values())[1:]
            self._validators = {
                p.name: a for p in params if (a := _adapter_for(hints.get(p.name, p.empty)))
            }
        if not self._validators:
            return args, kwargs
        bound = self._signature.bind(None, *args, **kwargs)
        for name, adapter in self._validators.items():
            if name in bound.arguments:
                param = self._signature.parameters[name]
                value = bound.arguments[name]
                if param.kind is param.VAR_POSITIONAL:
                    bound.arguments[name] = tuple(adapter.validate_python(v) for v in value)
                elif param.kind is param.VAR_KEYWORD:
                    bound.arguments[name] = {
                        k: adapter.validate_python(v) for k, v in value.items()
                    }
                else:
                    bound.arguments[name] = adapter.validate_python(value)
        return list(bound.args[1:]), dict(bound.kwargs)

    def validate_result(self, value: Any) -> Any:
        """Turn a stored JSON result back into the annotated return type."""
        if self._result_adapter is False:
            hints = inspect.get_annotations(self.fn, eval_str=True)
            self._result_adapter = _adapter_for(hints.get("return", inspect.Parameter.empty))
        if isinstance(self._result_adapter, TypeAdapter):
            return self._result_adapter.validate_python(value)
        return value

    def unique_job_id(self, payload: bytes) -> str:
        """arq-style unique id: the same task with the same arguments is one job."""
        return f"{self.name}:{hashlib.sha256(payload).hexdigest()[:32]}"


@overload
def task(fn: Callable[Concatenate[Any, P], Awaitable[R]], /) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str | None = None,
    max_tries: int | None = None,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    backoff: Backoff | None = None,
    retry_on: tuple[type[BaseException], ...] | None = None,
    unique: bool = False,
    idempotency_ttl: float | None = None,
    max_concurrency: int | None = None,
    singleton: bool = False,
    concurrency_key: Callable[..., str] | None = None,
    rate_limit: RateLimit | None = None,
) -> Callable[[Callable[Concatenate[Any, P], Awaitable[R]]], Task[P, R]]: ...


def task(
    fn: Callable[Concatenate[Any, P], Awaitable[R]] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str | None = None,
    max_tries: int | None = None,
    timeout: float | None = None,
    soft_timeout: float | None = None,
    backoff: Backoff | None = None,
    retry_on: tuple[type[BaseException], ...] | None = None,
    unique: bool = False,
    idempotency_ttl: float | None = None,
    max_concurrency: int | None = None,
    singleton: bool = False,
    concurrency_key: Callable[..., str] | None = None,
    rate_limit: RateLimit | None = None,
) -> Task[P, R] | Callable[[Callable[Concatenate[Any, P], Awaitable[R]]], Task[P, R]]:
    """Register an ``async def f(ctx, ...)`` as a task, bare (``@task``) or with options.

    ``soft_timeout`` (seconds, shorter than ``timeout``) raises ``SoftTimeout`` inside a try
    that runs that long, so it can save a checkpoint and stop before ``timeout`` cancels it.
    ``max_concurrency`` (or ``singleton=True`` for 1) caps how many jobs of the task run at once
    across all workers, per ``concurrency_key(*args, **kwargs)`` when given; the others wait
    queued. ``rate_limit`` ("100/s", "30/m", ``(count, seconds)``) spaces starts evenly across
    all workers; a job over the limit is deferred to the next free slot.
    """

    def wrap(f: Callable[Concatenate[Any, P], Awaitable[R]]) -> Task[P, R]:
        return Task(
            f,
            name=name,
            queue=queue,
            max_tries=max_tries,
            timeout=timeout,
            soft_timeout=soft_timeout,
            backoff=backoff,
            retry_on=retry_on,
            unique=unique,
            idempotency_ttl=idempotency_ttl,
            max_concurrency=max_concurrency,
            singleton=singleton,
            concurrency_key=concurrency_key,
            rate_limit=rate_limit,
        )

    return wrap(fn) if fn is not None else wrap
