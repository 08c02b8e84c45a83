"""Long-lived loops that survive every fault: one backoff, one outage log, one supervisor.

A worker is a handful of loops (claims, leases, cancels, acks, cron). Each runs as a series of
steps under ``Supervisor.run``: a step that raises is retried after a backoff, never left dead.
Redis outages (``RedisUnavailable``) are reported by ``OutageLog`` as one line when the first
loop loses Redis, one when the last one has it back (with the duration), and a few reminders
in between; no traceback, since they are expected. Any other error is a bug or a bad setting:
logged with its traceback once, counted after that, and if a loop keeps failing that way for
``give_up_after`` seconds the supervisor raises ``WorkerFailed`` so that the process exits
non-zero and its own supervisor (systemd, Kubernetes) restarts it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._errors import RedisUnavailable, WorkerFailed

T = TypeVar("T")

#: Minutes into an outage at which it is logged again (then once an hour).
REMINDERS_AT_MINUTES = (1, 5, 15, 30, 60)


class Backoff:
    """Delays between tries of a failing call: ``first`` seconds, doubling up to ``cap``,
    each drawn with full jitter so that many clients do not retry in step."""

    def __init__(self, first: float = 0.05, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def delay(self) -> float:
        ceiling = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    async def sleep(self) -> None:
        await asyncio.sleep(self.delay())

    def reset(self) -> None:
        self.failures = 0


class OutageLog:
    """Says when Redis became unavailable to any loop, and when every loop has it back.

    Each caller that hits an outage calls ``begin`` once, ``still`` on each further failure and
    ``end`` when its call went through; the outage is over when every caller has ended.
    """

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._failing: dict[str, int] = {}  # part → callers failing now
        self._started: float | None = None
        self._reminded = 0
        self.outages = 0  # how many began (for tests and metrics)

    @property
    def ongoing(self) -> bool:
        return self._started is not None

    def begin(self, part: str, exc: BaseException) -> None:
        self._failing[part] = self._failing.get(part, 0) + 1
        if self._started is None:
            self._started, self._reminded = time.monotonic(), 0
            self.outages += 1
            self.log.warning("lost Redis (noticed by %s): %s; retrying with backoff", part, exc)
        else:
            self.still(part, exc)

    def still(self, part: str, exc: BaseException) -> None:
        if self._started is None:
            return
        minutes = (time.monotonic() - self._started) / 60
        n = self._reminded
        due = (
            REMINDERS_AT_MINUTES[n]
            if n < len(REMINDERS_AT_MINUTES)
            else REMINDERS_AT_MINUTES[-1] * (n - len(REMINDERS_AT_MINUTES) + 2)
        )
        if minutes >= due:
            self._reminded += 1
            self.log.warning("Redis still lost after %.0f min (%s): %s", minutes, part, exc)

    def end(self, part: str) -> None:
        left = self._failing.get(part, 0) - 1
        if left > 0:
            self._failing[part] = left
            return
        self._failing.pop(part, None)
        if not self._failing and self._started is not None:
            took = time.monotonic() - self._started
            self._started = None
            self.log.info("Redis is back after %.1fs", took)


class Supervisor:
    """Runs loops step by step, so that no fault ends one silently (see the module doc)."""

    def __init__(
        self, log: logging.Logger, outages: OutageLog, *, give_up_after: float = 60.0
    ) -> None:
        self.log = log
        self.outages = outages
        self.give_up_after = give_up_after

    async def run(self, part: str, step: Callable[[], Awaitable[bool | None]]) -> None:
        """Call ``step`` again and again until it returns True; survive whatever it raises."""
        backoff = Backoff()
        failing_since: float | None = None
        last_error = ""
        in_outage = False
        try:
            while True:
                try:
                    done = await step()
                except RedisUnavailable as exc:
                    if in_outage:
                        self.outages.still(part, exc)
                    else:
                        self.outages.begin(part, exc)
                        in_outage = True
                    failing_since = None
                    await backoff.sleep()
                    continue
                except Exception as exc:
                    now = time.monotonic()
                    if failing_since is None or type(exc).__name__ != last_error:
                        # a traceback once per kind of error, not once per retry
                        self.log.error("%s failed; retrying with backoff", part, exc_info=exc)
                        failing_since = failing_since or now
                        last_error = type(exc).__name__
                    elif now - failing_since > self.give_up_after:
                        raise WorkerFailed(
                            f"{part} kept failing for {now - failing_since:.0f}s "
                            f"({type(exc).__name__}: {exc}); the worker stops so that its "
                            "supervisor can restart it"
                        ) from exc
                    await backoff.sleep()
                    continue
                backoff.reset()
                failing_since = None
                if in_outage:
                    self.outages.end(part)
                    in_outage = False
                if done:
                    return
        finally:
            if in_outage:
                self.outages.end(part)

    async def retry(self, part: str, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` until Redis takes it: outages are waited out with backoff (and logged
        by the outage log); any other error is raised to the caller."""
        backoff = Backoff()
        in_outage = False
        try:
            while True:
                try:
                    return await call()
                except RedisUnavailable as exc:
                    if in_outage:
                        self.outages.still(part, exc)
                    else:
                        self.outages.begin(part, exc)
                        in_outage = True
                    await backoff.sleep()
        finally:
            if in_outage:
                self.outages.end(part)
