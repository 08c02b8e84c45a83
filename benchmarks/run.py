#!/usr/bin/env python
"""Side-by-side benchmark: asyncjobs vs arq, SAQ, streaq, taskiq, docket and BullMQ on one Redis.

Usage::

    python benchmarks/run.py --install          # once: one venv per peer in benchmarks/.venvs/
    python benchmarks/run.py                    # full run (3 repetitions), ~1-1.5 h
    python benchmarks/run.py --quick            # N=2000, 1 repetition
    python benchmarks/run.py --systems asyncjobs,saq --scenarios drain_c100,latency

Starts ONE redis-server on a free 127.0.0.1 port (no persistence, temporary dir) and stops that
PID at the end. Every (system, scenario) is one subprocess of the system's adapter,
``benchmarks/adapters/<system>_bench.py``, run by that system's own interpreter; the adapter
starts the peer's worker and prints JSON lines. Scenarios are interleaved: each repetition runs
every scenario for every system (round-robin, with the system order rotated per repetition),
FLUSHDB before and after each run.

This script needs only the standard library. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import asyncjobs_source  # noqa: E402
import peers  # noqa: E402
from pyspy_summary import profile_summary  # noqa: E402
from redis_process import RedisServer  # noqa: E402
from report import Results, notes_text, table, write_jsonl  # noqa: E402

SCENARIOS = [
    "enqueue_seq",
    "enqueue_batch",
    "drain_default",
    "drain_c100",
    "sleep_drain",
    "latency",  # reports "latency" and "round_trip"
    "memory",
    "drain_burst",
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- running adapters -------------------------------------------------------------------------


def adapter_cmd(system: peers.System, *argv: str) -> list[str]:
    return [system.python, str(peers.ADAPTERS / system.adapter), *argv]


def adapter_env(system: peers.System) -> dict[str, str]:
    env = {**os.environ, **system.env}
    env.pop("PYTHONPATH", None)  # each venv imports its own packages only
    if "BENCH_ASYNCJOBS_SRC" in system.env:  # asyncjobs: the tree or the --rev snapshot
        env["PYTHONPATH"] = system.env["BENCH_ASYNCJOBS_SRC"]
    return env


def adapter_info(system: peers.System, url: str) -> dict[str, Any]:
    res = subprocess.run(
        adapter_cmd(system, "info", "--url", url, "--info"),
        cwd=peers.ADAPTERS,
        env=adapter_env(system),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if res.returncode != 0:
        raise RuntimeError(f"{system.name}: adapter --info failed:\n{res.stderr[-3000:]}")
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def run_one(
    system: peers.System, scenario: str, args: argparse.Namespace, url: str, logdir: str
) -> tuple[list[dict[str, Any]], str | None]:
    """One adapter process for (system, scenario): its JSON lines, and an error or None."""
    argv = [scenario, "--url", url, "--n", str(args.jobs), "--sleep-jobs", str(args.sleep_jobs)]
    argv += ["--memory-jobs", str(args.memory_jobs), "--latency-jobs", str(args.latency_jobs)]
    argv += ["--gap-ms", str(args.gap_ms), "--rt-budget-s", str(args.rt_budget)]
    argv += ["--logdir", logdir]
    errlog = os.path.join(logdir, f"{system.name.replace('/', '_')}-{scenario}.stderr")
    with open(errlog, "ab") as err:
        try:
            res = subprocess.run(
                adapter_cmd(system, *argv),
                cwd=peers.ADAPTERS,
                env=adapter_env(system),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=args.timeout,
            )
        except subprocess.TimeoutExpired:
            return [], f"timed out after {args.timeout}s"
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    for line in lines:
        line["system"] = system.name  # the harness's name (taskiq_list shares an adapter)
    if res.returncode != 0:
        with open(errlog, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
        return lines, f"exit {res.returncode}: {tail.strip()[-1500:]}"
    return lines, None


# -- options ----------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--install", action="store_true", help="create/update the peer venvs and exit")
    p.add_argument("--upgrade", action="store_true", help="with --install: pip install --upgrade")
    p.add_argument("--quick", action="store_true", help="N=2000, 1 repetition, 10k memory jobs")
    p.add_argument(
        "--systems",
        default=",".join(peers.DEFAULT_SYSTEMS),
        help=f"comma list from {','.join(peers.SYSTEMS)} (default: %(default)s)",
    )
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma list (default: all)")
    p.add_argument("--repeat", type=int, help="repetitions (default 3; 1 with --quick)")
    p.add_argument("--jobs", type=int, help="N for enqueue/drain (default 20000; 2000 quick)")
    p.add_argument("--memory-jobs", type=int, help="jobs for the memory run (100000; 10000 quick)")
    p.add_argument("--sleep-jobs", type=int, default=2000)
    p.add_argument("--latency-jobs", type=int, default=200)
    p.add_argument("--gap-ms", type=float, default=20.0)
    p.add_argument(
        "--rt-budget",
        type=float,
        help="seconds per round-trip series, min 20 jobs "
        "(default 30; 10 quick): pollers (arq 0.5 s, taskiq 0.2 s) are slow",
    )
    p.add_argument("--timeout", type=float, default=1800, help="per adapter run, seconds")
    p.add_argument(
        "--profile",
        metavar="OUT.txt",
        help="after the run, one extra asyncjobs drain (concurrency 100) with the "
        "worker sampled by py-spy (benchmarks/.venvs/tools; installed by --install); "
        "raw stacks to OUT.txt, top frames printed",
    )
    p.add_argument(
        "--rev",
        metavar="GIT_REV",
        action="append",
        help="benchmark asyncjobs as committed at this revision (git archive into a "
        "temporary folder) instead of the working tree, e.g. while others edit it; given "
        "twice or more, each revision is a system of its own, asyncjobs@REV, in the same run",
    )
    p.add_argument(
        "--asyncjobs-loop",
        choices=("asyncio", "auto", "uvloop"),
        default="asyncio",
        help="asyncjobs worker's --loop (default asyncio, like the peers; auto = "
        "uvloop when installed)",
    )
    p.add_argument("--json", help="JSON lines out (default benchmarks/results/peers-<time>.jsonl)")
    args = p.parse_args()

    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in args.systems if s not in peers.SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {unknown}; known: {list(peers.SYSTEMS)}")
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario(s) {bad}; known: {SCENARIOS}")
    if not args.install and (missing := peers.check_installed(args.systems)):
        p.error(f"not installed: {missing}; run `python benchmarks/run.py --install` first")
    q = args.quick
    args.repeat = args.repeat or (1 if q else 3)
    args.jobs = args.jobs or (2000 if q else 20_000)
    args.memory_jobs = args.memory_jobs or (10_000 if q else 100_000)
    args.rt_budget = args.rt_budget or (10.0 if q else 30.0)
    if args.profile:
        args.profile = os.path.abspath(args.profile)
    return args


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What one benchmark run needs: options, systems, the Redis server, where logs go."""

    args: argparse.Namespace
    systems: dict[str, peers.System]
    server: RedisServer
    logdir: str
    #: each system's adapter facts (--info): default concurrency, n/a reasons, APIs
    info: dict[str, dict[str, Any]] = field(default_factory=dict)
    res: Results = field(default_factory=Results)


