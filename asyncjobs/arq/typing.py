"""arq's type names, for code that annotates with them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal, Protocol, Union

__all__ = (
    "WEEKDAYS",
    "OptionType",
    "SecondsTimedelta",
    "StartupShutdown",
    "WeekdayOptionType",
    "WorkerCoroutine",
    "WorkerSettingsType",
)

OptionType = Union[None, set[int], int]  # noqa: UP007 (runs on 3.10: a real alias)
WEEKDAYS = "mon", "tues", "wed", "thurs", "fri", "sat", "sun"
WeekdayOptionType = Union[  # noqa: UP007
    OptionType, Literal["mon", "tues", "wed", "thurs", "fri", "sat", "sun"]
]
SecondsTimedelta = Union[int, float, timedelta]  # noqa: UP007


class WorkerCoroutine(Protocol):
    __qualname__: str

    async def __call__(self, ctx: Any, *args: Any, **kwargs: Any) -> Any: ...


class StartupShutdown(Protocol):
    __qualname__: str

    async def __call__(self, ctx: Any) -> Any: ...


class WorkerSettingsBase(Protocol):
    functions: Sequence[Any]  # coroutines and func(...); cron.py and worker.py import this module
    cron_jobs: Sequence[Any] | None = None
    on_startup: StartupShutdown | None = None
    on_shutdown: StartupShutdown | None = None


WorkerSettingsType = Union[dict[str, Any], type[WorkerSettingsBase]]  # noqa: UP007
