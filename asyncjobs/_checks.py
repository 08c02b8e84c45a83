"""Checks of enqueue option values, one clear error per option (enqueue and workflows share
them, so an option means the same everywhere)."""

from __future__ import annotations

import math
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from ._store import PRIORITY_LIMIT

#: The longest delay an option may ask for (a century): beyond it, a typo is more likely.
MAX_SECONDS = 100 * 365 * 86_400.0


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise TypeError(
            f"{name} takes seconds (an int or a float) or a timedelta, not "
            f"{type(value).__name__} {value!r}"
        )
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise ValueError(f"{name} must be between 0 and {MAX_SECONDS:.0f} seconds, got {value!r}")
    return seconds


def seconds_option(value: Any, name: str) -> int:
    """A duration option (``_defer_by``, ``_expires``) in whole ms; 0 when not given."""
    return 0 if value is None else round(_number(value, name) * 1000)


def positive_seconds_option(value: Any, name: str) -> int:
    """A duration that must be positive (``_timeout``, ``_idempotency_ttl``), in whole ms."""
    ms = round(_number(value, name) * 1000)
    if ms < 1:
        raise ValueError(f"{name} must be at least 0.001 seconds, got {value!r}")
    return ms


def count_option(value: Any, name: str) -> int:
    """A count that must be a whole number of at least 1 (``_max_tries``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} takes a whole number of at least 1, got {value!r}")
    return value


def priority_option(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"_priority takes an int, not {type(value).__name__} {value!r}")
    if not -PRIORITY_LIMIT <= value <= PRIORITY_LIMIT:
        raise ValueError(f"_priority must be within ±{PRIORITY_LIMIT}, got {value}")
    return value


def when_option(value: Any) -> int:
    """``_defer_until``: a datetime (naive = UTC) no more than MAX_SECONDS ahead, in Unix ms."""
    if not isinstance(value, datetime):
        raise TypeError(
            f"_defer_until takes a datetime (naive = UTC), not {type(value).__name__} "
            f"{value!r}; for a delay use _defer_by"
        )
    when = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    try:
        ms = round(when.timestamp() * 1000)
    except (OverflowError, ValueError, OSError):
        ms = None
    if ms is None or ms / 1000 - time.time() > MAX_SECONDS:
        raise ValueError(
            f"_defer_until {value!r} is more than {MAX_SECONDS / 86_400 / 365:.0f} years ahead"
        )
    return ms


def text_option(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise TypeError(f"{name} takes a non-empty str, not {type(value).__name__} {value!r}")
    return str(value)
