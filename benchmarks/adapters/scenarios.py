"""The scenario driver every adapter runs: one scenario per process, one JSON line per metric.

``main`` imports the adapter under its module name (not ``__main__``), so the client and the
worker CLI see the same task names, runs one scenario against ``--url`` and prints its metrics
on stdout (run.py reads them). Runs inside the peer's own venv: stdlib + redis-py.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import bench_common
import redis.asyncio as aioredis
from bench_common import COUNTER_KEY, FIRST_KEY, LAST_KEY, LATENCY_KEY, Adapter, pct
from redis_cost import cost, read_usage
from worker_process import WorkerProcess, start_profiler, stop_profiler

BATCH_CHUNK = 1000
#: concurrent single enqueues when pre-filling a queue for a peer without a batch API
PREFILL_PARALLEL = 50
POLL_S = 0.02
#: after the N-th count, wait this long and count again: a job that ran twice shows up
SETTLE_S = 0.5
#: drains whose jobs are looked up afterwards for the last ack time (memory: too many jobs)
ACK_TIMED = {"drain_default", "drain_c100", "drain_burst", "sleep_drain"}


def emit(system: str, scenario: str, metric: str, unit: str, value: Any, **extra: Any) -> None:
    better = "higher" if unit == "jobs/s" else "lower"
    line = {"system": system, "scenario": scenario, "metric": metric, "unit": unit}
    line.update(value=value, better=better, **extra)
    print(json.dumps(line), flush=True)


def emit_na(system: str, scenario: str, reason: str) -> None:
    print(json.dumps({"system": system, "scenario": scenario, "na": reason}), flush=True)


class Runner:
    def __init__(self, ad: Adapter, args: argparse.Namespace) -> None:
        self.ad = ad
        self.args = args
        self.url = args.url
        self.admin: Any = aioredis.Redis.from_url(self.url)
        self.logdir = args.logdir or tempfile.mkdtemp(prefix="bench-logs-")

    def log(self, msg: str) -> None:
        print(f"[{self.ad.name}] {msg}", file=sys.stderr, flush=True)

    def emit(self, scenario: str, metric: str, unit: str, value: Any, **extra: Any) -> None:
        emit(self.ad.name, scenario, metric, unit, value, **extra)

    async def used_memory(self) -> int:
        return int((await self.admin.info("memory"))["used_memory"])

    def worker(
        self, concurrency: int | None, target: int, label: str, burst: bool = False
    ) -> WorkerProcess:
        here = os.path.dirname(os.path.abspath(__file__))
        env = {
            **os.environ,
            "BENCH_REDIS_URL": self.url,
            "BENCH_TARGET": str(target),
            "BENCH_CONCURRENCY": "" if concurrency is None else str(concurrency),
            "BENCH_BURST": "1" if burst else "",
            "PYTHONPATH": os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p),
            **self.ad.worker_env(self.url, concurrency),
        }
        cmd = self.ad.worker_cmd(self.url, concurrency)
        if burst:
            cmd += self.ad.burst_args
        return WorkerProcess(cmd, env, self.logdir, f"{self.ad.name}-{label}-worker")

    async def prefill(self, kind: str, n: int) -> None:
        if self.ad.batch_na is None:
            for start in range(0, n, BATCH_CHUNK):
                await self.ad.enqueue_batch(kind, min(BATCH_CHUNK, n - start))
            return
        for start in range(0, n, PREFILL_PARALLEL):
            k = min(PREFILL_PARALLEL, n - start)
            await asyncio.gather(*(self.ad.enqueue(kind) for _ in range(k)))

    async def timed_enqueue(
        self, scenario: str, fn: Callable[[], Awaitable[Any]], n: int, **extra: Any
    ) -> None:
        """Run ``fn`` (enqueues n jobs): jobs/s, and what the enqueues cost Redis."""
        before = await read_usage(self.admin)
        t0 = time.perf_counter()
        await fn()
        took = time.perf_counter() - t0
        spent = cost(before, await read_usage(self.admin), n, Counter())
        self.emit(scenario, "throughput", "jobs/s", n / took, n=n, **extra)
        self.emit_redis_cost(scenario, spent, n=n)

    def emit_redis_cost(self, scenario: str, spent: Any, **extra: Any) -> None:
        self.emit(scenario, "Redis CPU", "µs/job", spent.cpu_us_per_job, **extra)
        self.emit(
            scenario,
            "Redis commands",
            "cmd/job",
            spent.commands_per_job,
            by_command=spent.by_command,
            **extra,
        )

    # a. one awaited enqueue at a time
    async def enqueue_seq(self) -> None:
        n = self.args.n
        await self.ad.enqueue("noop")  # warm-up (scripts, connections)

        async def go() -> None:
            for _ in range(n):
                await self.ad.enqueue("noop")

        await self.timed_enqueue("enqueue_seq", go, n)

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

        await self.timed_enqueue("enqueue_batch", go, n, api=self.ad.batch_api)

    # c/d/e/h/i. N pre-enqueued jobs, one worker process started after the fill
    async def drain(
        self, scenario: str, kind: str, n: int, concurrency: int | None, burst: bool = False
    ) -> None:
        if burst and self.ad.burst_na is not None:
            emit_na(self.ad.name, scenario, self.ad.burst_na)
            return
        base = await self.used_memory()
        await self.prefill(kind, n)
        queued = await self.used_memory()
        polls: Counter[str] = Counter()  # the harness's own commands inside the cost window
        before = await read_usage(self.admin)
        worker = self.worker(concurrency, n, scenario, burst).start()
        profiler = start_profiler(worker)
        try:
            first, last, worker_cpu = await self.wait_counted(worker, n, scenario, polls)
            if burst:
                code, exited = await asyncio.to_thread(worker.wait_exit, 60 + n / 100)
                if code != 0:
                    raise RuntimeError(f"{scenario}: worker exited {code}:\n{worker.log_tail()}")
            else:
                await asyncio.sleep(SETTLE_S)
            counted = int(await self.admin.get(COUNTER_KEY))  # anything counted twice shows
            polls["get"] += 1
            spent = cost(before, await read_usage(self.admin), n, polls)
            rss = worker.rss_kb() if scenario == "memory" else None
            after = await self.used_memory()
        finally:
            stop_profiler(profiler)
            worker.stop()
        if counted != n:
            raise RuntimeError(f"{scenario}: counter {counted}, expected {n}")
        extra = {"n": n, "concurrency": concurrency or self.ad.default_concurrency}
        self.emit(
            scenario, "throughput (1st start → N-th count)", "jobs/s", n / (last - first), **extra
        )
        if scenario in ACK_TIMED and (acked := await self.ad.last_finished_at()) is not None:
            self.emit(
                scenario,
                "throughput (1st start → last ack)",
                "jobs/s",
                n / (acked - first),
                **extra,
            )
        if kind == "sleep":
            self.emit(scenario, "elapsed (ideal 1.0 s)", "s", last - first, **extra)
        self.emit(
            scenario, "worker startup (spawn → 1st job)", "s", first - worker.spawned_at, **extra
        )
        if burst:
            self.emit(scenario, "wall (spawn → exit)", "s", exited - worker.spawned_at, **extra)
            self.emit(scenario, "exit after the N-th count", "s", exited - last, **extra)
        if worker_cpu is not None:
            self.emit(scenario, "worker CPU", "µs/job", worker_cpu, **extra)
        self.emit_redis_cost(scenario, spent, **extra)
        if rss is not None:
            self.emit_memory(scenario, rss, (queued - base, after - base), extra)

    async def wait_counted(
        self, worker: WorkerProcess, n: int, scenario: str, polls: Counter[str]
    ) -> tuple[float, float, float | None]:
        """Poll until the N-th job counted: (1st job's start, N-th count) in epoch seconds, and
        the worker's CPU per job (µs) between the first poll that saw a job counted and the
        last (start-up excluded; None if that window held too few jobs to say)."""
        deadline = time.monotonic() + 120 + n / 100
        cpu_from: tuple[int, float] | None = None
        while True:
            counted = int(await self.admin.get(COUNTER_KEY) or 0)
            polls["get"] += 1
            if cpu_from is None and counted > 0:
                cpu_from = (counted, worker.cpu_s())
            # the N-th job SETs its count time just after its INCR: wait for that too
            if counted >= n:
                polls["exists"] += 1
                if await self.admin.exists(LAST_KEY):
                    break
            if not worker.alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{scenario}: stalled at {counted}/{n} (worker alive: {worker.alive()})"
                    f"; worker log tail:\n{worker.log_tail()}"
                )
            await asyncio.sleep(POLL_S)
        cpu_per_job = None
        if cpu_from is not None and counted - cpu_from[0] >= n // 2:
            spent_s = worker.cpu_s() - cpu_from[1]  # negative if a burst worker already exited
            cpu_per_job = spent_s * 1e6 / (counted - cpu_from[0]) if spent_s > 0 else None
        first, last = await self.admin.mget(FIRST_KEY, LAST_KEY)
        polls["mget"] += 1
        return float(first), float(last), cpu_per_job

    def emit_memory(
        self, scenario: str, rss: tuple[int, int, int], redis: tuple[int, int], extra: Any
    ) -> None:
        rss_kb, hwm_kb, procs = rss
        mb = 1024 * 1024
        self.emit(
            scenario, "worker RSS after the run", "MB", rss_kb / 1024, processes=procs, **extra
        )
        self.emit(
            scenario, "worker peak RSS (VmHWM)", "MB", hwm_kb / 1024, processes=procs, **extra
        )
        self.emit(scenario, "Redis used_memory, N queued", "MB", redis[0] / mb, **extra)
        self.emit(scenario, "Redis used_memory, after the run", "MB", redis[1] / mb, **extra)

    # f/g. one idle worker: enqueue → start latency, then result round trip
    async def latency(self) -> None:
        worker = self.worker(None, 0, "latency").start()
        try:
            await self.ad.enqueue("stamp", -1)  # warm-up: wait until the worker runs it
            deadline = time.monotonic() + 60
            while not await self.admin.hexists(LATENCY_KEY, "-1"):
                if not worker.alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"latency warm-up job never ran:\n{worker.log_tail()}")
                await asyncio.sleep(POLL_S)
            await asyncio.sleep(0.2)
            await self.start_latency(worker)
            if self.ad.result_na is not None:
                emit_na(self.ad.name, "round_trip", self.ad.result_na)
                return
            await self.round_trip()
        finally:
            worker.stop()

    async def start_latency(self, worker: WorkerProcess) -> None:
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
            self.emit("latency", f"p{p}", "ms", pct(lat, p), n=count, gap_ms=self.args.gap_ms)

    async def round_trip(self) -> None:
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
            self.emit(
                "round_trip",
                f"p{p}",
                "ms",
                pct(rtt, p),
                n=len(rtt),
                api=self.ad.result_api,
                **self.ad.notes(),
            )

    def scenarios(self) -> dict[str, Callable[[], Awaitable[None]]]:
        a = self.args
        return {
            "enqueue_seq": self.enqueue_seq,
            "enqueue_batch": self.enqueue_batch,
            "drain_default": lambda: self.drain("drain_default", "noop", a.n, None),
            "drain_c100": lambda: self.drain("drain_c100", "noop", a.n, 100),
            "sleep_drain": lambda: self.drain("sleep_drain", "sleep", a.sleep_jobs, 100),
            "latency": self.latency,
            "memory": lambda: self.drain("memory", "noop", a.memory_jobs, 100),
            "drain_burst": lambda: self.drain("drain_burst", "noop", a.n, 100, burst=True),
        }

    async def run(self, scenario: str) -> None:
        step = self.scenarios().get(scenario)
        if step is None:
            raise SystemExit(f"unknown scenario {scenario!r}")
        await self.admin.flushdb()
        await self.ad.open(self.url)
        try:
            await step()
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
    bench_common.REDIS_URL = os.environ["BENCH_REDIS_URL"] = args.url
    ad: Adapter = importlib.import_module(module).Adapter()
    if args.info:
        facts = {"system": ad.name, "default_concurrency": ad.default_concurrency}
        facts.update(batch_na=ad.batch_na, result_na=ad.result_na, burst_na=ad.burst_na)
        facts.update(batch_api=ad.batch_api, result_api=ad.result_api)
        print(json.dumps({**facts, "worker_cmd": ad.worker_cmd(args.url, None)}))
        return
    asyncio.run(Runner(ad, args).run(args.scenario))
