#!/usr/bin/env python
"""What tracing costs a worker: drain N no-op jobs (concurrency 100) in four set-ups.

- ``no-api``: opentelemetry cannot be imported (the package without the ``otel`` extra);
- ``off``: the API is installed, ``tracing=False`` on the Queue and the worker;
- ``api``: the API is installed, tracing on (the default), no SDK: the global no-op provider;
- ``sdk``: an SDK TracerProvider with a BatchSpanProcessor whose exporter drops the spans.

Usage::

    python benchmarks/tracing_overhead.py                 # N=20000, 5 rounds
    python benchmarks/tracing_overhead.py --jobs 5000 --rounds 3

Each (set-up, round) is a fresh child process of this script: it enqueues N jobs (with its
set-up's Queue, so ``sdk`` jobs carry a context), then times a burst worker in the same
process draining them: CPU time of the process per job (the figure to watch on a shared
machine) and jobs/s. Rounds interleave the set-ups. One redis-server on a free loopback port,
stopped by its PID at the end. Logging is not configured (no success lines), as in a worker
run with ``--no-log-successes``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from redis_process import RedisServer  # noqa: E402

MODES = ("no-api", "off", "api", "sdk")


def child(mode: str, url: str, jobs: int) -> dict[str, Any]:
    if mode == "no-api":
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # import -> ImportError
    if mode == "sdk":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )

        class Drop(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)

    from asyncjobs import Queue, Worker, WorkerSettings, _tracing, task

    @task
    async def noop(ctx):  # type: ignore[no-untyped-def]  # (annotations would be evaluated)
        pass

    tracing = mode != "off"

    async def run() -> dict[str, Any]:
        async with Queue(url, name="bench", tracing=tracing) as queue:
            for start in range(0, jobs, 1000):
                await queue.enqueue_many([(noop, (), {})] * min(1000, jobs - start))
        settings = WorkerSettings(
            redis_url=url, functions=[noop], queues=["bench"], concurrency=100, tracing=tracing
        )
        worker = Worker(settings)
        cpu, wall = time.process_time(), time.perf_counter()
        await worker.run(burst=True, handle_signals=False)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert worker.jobs_done == jobs, worker.jobs_done
        return {
            "mode": mode,
            "otel_importable": _tracing.AVAILABLE,
            "cpu_us_per_job": cpu / jobs * 1e6,
            "jobs_per_s": jobs / wall,
        }

    return asyncio.run(run())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.url, args.jobs)))
        return
    modes = args.modes.split(",")
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    server = RedisServer(prefix="bench-tracing-").start()
    try:
        for round_ in range(args.rounds):
            order = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
            for mode in order:
                server.flushdb()
                out = subprocess.run(
                    [sys.executable, __file__, "--child", mode, "--url", server.url]
                    + ["--jobs", str(args.jobs)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                line = json.loads(out.strip().splitlines()[-1])
                results[mode].append(line)
                print(
                    f"round {round_ + 1} {mode:7} {line['cpu_us_per_job']:6.1f} us/job "
                    f"{line['jobs_per_s']:8.0f} jobs/s",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    base = statistics.median(r["cpu_us_per_job"] for r in results.get("off") or results[modes[0]])
    print(f"\n{args.jobs} no-op jobs, concurrency 100, median of {args.rounds} rounds")
    print(f"{'set-up':8} {'CPU us/job':>10} {'vs off':>8} {'jobs/s':>8}")
    for mode in modes:
        cpu = statistics.median(r["cpu_us_per_job"] for r in results[mode])
        rate = statistics.median(r["jobs_per_s"] for r in results[mode])
        print(f"{mode:8} {cpu:10.1f} {100 * (cpu / base - 1):+7.1f}% {rate:8.0f}")


if __name__ == "__main__":
    main()
