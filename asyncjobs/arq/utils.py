"""arq's small helpers: time in ms, durations, timezones, dotted imports, argument strings."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any, overload

from .._arq_compat import import_string
from .constants import timezone_env_vars

logger = logging.getLogger("arq.utils")

__all__ = [
    "args_to_string",
    "as_int",
    "get_tz",
    "import_string",
    "ms_to_datetime",
    "poll",
    "timestamp_ms",
    "to_ms",
    "to_seconds",
    "to_unix_ms",
    "truncate",
]


def as_int(f: float) -> int:
    return round(f)


def timestamp_ms() -> int:
    """Now, in ms since the epoch (this machine's clock)."""
    return as_int(time.time() * 1000)


def to_unix_ms(dt: datetime) -> int:
    """A datetime as ms since the epoch (a naive one is local time, as ``timestamp()`` reads it)."""
    return as_int(dt.timestamp() * 1000)


@lru_cache
def get_tz() -> tzinfo | None:
    """The timezone named by ``$ARQ_TIMEZONE`` (or ``$TIMEZONE``...), None when unset."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for name in timezone_env_vars:
        value = os.getenv(name)
        if value:
            try:
                return ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                logger.warning("unknown timezone: %r", value)
    return None


def ms_to_datetime(unix_ms: int) -> datetime:
    """ms since the epoch → an aware datetime, in the environment's timezone (else UTC)."""
    dt = datetime.fromtimestamp(unix_ms / 1000, tz=timezone.utc)
    tz = get_tz()
    return dt.astimezone(tz) if tz else dt


@overload
def to_ms(td: None) -> None: ...
@overload
def to_ms(td: float | timedelta) -> int: ...
def to_ms(td: float | timedelta | None) -> int | None:
    """Seconds (or a timedelta) → whole ms; None stays None."""
    if td is None:
        return None
    if isinstance(td, timedelta):
        td = td.total_seconds()
    return as_int(td * 1000)


@overload
def to_seconds(td: None) -> None: ...
@overload
def to_seconds(td: float | timedelta) -> float: ...
def to_seconds(td: float | timedelta | None) -> float | None:
    """A timedelta → seconds; a number stays as it is; None stays None."""
    return td.total_seconds() if isinstance(td, timedelta) else td


async def poll(step: float = 0.5) -> AsyncGenerator[float, None]:
    """Yield the seconds elapsed, every ``step`` seconds (arq's polling loop, for its users)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        before = loop.time()
        yield before - start
        await asyncio.sleep(max(0.0, step - (loop.time() - before)))


DEFAULT_CURTAIL = 80


def truncate(s: str, length: int = DEFAULT_CURTAIL) -> str:
    """``s`` cut to ``length`` characters, ending in an ellipsis when cut."""
    return s if len(s) <= length else s[: length - 1] + "…"


def args_to_string(args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    """``1, 'a', key=2``: a call's arguments as arq logs them (cut to 80 characters)."""
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in sorted(kwargs.items())]
    return truncate(", ".join(parts))