def asyncjobs_sources(
    args: argparse.Namespace, cleanup: contextlib.ExitStack
) -> dict[str, tuple[Path, str | None]]:
    """{system name: (folder asyncjobs is imported from, revision)}: the tree, or snapshots."""
    if "asyncjobs" not in args.systems:
        return {}
    if not args.rev:
        return {"asyncjobs": (asyncjobs_source.compiled(asyncjobs_source.ROOT), None)}
    sources: dict[str, tuple[Path, str | None]] = {}
    for rev in args.rev:
        src = asyncjobs_source.compiled(asyncjobs_source.snapshot(rev))
        cleanup.callback(shutil.rmtree, src, ignore_errors=True)
        sources["asyncjobs" if len(args.rev) == 1 else f"asyncjobs@{rev}"] = (src, rev)
    return sources


def resolve_systems(
    args: argparse.Namespace, sources: dict[str, tuple[Path, str | None]]
) -> dict[str, peers.System]:
    """The systems to run; each asyncjobs carries its source folder, revision and event loop."""
    systems: dict[str, peers.System] = {}
    for name in args.systems:
        base = peers.SYSTEMS[name]
        if name != "asyncjobs":
            systems[name] = base
            continue
        for label, (src, rev) in sources.items():
            env = {"BENCH_ASYNCJOBS_SRC": str(src), "BENCH_ASYNCJOBS_REV": rev or ""}
            env["BENCH_ASYNCJOBS_LOOP"] = args.asyncjobs_loop
            systems[label] = dataclasses.replace(base, name=label, env={**base.env, **env})
    return systems


