"""Scenario driver shared by every adapter. Runs inside the peer's own venv: stdlib + redis-py.

An adapter module (``<system>_bench.py``) defines the benchmark tasks in the peer's own idiom,
the worker entry point its CLI loads, and an ``Adapter`` subclass with the client side
(enqueue, batch enqueue, result round trip) and the worker command line. It ends with::

    if __name__ == "__main__":
        from bench_common import main
        main("<system>_bench")

``main`` imports the adapter under its module name (not ``__main__``), so the client and the
worker CLI see the same task names, runs one scenario and prints one JSON object per metric on
stdout. Every task does exactly one ``INCR`` (or, for latency, one ``HSET``) through a plain
redis-py client of its own, plus one ``SET`` for the first job (its start time) and the N-th
count (the time it was counted); that makes the drain time exact without polling error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

COUNTER_KEY = "bench:counter"
FIRST_KEY = "bench:first_start"
LAST_KEY = "bench:last_count"
LATENCY_KEY = "bench:latency"
SLEEP_S = 0.05
BATCH_CHUNK = 1000
#: concurrent single enqueues when pre-filling a queue for a peer without a batch API
PREFILL_PARALLEL = 50
POLL_S = 0.02
#: SIGTERM → SIGKILL grace for a worker (taskiq's worker process does not exit on its own)
STOP_GRACE_S = 10.0

#: Read by the task modules in the worker process (the harness sets them per run).
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TARGET = int(os.environ.get("BENCH_TARGET") or 0)
CONCURRENCY = int(os.environ["BENCH_CONCURRENCY"]) if os.environ.get("BENCH_CONCURRENCY") else None

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


# -- the adapter interface --------------------------------------------------------------------


class Adapter:
    """Client side of one system. ``kind`` is "noop" or "sleep"; ``stamp`` takes an int."""

    name = "?"
    default_concurrency = 0
    #: None if enqueue_batch works, else why it is n/a
    batch_na: str | None = None
    #: None if round_trip works, else why it is n/a
    result_na: str | None = None
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

    def worker_cmd(self, url: str, concurrency: int | None) -> list[str]:
        raise NotImplementedError

    def worker_env(self, url: str, concurrency: int | None) -> dict[str, str]:
        return {}

    def notes(self) -> dict[str, Any]:
        """Extra facts reported with the round trip (e.g. waits that ran into a timeout)."""
        return {}


# -- worker processes -------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += _children(p)
    return tree


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Worker:
    """The peer's worker CLI as a subprocess; stopped by its own PID (and its children's)."""

    def __init__(self, cmd: list[str], env: dict[str, str], logdir: str, label: str) -> None:
        self.cmd = cmd
        self.env = env
        fd, self.log_path = tempfile.mkstemp(prefix=f"{label}-", suffix=".log", dir=logdir)
        os.close(fd)
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def start(self) -> Worker:
        with open(self.log_path, "ab") as out:
            self.spawned_at = time.time()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=os.path.dirname(os.path.abspath(__file__)),
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C does not reach it; we stop it
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kb(self) -> tuple[int, int, int]:
        """(sum VmRSS, sum VmHWM, process count) over the worker's process tree."""
        assert self.proc is not None
        tree = process_tree(self.proc.pid)
        return (
            sum(_status_kb(p, "VmRSS") for p in tree),
            sum(_status_kb(p, "VmHWM") for p in tree),
            len(tree),
        )

    def log_tail(self, lines: int = 25) -> str:
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self) -> None:
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid) if self.alive() else []
        cmdlines = {p: _cmdline(p) for p in tree}
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # children (taskiq's worker processes) that outlived their parent: by PID, if unchanged
        deadline = time.monotonic() + STOP_GRACE_S
        for p in tree[1:]:
            while _cmdline(p) == cmdlines[p] and cmdlines[p] and time.monotonic() < deadline:
                time.sleep(0.05)
            if _cmdline(p) == cmdlines[p] and cmdlines[p]:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
        self.proc = None


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def start_profiler(worker: Worker) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY (py-spy binary) and BENCH_PYSPY_OUT set: sample the worker's drain."""
    binary, out = os.environ.get("BENCH_PYSPY"), os.environ.get("BENCH_PYSPY_OUT")
    if not binary or not out or worker.proc is None:
        return None
    cmd = [binary, "record", "--pid", str(worker.proc.pid), "--rate", "250", "--format", "raw"]
    return subprocess.Popen([*cmd, "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- scenarios --------------------------------------------------------------------------------


def emit(system: str, scenario: str, metric: str, unit: str, value: Any, **extra: Any) -> None:
    better = "higher" if unit == "jobs/s" else "lower"
    line = {"system": system, "scenario": scenario, "metric": metric, "unit": unit}
    line.update(value=value, better=better, **extra)
    print(json.dumps(line), flush=True)


def emit_na(system: str, scenario: str, reason: str) -> None:
    print(json.dumps({"system": system, "scenario": scenario, "na": reason}), flush=True)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


class Runner:
    def __init__(self, ad: Adapter, args: argparse.Namespace) -> None:
        self.ad = ad
        self.args = args
        self.url = args.url
        self.admin: Any = aioredis.Redis.from_url(self.url)
        self.logdir = args.logdir or tempfile.mkdtemp(prefix="bench-logs-")

    def log(self, msg: str) -> None:
        print(f"[{self.ad.name}] {msg}", file=sys.stderr, flush=True)

    async def used_memory(self) -> int:
        return int((await self.admin.info("memory"))["used_memory"])

    def worker(self, concurrency: int | None, target: int, label: str) -> Worker:
        env = {
            **os.environ,
            "BENCH_REDIS_URL": self.url,
            "BENCH_TARGET": str(target),
            "BENCH_CONCURRENCY": "" if concurrency is None else str(concurrency),
            "PYTHONPATH": os.pathsep.join(
                p
                for p in (os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH"))
                if p
            ),
            **self.ad.worker_env(self.url, concurrency),
        }
        cmd = self.ad.worker_cmd(self.url, concurrency)
        return Worker(cmd, env, self.logdir, f"{self.ad.name}-{label}-worker")

    async def prefill(self, kind: str, n: int) -> None:
        if self.ad.batch_na is None:
            for start in range(0, n, BATCH_CHUNK):
                await self.ad.enqueue_batch(kind, min(BATCH_CHUNK, n - start))
            return
        for start in range(0, n, PREFILL_PARALLEL):
            k = min(PREFILL_PARALLEL, n - start)
            await asyncio.gather(*(self.ad.enqueue(kind) for _ in range(k)))

    async def timed(self, fn: Callable[[], Awaitable[Any]], n: int) -> float:
        t0 = time.perf_counter()
        await fn()
        return n / (time.perf_counter() - t0)

    # a. one awaited enqueue at a time
    async def enqueue_seq(self) -> None:
        n = self.args.n
        await self.ad.enqueue("noop")  # warm-up (scripts, connections)

        async def go() -> None:
            for _ in range(n):
                await self.ad.enqueue("noop")

        emit(self.ad.name, "enqueue_seq", "throughput", "jobs/s", await self.timed(go, n), n=n)

    # b. the peer's batch API, chunks of 1000
    async def enqueue_batch(self) -> None:
        if self.ad.batch_na is not None:
            emit_na(self.ad.name, "enqueue_batch", self.ad.batch_na)
            return
        n = self.args.n
        await self.ad.enqueue_batch("noop", 1)

        async def go() -> None:
            for start in range(0, n, BATCH_CHUNK):
                await self.ad.enqueue_batch("noop", min(BATCH_CHUNK, n - start))

        emit(
            self.ad.name,
            "enqueue_batch",
            "throughput",
            "jobs/s",
            await self.timed(go, n),
            n=n,
            api=self.ad.batch_api,
        )

    # c/d/memory. N pre-enqueued jobs, one worker process started after the fill
    async def drain(self, scenario: str, kind: str, n: int, concurrency: int | None) -> None:
        base = await self.used_memory()
        await self.prefill(kind, n)
        queued = await self.used_memory()
        worker = self.worker(concurrency, n, scenario).start()
        profiler = start_profiler(worker)
        try:
            deadline = time.monotonic() + 120 + n / 100
            while True:
                counted = int(await self.admin.get(COUNTER_KEY) or 0)
                # the N-th job SETs its count time just after its INCR: wait for that too
                if counted >= n and await self.admin.exists(LAST_KEY):
                    break
                if not worker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{scenario}: stalled at {counted}/{n} (worker alive: {worker.alive()})"
                        f"; worker log tail:\n{worker.log_tail()}"
                    )
                await asyncio.sleep(POLL_S)
            first = float(await self.admin.get(FIRST_KEY))
            last = float(await self.admin.get(LAST_KEY))
            await asyncio.sleep(0.5)  # anything counted twice would show up here
            counted = int(await self.admin.get(COUNTER_KEY))
            rss, hwm, procs = worker.rss_kb()
            after = await self.used_memory()
        finally:
            stop_profiler(profiler)
            worker.stop()
        if counted != n:
            raise RuntimeError(f"{scenario}: counter {counted}, expected {n}")
        conc = concurrency or self.ad.default_concurrency
        extra = {"n": n, "concurrency": conc}
        name = self.ad.name
        emit(
            name,
            scenario,
            "throughput (1st start → N-th count)",
            "jobs/s",
            n / (last - first),
            **extra,
        )
        if kind == "sleep":
            emit(name, scenario, "elapsed (ideal 1.0 s)", "s", last - first, **extra)
        emit(
            name,
            scenario,
            "worker startup (spawn → 1st job)",
            "s",
            first - worker.spawned_at,
            **extra,
        )
        if scenario == "memory":
            mb = 1024 * 1024
            emit(
                name,
                scenario,
                "worker RSS after the run",
                "MB",
                rss / 1024,
                processes=procs,
                **extra,
            )
            emit(
                name,
                scenario,
                "worker peak RSS (VmHWM)",
                "MB",
                hwm / 1024,
                processes=procs,
                **extra,
            )
            emit(name, scenario, "Redis used_memory, N queued", "MB", (queued - base) / mb, **extra)
            emit(
                name,
                scenario,
                "Redis used_memory, after the run",
                "MB",
                (after - base) / mb,
                **extra,
            )

    # e/f. one idle worker: enqueue → start latency, then result round trip
    async def latency(self) -> None:
        name = self.ad.name
        worker = self.worker(None, 0, "latency").start()
        try:
            await self.ad.enqueue("stamp", -1)  # warm-up: wait until the worker runs it
            deadline = time.monotonic() + 60
            while not await self.admin.hexists(LATENCY_KEY, "-1"):
                if not worker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"latency warm-up job never ran:\n{worker.log_tail()}")
                await asyncio.sleep(POLL_S)
            await asyncio.sleep(0.2)
            count, gap = self.args.latency_jobs, self.args.gap_ms / 1000
            enqueued: list[float] = []
            for i in range(count):
                t0 = time.perf_counter()
                enqueued.append(time.time())
                await self.ad.enqueue("stamp", i)
                await asyncio.sleep(max(0.0, gap - (time.perf_counter() - t0)))
            deadline = time.monotonic() + 60
            while await self.admin.hlen(LATENCY_KEY) < count + 1:
                if not worker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"latency jobs did not all start:\n{worker.log_tail()}")
                await asyncio.sleep(POLL_S)
            started = await self.admin.hgetall(LATENCY_KEY)
            lat = [(float(started[str(i).encode()]) - enqueued[i]) * 1000 for i in range(count)]
            for p in (50, 95, 99):
                emit(name, "latency", f"p{p}", "ms", pct(lat, p), n=count, gap_ms=self.args.gap_ms)
            if self.ad.result_na is not None:
                emit_na(name, "round_trip", self.ad.result_na)
                return
            if await self.ad.round_trip(-1) != -1:  # warm-up
                raise RuntimeError("round trip warm-up returned the wrong value")
            rtt: list[float] = []
            budget_end = time.monotonic() + self.args.rt_budget_s
            for i in range(self.args.latency_jobs):
                if i >= 20 and time.monotonic() > budget_end:
                    break
                t0 = time.perf_counter()
                value = await self.ad.round_trip(i)
                rtt.append((time.perf_counter() - t0) * 1000)
                if value != i:
                    raise RuntimeError(f"round trip returned {value!r}, expected {i}")
            for p in (50, 99):
                emit(
                    name,
                    "round_trip",
                    f"p{p}",
                    "ms",
                    pct(rtt, p),
                    n=len(rtt),
                    api=self.ad.result_api,
                    **self.ad.notes(),
                )
        finally:
            worker.stop()

    async def run(self, scenario: str) -> None:
        args = self.args
        await self.admin.flushdb()
        await self.ad.open(self.url)
        try:
            if scenario == "enqueue_seq":
                await self.enqueue_seq()
            elif scenario == "enqueue_batch":
                await self.enqueue_batch()
            elif scenario == "drain_default":
                await self.drain(scenario, "noop", args.n, None)
            elif scenario == "drain_c100":
                await self.drain(scenario, "noop", args.n, 100)
            elif scenario == "sleep_drain":
                await self.drain(scenario, "sleep", args.sleep_jobs, 100)
            elif scenario == "latency":
                await self.latency()
            elif scenario == "memory":
                await self.drain(scenario, "noop", args.memory_jobs, 100)
            else:
                raise SystemExit(f"unknown scenario {scenario!r}")
        finally:
            await self.ad.close()
            await self.admin.flushdb()
            await self.admin.aclose()


def main(module: str) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--sleep-jobs", type=int, default=2_000)
    parser.add_argument("--memory-jobs", type=int, default=100_000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--rt-budget-s", type=float, default=20.0)
    parser.add_argument("--logdir")
    parser.add_argument("--info", action="store_true", help="print the adapter's facts and exit")
    args = parser.parse_args()
    # Adapter modules read the URL at import (module-level worker objects): set it first.
    global REDIS_URL
    REDIS_URL = os.environ["BENCH_REDIS_URL"] = args.url
    ad: Adapter = importlib.import_module(module).Adapter()
    if args.info:
        print(
            json.dumps(
                {
                    "system": ad.name,
                    "default_concurrency": ad.default_concurrency,
                    "batch_na": ad.batch_na,
                    "result_na": ad.result_na,
                    "batch_api": ad.batch_api,
                    "result_api": ad.result_api,
                    "worker_cmd": ad.worker_cmd(args.url, None),
                }
            )
        )
        return
    asyncio.run(Runner(ad, args).run(args.scenario))
