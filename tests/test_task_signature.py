"""@task refuses, when it decorates, a function whose first parameter cannot take the context."""

from __future__ import annotations

from typing import Any

import pytest

from asyncjobs import Context, WorkerSettings, task


async def no_parameters() -> None: ...


async def keyword_only(*, to: str) -> None: ...


async def only_kwargs(**options: Any) -> None: ...


@pytest.mark.parametrize(
    ("fn", "suggestion"),
    [
        (no_parameters, "async def no_parameters(ctx: Context) -> None"),
        (keyword_only, "async def keyword_only(ctx: Context, *, to: str) -> None"),
        (only_kwargs, "async def only_kwargs(ctx: Context, **options: Any) -> None"),
    ],
)
def test_a_task_without_a_context_parameter_is_refused(fn: Any, suggestion: str) -> None:
    for decorate in (task, task(name="renamed", max_tries=3)):
        with pytest.raises(TypeError, match="must take the job context") as raised:
            decorate(fn)
        assert suggestion in str(raised.value)


def test_plain_functions_in_worker_settings_are_checked_too() -> None:
    with pytest.raises(TypeError, match="must take the job context"):
        WorkerSettings(functions=[no_parameters])


async def test_every_shape_that_takes_the_context_is_accepted() -> None:
    async def named(ctx: Context, a: int) -> int:
        return a

    async def positional_only(ctx: Context, /, a: int = 1) -> int:
        return a

    async def star_args(*args: Any) -> int:
        return len(args)

    async def defaulted(ctx: Any = None) -> int:
        return 0

    for fn in (named, positional_only, star_args, defaulted):
        assert task(fn).name == fn.__name__
    assert await task(star_args)(None, 1, 2) == 3