def asyncjobs_systems(run: Run) -> list[peers.System]:
    return [s for s in run.systems.values() if "BENCH_ASYNCJOBS_SRC" in s.env]


def check_asyncjobs_import(run: Run) -> None:
    """Each asyncjobs adapter must import the tree (or snapshot) we mean to measure."""
    for aj in asyncjobs_systems(run):
        src = Path(aj.env["BENCH_ASYNCJOBS_SRC"])
        asyncjobs_source.imported_from(aj.python, src, adapter_env(aj), peers.ADAPTERS)


def versions_of(run: Run) -> dict[str, dict[str, str]]:
    versions = peers.read_versions()
    for aj in asyncjobs_systems(run):
        v = peers.installed_versions(aj)
        rev = asyncjobs_source.git_rev(aj.env["BENCH_ASYNCJOBS_REV"] or None)
        source = Path(aj.env["BENCH_ASYNCJOBS_SRC"]) / "asyncjobs" / "_version.py"
        found = re.search(r'VERSION = "([^"]+)"', source.read_text() if source.exists() else "")
        version = found.group(1) if found else "?"
        v["asyncjobs"] = f"{version} ({rev}, --loop {run.args.asyncjobs_loop})"
        versions[aj.name] = v
    return {s: versions.get(s, {}) for s in run.systems}


def run_cell(run: Run, rep: int, scenario: str, name: str) -> None:
    """One (system, scenario) of one repetition, on a flushed database."""
    default_is_100 = run.info[name]["default_concurrency"] == 100
    if scenario == "drain_default" and default_is_100:
        return  # the same run as drain_c100; copied from it below
    run.server.flushdb()
    t0 = time.perf_counter()
    lines, error = run_one(run.systems[name], scenario, run.args, run.server.url, run.logdir)
    took = time.perf_counter() - t0
    for line in lines:
        line["repetition"] = rep + 1
        run.res.add(line)
        copy_to_default = "drain_default" in run.args.scenarios and default_is_100
        if line["scenario"] == "drain_c100" and copy_to_default and "na" not in line:
            run.res.add({**line, "scenario": "drain_default", "same_run_as": "drain_c100"})
    status = "ok" if error is None else f"FAILED: {error}"
    log(f"[rep {rep + 1}/{run.args.repeat}] {scenario:<13} {name:<11} {took:6.1f}s {status}")
    if error is not None:
        run.res.errors.append(f"{name} {scenario} (rep {rep + 1}): {error}")


def run_repetitions(run: Run) -> None:
    """Interleaved: every scenario for every system per repetition, the order rotated."""
    names = list(run.systems)
    for rep in range(run.args.repeat):
        k = rep % len(names)
        for scenario in run.args.scenarios:
            for name in names[k:] + names[:k]:
                run_cell(run, rep, scenario, name)


