"""Retry delays: pure maths, no Redis."""

from __future__ import annotations

import random

from asyncjobs._backoff import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    exponential_full_jitter,
    retry_delay,
)


def test_full_jitter_stays_under_the_exponential_ceiling() -> None:
    random.seed(1)
    for attempt in range(1, 30):
        ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        samples = [exponential_full_jitter(attempt) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8, "the draw covers the whole window"


def test_fixed_and_callable_backoff() -> None:
    assert retry_delay(2.5, 7) == 2.5
    assert retry_delay(lambda attempt: attempt * 10, 3) == 30
    assert retry_delay(lambda attempt: -1, 3) == 0
