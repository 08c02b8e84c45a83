"""How long to wait before the next try: pure functions, no I/O, tested without Redis."""

from __future__ import annotations

import random
from collections.abc import Callable

#: Delay before try 2 is drawn from [0, BASE]; each later try doubles the ceiling up to CAP.
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 300.0

Backoff = float | int | Callable[[int], float]


def exponential_full_jitter(
    attempt: int, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """``random.uniform(0, min(cap, base * 2 ** (attempt - 1)))`` seconds after try ``attempt``.

    Full jitter spreads a burst of failures (a dependency that went down) over the whole
    window instead of retrying them all in lock step.
    """
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return random.uniform(0.0, ceiling)


def retry_delay(backoff: Backoff | None, attempt: int) -> float:
    """Seconds to wait after failed try ``attempt`` (1-based) under the given backoff."""
    if backoff is None:
        return exponential_full_jitter(attempt)
    if callable(backoff):
        return max(0.0, float(backoff(attempt)))
    return max(0.0, float(backoff))
