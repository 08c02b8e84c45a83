#!/usr/bin/env python
"""Benchmark asyncjobs on a private redis-server: enqueue rates, drain rate, latency, round trip.

Usage::

    python benchmarks/bench_asyncjobs.py [--jobs N] [--repeat R] [--json out.jsonl]

Starts its own redis-server on a free 127.0.0.1 port (no persistence) and stops exactly that
PID at the end; workers run as ``python -m asyncjobs worker benchmarks.bench_tasks:settings``
subprocesses (cwd = the project root) and are stopped by their own PIDs too.
See benchmarks/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Set (by the --rev re-run) to a folder holding `git archive REV asyncjobs` + bench_tasks.py.
SNAPSHOT = os.environ.get("BENCH_SNAPSHOT_DIR")
#: The workers' cwd: the project root, or the snapshot (cwd comes first on a worker's sys.path).
WORKER_CWD = Path(SNAPSHOT) if SNAPSHOT else ROOT
sys.path.insert(0, str(HERE))


def _rerun_on_snapshot() -> None:
    """``--rev REV``: run this script again on ``git archive REV asyncjobs``, not the worktree.

    The working tree may be mid-edit (others work on it at the same time); a snapshot makes the
    run reproducible. The harness and the workers both import the snapshot (PYTHONPATH, and
    the workers' cwd); the repository itself is only read.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--rev")
    rev = pre.parse_known_args()[0].rev
    if SNAPSHOT or not rev:
        return
    snap = tempfile.mkdtemp(prefix="asyncjobs-bench-src-")
    try:
        tar = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "asyncjobs"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", snap], input=tar, check=True)
        os.mkdir(os.path.join(snap, "benchmarks"))
        shutil.copy(HERE / "bench_tasks.py", os.path.join(snap, "benchmarks", "bench_tasks.py"))
        path = os.pathsep.join(p for p in (snap, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "BENCH_SNAPSHOT_DIR": snap, "PYTHONPATH": path}
        code = subprocess.run([sys.executable, __file__, *sys.argv[1:]], env=env).returncode
    finally:
        shutil.rmtree(snap, ignore_errors=True)
    sys.exit(code)


if __name__ == "__main__":
    _rerun_on_snapshot()

import bench_tasks  # noqa: E402  (the same module the worker imports as benchmarks.bench_tasks)
import redis.asyncio as aioredis  # noqa: E402
from redis_process import RedisServer  # noqa: E402

import asyncjobs  # noqa: E402
from asyncjobs import Queue, WorkerSettings  # noqa: E402

WORKER_SETTINGS = "benchmarks.bench_tasks:settings"
DEFAULT_CONCURRENCY = int(WorkerSettings.model_fields["concurrency"].default)
BATCH_CHUNK = 1000
POLL_S = 0.005


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- processes we own -------------------------------------------------------------------------


class WorkerProcess:
    """One ``asyncjobs worker`` subprocess, output to a log file, stopped by its own PID."""

    def __init__(
        self,
        url: str,
        logdir: str,
        *,
        burst: bool,
        concurrency: int | None = None,
        log_level: str | None = None,
        profile_out: str | None = None,
    ) -> None:
        cmd = [sys.executable]
        if profile_out:
            cmd += ["-m", "cProfile", "-o", profile_out]
        cmd += ["-m", "asyncjobs", "worker", WORKER_SETTINGS, "--redis-url", url]
        if burst:
            cmd.append("--burst")
        if concurrency is not None:
            cmd += ["--concurrency", str(concurrency)]
        if log_level:
            cmd += ["--log-level", log_level]
        self.cmd = cmd
        self.env = {
            **os.environ,
            "ASYNCJOBS_REDIS_URL": url,
            "BENCH_COUNTER_KEY": bench_tasks.COUNTER_KEY,
            "BENCH_FIRST_START_KEY": bench_tasks.FIRST_START_KEY,
            "BENCH_LATENCY_KEY": bench_tasks.LATENCY_KEY,
        }
        fd, self.log_path = tempfile.mkstemp(prefix="worker-", suffix=".log", dir=logdir)
        os.close(fd)
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as out:
            self.spawned_at = time.time()
            self.proc = subprocess.Popen(
                self.cmd, cwd=WORKER_CWD, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def exited(self) -> bool:
        return self.proc is None or self.proc.poll() is not None

    def log_tail(self, lines: int = 20) -> str:
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def warnings(self) -> list[str]:
        with open(self.log_path, errors="replace") as f:
            return [line.rstrip() for line in f if " WARNING " in line or " ERROR " in line]

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: graceful shutdown of exactly this PID
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- results -----------------------------------------------------------------------------------


@dataclass
class Metric:
    """One reported number: a sample per repeat, summarised as median and min-max."""

    scenario: str
    metric: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def summary(self) -> tuple[float, float, float]:
        return statistics.median(self.samples), min(self.samples), max(self.samples)


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation (q in 0..100)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt(value: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{value:,.0f}"
    if unit == "ms":
        return f"{value:.2f}"
    return f"{value:.2f}"


# -- the benchmark -----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, server: RedisServer, logdir: str) -> None:
        self.args = args
        self.n = args.jobs
        self.url = server.url
        self.logdir = logdir
        self.admin: Any = aioredis.Redis.from_url(self.url)
        self.metrics: dict[tuple[str, str], Metric] = {}
        self.raw: dict[str, list[Any]] = {}
        self.worker_warnings: list[str] = []

    def record(self, scenario: str, metric: str, unit: str, value: float, note: str = "") -> None:
        m = self.metrics.setdefault((scenario, metric), Metric(scenario, metric, unit, note=note))
        m.samples.append(value)

    async def fresh(self) -> None:
        await self.admin.flushdb()

    def _worker(self, **kw: Any) -> WorkerProcess:
        return WorkerProcess(self.url, self.logdir, log_level=self.args.worker_log_level, **kw)

    # (a) one awaited enqueue at a time
    async def sequential_enqueue(self) -> None:
        await self.fresh()
        async with Queue(self.url) as q:
            await q.enqueue(bench_tasks.noop)  # warm-up: loads the script, registers the queue
            await self.fresh()
            t0 = time.perf_counter()
            for _ in range(self.n):
                await q.enqueue(bench_tasks.noop)
            took = time.perf_counter() - t0
            ready = await self.admin.zcard(q.keys_for(q.name).ready)
        if ready != self.n:
            raise RuntimeError(f"sequential enqueue: {ready} jobs ready, expected {self.n}")
        self.record("a. enqueue, sequential", "throughput", "jobs/s", self.n / took)

    # (b) enqueue_many in chunks of 1000
    async def batch_enqueue(self) -> None:
        await self.fresh()
        async with Queue(self.url) as q:
            await q.enqueue_many([(bench_tasks.noop, (), {})])  # warm-up
            await self.fresh()
            t0 = time.perf_counter()
            left = self.n
            while left > 0:
                size = min(BATCH_CHUNK, left)
                await q.enqueue_many([(bench_tasks.noop, (), {})] * size)
                left -= size
            took = time.perf_counter() - t0
            ready = await self.admin.zcard(q.keys_for(q.name).ready)
        if ready != self.n:
            raise RuntimeError(f"batch enqueue: {ready} jobs ready, expected {self.n}")
        self.record(
            f"b. enqueue_many, chunks of {BATCH_CHUNK}", "throughput", "jobs/s", self.n / took
        )

    # (c) N pre-enqueued jobs, one --burst worker process
    async def drain(self, concurrency: int | None, profile_out: str | None = None) -> None:
        await self.fresh()
        async with Queue(self.url) as q:
            for start in range(0, self.n, BATCH_CHUNK):
                size = min(BATCH_CHUNK, self.n - start)
                await q.enqueue_many([(bench_tasks.noop, (), {})] * size)
            stats_key = q.keys_for(q.name).stats
        worker = self._worker(burst=True, concurrency=concurrency, profile_out=profile_out)
        worker.start()
        try:
            counted_at = acked_at = None
            deadline = time.monotonic() + max(60.0, self.n / 100)
            while counted_at is None or acked_at is None:
                async with self.admin.pipeline(transaction=False) as pipe:
                    pipe.get(bench_tasks.COUNTER_KEY)
                    pipe.hget(stats_key, "succeeded")
                    counted, acked = await pipe.execute()
                now = time.time()
                if counted_at is None and counted is not None and int(counted) >= self.n:
                    counted_at = now
                if acked_at is None and acked is not None and int(acked) >= self.n:
                    acked_at = now
                if counted_at is not None and acked_at is not None:
                    break
                if worker.exited() or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"drain stalled at {counted!r}/{self.n} (worker exited: "
                        f"{worker.exited()}); worker log tail:\n{worker.log_tail()}"
                    )
                await asyncio.sleep(POLL_S)
            code = await asyncio.to_thread(worker.wait, 60)
            exited_at = time.time()
        finally:
            worker.stop()
        self.worker_warnings += worker.warnings()
        if code != 0:
            raise RuntimeError(f"burst worker exited with {code}:\n{worker.log_tail()}")
        # Exactly once here (no crash, no retry): any other count or a retry/recovery is a bug.
        counted = int(await self.admin.get(bench_tasks.COUNTER_KEY))
        stats = {k.decode(): int(v) for k, v in (await self.admin.hgetall(stats_key)).items()}
        others = {k for k in stats if k != "succeeded" and k.split(":")[0] != "enqueued"}
        if counted != self.n or stats.get("succeeded") != self.n or others:
            raise RuntimeError(f"drain: counter {counted}, stats {stats}, expected {self.n} each")
        if profile_out:
            return
        first = float(await self.admin.get(bench_tasks.FIRST_START_KEY))
        if concurrency:
            label = f"c. drain, --concurrency {concurrency}"
        else:
            label = f"c. drain, default concurrency ({DEFAULT_CONCURRENCY})"
        self.record(
            label, "throughput (1st start → N counted)", "jobs/s", self.n / (counted_at - first)
        )
        self.record(
            label, "throughput (1st start → N acked)", "jobs/s", self.n / (acked_at - first)
        )
        self.record(label, "worker startup (spawn → 1st job)", "s", first - worker.spawned_at)
        self.record(label, "wall (spawn → burst exit)", "s", exited_at - worker.spawned_at)

    # (d) + (e): one idle, non-burst worker per repeat
    async def idle_worker_scenarios(self) -> None:
        await self.fresh()
        worker = self._worker(burst=False)
        worker.start()
        try:
            async with Queue(self.url) as q:
                warm = await q.enqueue(bench_tasks.echo, "warm-up")
                if await warm.result(timeout=60) != "warm-up":
                    raise RuntimeError("warm-up job returned the wrong value")
                await self._latency(q)
                await self._round_trip(q)
        except Exception:
            log(f"worker log tail:\n{worker.log_tail()}")
            raise
        finally:
            worker.stop()
            self.worker_warnings += worker.warnings()

    async def _latency(self, q: Queue) -> None:
        count, gap = self.args.latency_jobs, self.args.gap_ms / 1000
        enqueued: list[float] = []
        for i in range(count):
            t0 = time.perf_counter()
            enqueued.append(time.time())
            await q.enqueue(bench_tasks.stamp, i)
            await asyncio.sleep(max(0.0, gap - (time.perf_counter() - t0)))
        deadline = time.monotonic() + 30
        while await self.admin.hlen(bench_tasks.LATENCY_KEY) < count:
            if time.monotonic() > deadline:
                raise RuntimeError("latency jobs did not all start within 30 s")
            await asyncio.sleep(POLL_S)
        started = await self.admin.hgetall(bench_tasks.LATENCY_KEY)
        lat = [(float(started[str(i).encode()]) - enqueued[i]) * 1000 for i in range(count)]
        name = f"d. enqueue → start latency ({count} jobs, {self.args.gap_ms:g} ms apart)"
        for p in (50, 95, 99):
            self.record(name, f"p{p}", "ms", pct(lat, p))
        self.raw.setdefault(name, []).append([round(x, 4) for x in lat])

    async def _round_trip(self, q: Queue) -> None:
        count = self.args.latency_jobs
        rtt: list[float] = []
        for i in range(count):
            t0 = time.perf_counter()
            value = await (await q.enqueue(bench_tasks.echo, i)).result(timeout=30)
            rtt.append((time.perf_counter() - t0) * 1000)
            if value != i:
                raise RuntimeError(f"echo returned {value!r}, expected {i}")
        name = f"e. result round trip ({count} sequential jobs)"
        for p in (50, 99):
            self.record(name, f"p{p}", "ms", pct(rtt, p))
        self.raw.setdefault(name, []).append([round(x, 4) for x in rtt])


def concurrency_levels(spec: str | None) -> list[int | None]:
    """None = the worker's default (no --concurrency flag)."""
    if spec:
        return [None if s.strip() == "default" else int(s) for s in spec.split(",")]
    # The brief: default and 100. If the default *is* 100, measure 10 as the contrast instead.
    return [None, 100] if DEFAULT_CONCURRENCY != 100 else [None, 10]


async def run(args: argparse.Namespace, server: RedisServer, logdir: str) -> Bench:
    bench = Bench(args, server, logdir)
    levels = concurrency_levels(args.concurrency_levels)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("sequential enqueue", bench.sequential_enqueue),
        ("batch enqueue", bench.batch_enqueue),
    ]
    for c in levels:
        steps.append((f"drain c={c or 'default'}", lambda c=c: bench.drain(c)))
    steps.append(("latency + round trip", bench.idle_worker_scenarios))
    try:
        # Rounds, not blocks: each round runs every scenario once, so background load that comes
        # and goes (tests running alongside) spreads over all scenarios instead of hitting one.
        for r in range(args.repeat):
            for name, step in steps:
                t0 = time.perf_counter()
                await step()
                log(f"[round {r + 1}/{args.repeat}] {name}: {time.perf_counter() - t0:.1f}s")
        if args.profile:
            log(f"profiling one extra drain (not counted) into {args.profile}")
            await bench.drain(levels[0], profile_out=args.profile)
    finally:
        await bench.admin.aclose()
    return bench


def table(bench: Bench) -> str:
    rows = [
        "| Scenario | Metric | Median | Min - max | Unit |",
        "|---|---|---:|---:|---|",
    ]
    for m in bench.metrics.values():
        med, lo, hi = m.summary()
        rows.append(
            f"| {m.scenario} | {m.metric} | {fmt(med, m.unit)} | "
            f"{fmt(lo, m.unit)} - {fmt(hi, m.unit)} | {m.unit} |"
        )
    return "\n".join(rows)


def git_rev(rev: str | None) -> str:
    def git(*argv: str) -> str:
        out = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    if rev:
        return git("rev-parse", "--short", rev)
    dirty = git("status", "--porcelain", "--", "asyncjobs")
    return git("rev-parse", "--short", "HEAD") + ("+uncommitted changes" if dirty else "")


def worker_import_path(url: str) -> str:
    """Where a worker subprocess (same cwd and env) imports asyncjobs from."""
    probe = WorkerProcess(url, tempfile.gettempdir(), burst=True)
    out = subprocess.run(
        [sys.executable, "-c", "import asyncjobs; print(asyncjobs.__file__)"],
        cwd=WORKER_CWD,
        env=probe.env,
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(probe.log_path)
    return os.path.dirname(out.stdout.strip())


def write_json(path: str, bench: Bench, env: dict[str, Any]) -> None:
    by_scenario: dict[str, list[Metric]] = {}
    for m in bench.metrics.values():
        by_scenario.setdefault(m.scenario, []).append(m)
    with open(path, "w") as f:
        for scenario, metrics in by_scenario.items():
            line: dict[str, Any] = {"library": "asyncjobs", "scenario": scenario, **env}
            line["metrics"] = {
                m.metric: {
                    "unit": m.unit,
                    "samples": m.samples,
                    "median": m.summary()[0],
                    "min": m.summary()[1],
                    "max": m.summary()[2],
                }
                for m in metrics
            }
            if scenario in bench.raw:
                line["raw_ms_per_repeat"] = bench.raw[scenario]
            f.write(json.dumps(line) + "\n")


def print_profile(path: str, top: int = 15) -> None:
    for key in ("tottime", "cumulative"):
        print(f"\n### worker profile, top {top} by {key}\n```")
        stats = pstats.Stats(path)
        stats.sort_stats(key).print_stats(top)
        print("```")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000, help="N for scenarios a-c")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every scenario")
    parser.add_argument("--json", metavar="OUT.jsonl", help="write one JSON line per scenario")
    parser.add_argument("--latency-jobs", type=int, default=200, help="jobs for d and e")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="gap between d's enqueues")
    parser.add_argument(
        "--concurrency-levels",
        metavar="LIST",
        help="drain concurrencies, e.g. 'default,10,100' (default: default and 100, "
        "or default and 10 when the default is 100)",
    )
    parser.add_argument(
        "--worker-log-level",
        metavar="LEVEL",
        help="passed to the worker's --log-level (default: the CLI's own default, INFO)",
    )
    parser.add_argument(
        "--profile",
        metavar="OUT.prof",
        help="after the run, profile one extra drain worker with cProfile and print the top",
    )
    parser.add_argument(
        "--rev",
        metavar="GIT_REV",
        help="benchmark asyncjobs as committed at this revision (git archive into a temp "
        "folder) instead of the working tree, e.g. when others are editing it",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile = os.path.abspath(args.profile)  # workers do not run in our cwd
    if args.jobs < 1 or args.repeat < 1 or args.latency_jobs < 1:
        parser.error("--jobs, --repeat and --latency-jobs must be positive")

    started = time.perf_counter()
    server = RedisServer("asyncjobs-bench-redis-").start()
    logdir = tempfile.mkdtemp(prefix="asyncjobs-bench-logs-")
    log(f"redis-server pid {server.proc.pid if server.proc else '?'} on {server.url}")
    try:
        here, there = os.path.dirname(asyncjobs.__file__), worker_import_path(server.url)
        log(f"asyncjobs imported from {here} (harness) and {there} (workers)")
        if os.path.realpath(here) != os.path.realpath(there):
            raise RuntimeError(f"harness and workers import different asyncjobs: {here}, {there}")
        bench = asyncio.run(run(args, server, logdir))
        redis_version = server.version()
    finally:
        server.stop()
    env = {
        "asyncjobs": f"{asyncjobs.__version__} ({git_rev(args.rev)})",
        "python": platform.python_version(),
        "redis_server": redis_version,
        "cpus": os.cpu_count(),
        "jobs": args.jobs,
        "repeat": args.repeat,
        "worker_default_concurrency": DEFAULT_CONCURRENCY,
    }
    print(
        f"## asyncjobs benchmark: N={args.jobs}, {args.repeat} repeat(s), "
        f"asyncjobs {env['asyncjobs']}, Python {env['python']}, "
        f"redis-server {redis_version}, {env['cpus']} CPUs\n"
    )
    print(table(bench))
    print(f"\ntotal time {time.perf_counter() - started:.0f}s")
    if bench.worker_warnings:
        print(f"\nworker log lines at WARNING or above: {len(bench.worker_warnings)}, first 5:")
        for line in bench.worker_warnings[:5]:
            print(f"    {line[:160]}{' ...' if len(line) > 160 else ''}")
    if args.json:
        write_json(args.json, bench, env)
        print(f"wrote {args.json}")
    if args.profile:
        print_profile(args.profile)
    shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    main()