def profile_drain(run: Run) -> None:
    """One extra asyncjobs drain_c100 (not counted) with py-spy sampling the worker."""
    run.server.flushdb()
    aj = asyncjobs_systems(run)[-1]
    env = {"BENCH_PYSPY": str(peers.PYSPY), "BENCH_PYSPY_OUT": run.args.profile}
    aj = dataclasses.replace(aj, env={**aj.env, **env})
    log("[profile] one extra asyncjobs drain_c100 under py-spy (not counted)")
    _, error = run_one(aj, "drain_c100", run.args, run.server.url, run.logdir)
    if error:
        run.res.errors.append(f"profile run: {error}")


def machine() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), ""
            )
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def environment(run: Run, versions: dict[str, Any], redis_version: str) -> dict[str, Any]:
    a = run.args
    return {
        "machine": machine(),
        "redis_server": redis_version,
        "versions": versions,
        "systems": list(run.systems),
        "scenarios": a.scenarios,
        "jobs": a.jobs,
        "repeat": a.repeat,
        "memory_jobs": a.memory_jobs,
        "sleep_jobs": a.sleep_jobs,
        "latency_jobs": a.latency_jobs,
        "gap_ms": a.gap_ms,
        "default_concurrency": {s: run.info[s]["default_concurrency"] for s in run.systems},
    }


def print_report(run: Run, env: dict[str, Any]) -> None:
    a, mc, systems = run.args, env["machine"], list(run.systems)
    print(
        f"## asyncjobs vs peers: N={a.jobs}, {a.repeat} repetition(s), "
        f"redis-server {env['redis_server']}, Python {mc['python']}, {mc['cpus']} CPUs "
        f"({mc['cpu']})\n"
    )
    versions = env["versions"]
    print(
        "Versions: "
        + "; ".join(
            f"{s}: " + ", ".join(f"{k} {v}" for k, v in versions[s].items()) for s in systems
        )
    )
    conc = env["default_concurrency"]
    print("Default concurrency: " + ", ".join(f"{s} {conc[s]}" for s in systems))
    print(
        "Cells: median (min-max) over repetitions. ↑ higher is better, ↓ lower is better. "
        "Ratio = asyncjobs median / best peer median (with several --rev: the last revision's, "
        "and a column against the first); ✓ = ahead. Redis CPU and "
        "commands: INFO cpu / commandstats deltas per job (script-internal commands count; the "
        "task's own INCR is in them, the harness's polling is not).\n"
    )
    title_args = {"sleep": a.sleep_jobs, "lat": a.latency_jobs, "gap": a.gap_ms}
    print(table(run.res, systems, {**title_args, "mem": a.memory_jobs}))
    print(notes_text(run.res))
    if a.profile and os.path.exists(a.profile):
        print(profile_summary(a.profile))


def main() -> None:
    args = parse_args()
    if args.install:
        peers.install(args.systems, upgrade=args.upgrade)
        return
    started, load_before = time.perf_counter(), os.getloadavg()
    out_path = args.json or str(HERE / "results" / f"peers-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    logdir = tempfile.mkdtemp(prefix="peers-bench-logs-")
    with contextlib.ExitStack() as cleanup:
        sources = asyncjobs_sources(args, cleanup)
        server = RedisServer("peers-bench-redis-").start()
        cleanup.callback(server.stop)
        pid = server.proc.pid if server.proc else "?"
        log(f"redis-server pid {pid} on {server.url}; worker logs and adapter stderr in {logdir}")
        run = Run(args, resolve_systems(args, sources), server, logdir)
        run.info = {s: adapter_info(system, server.url) for s, system in run.systems.items()}
        check_asyncjobs_import(run)
        versions = versions_of(run)
        run_repetitions(run)
        if args.profile and asyncjobs_systems(run):
            profile_drain(run)
        redis_version = server.version()
    env = environment(run, versions, redis_version)
    env.update(load_before=load_before, load_after=os.getloadavg())
    write_jsonl(out_path, env, run.res)
    print_report(run, env)
    print(
        f"\nload average before {load_before[0]:.2f}, after {env['load_after'][0]:.2f}; "
        f"total {time.perf_counter() - started:.0f}s; JSON lines: {out_path}"
    )


if __name__ == "__main__":
    main()
