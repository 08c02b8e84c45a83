"""What every adapter imports: key names, the benchmark task bodies and the ``Adapter`` interface.

Runs inside the peer's own venv (stdlib + redis-py). An adapter module (``<system>_bench.py``)
defines the benchmark tasks in the peer's own idiom, the worker entry point its CLI loads, and
an ``Adapter`` subclass with the client side (enqueue, batch enqueue, result round trip) and the
worker command line. It ends with::

    if __name__ == "__main__":
        from scenarios import main
        main("<system>_bench")

Every task does exactly one ``INCR`` (or, for latency, one ``HSET``) through a plain redis-py
client of its own, plus one ``SET`` for the first job (its start time) and the N-th count (the
time it was counted); that makes the drain time exact without polling error.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

import redis.asyncio as aioredis

COUNTER_KEY = "bench:counter"
FIRST_KEY = "bench:first_start"
LAST_KEY = "bench:last_count"
LATENCY_KEY = "bench:latency"
SLEEP_S = 0.05

#: Read by the task modules in the worker process (the harness sets them per run).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET = int(os.environ.get("BENCH_TARGET") or 0)
CONCURRENCY = int(os.environ["BENCH_CONCURRENCY"]) if os.environ.get("BENCH_CONCURRENCY") else None
#: burst mode (the worker exits once the queue is empty), for peers that take it from settings
BURST = os.environ.get("BENCH_BURST") == "1"

# -- what the tasks call -----------------------------------------------------------------------

_client: Any = None
_client_loop: Any = None


def counter_client() -> Any:
    """A plain redis-py client of the task's own (one per process and event loop)."""
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    if _client is None or _client_loop is not loop:
        _client = aioredis.Redis.from_url(REDIS_URL)
        _client_loop = loop
    return _client


async def count_job(started: float) -> None:
    """The no-op job's body: one INCR; the 1st records its start, the N-th its count time."""
    r = counter_client()
    n = await r.incr(COUNTER_KEY)
    if n == 1:
        await r.set(FIRST_KEY, repr(started))
    if n == TARGET:
        await r.set(LAST_KEY, repr(time.time()))


async def sleep_job(started: float) -> None:
    await asyncio.sleep(SLEEP_S)
    await count_job(started)


async def stamp_job(i: int, started: float) -> None:
    await counter_client().hset(LATENCY_KEY, str(i), repr(started))


def bin_path(script: str) -> str:
    """A console script of this venv (the one whose python runs the adapter)."""
    return os.path.join(os.path.dirname(sys.executable), script)


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# -- the adapter interface --------------------------------------------------------------------


class Adapter:
    """Client side of one system. ``kind`` is "noop" or "sleep"; ``stamp`` takes an int."""

    name = "?"
    default_concurrency = 0
    #: None if enqueue_batch works, else why it is n/a
    batch_na: str | None = None
    #: None if round_trip works, else why it is n/a
    result_na: str | None = None
    #: None if the worker has a burst mode (exit once the queue is empty), else why it is n/a
    burst_na: str | None = None
    #: appended to worker_cmd in burst mode (BENCH_BURST=1 is set too, for settings modules)
    burst_args: tuple[str, ...] = ()
    #: what the batch enqueue uses
    batch_api = ""
    result_api = ""

    async def open(self, url: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    async def enqueue(self, kind: str, *args: Any) -> None:
        raise NotImplementedError

    async def enqueue_batch(self, kind: str, count: int) -> None:
        raise NotImplementedError

    async def round_trip(self, i: int) -> Any:
        raise NotImplementedError

    async def last_finished_at(self) -> float | None:
        """When the last job of a drain was recorded as finished (epoch s), from the system's
        own job records after the run; None where the system keeps no such time."""
        return None

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        raise NotImplementedError

    def worker_env(self, url: str, concurrency: int | None) -> dict[str, str]:
        return {}

    def notes(self) -> dict[str, Any]:
        """Extra facts reported with the round trip (e.g. waits that ran into a timeout)."""
        return {}
