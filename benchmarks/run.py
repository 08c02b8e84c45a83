#!/usr/bin/env python
"""Side-by-side benchmark: asyncjobs vs arq, SAQ, streaq, taskiq and docket on one Redis.

Usage::

    python benchmarks/run.py --install          # once: one venv per peer in benchmarks/.venvs/
    python benchmarks/run.py                    # full run (3 repetitions), ~40-60 min
    python benchmarks/run.py --quick            # N=2000, 1 repetition
    python benchmarks/run.py --systems asyncjobs,saq --scenarios drain_c100,latency

Starts ONE redis-server on a free 127.0.0.1 port (no persistence, temporary dir) and stops that
PID at the end. Every (system, scenario) is one subprocess of the system's adapter,
``benchmarks/adapters/<system>_bench.py``, run by that system's own interpreter; the adapter
starts the peer's worker through the peer's CLI and prints JSON lines. Scenarios are
interleaved: each repetition runs every scenario for every system (round-robin, with the
system order rotated per repetition), FLUSHDB before and after each run.

This script needs only the standard library. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402
from redis_process import RedisServer  # noqa: E402

SCENARIOS = [
    "enqueue_seq",
    "enqueue_batch",
    "drain_default",
    "drain_c100",
    "sleep_drain",
    "latency",  # reports "latency" and "round_trip"
    "memory",
]
TITLES = {
    "enqueue_seq": "a. enqueue, one awaited call at a time",
    "enqueue_batch": "b. enqueue, batch API (chunks of 1000)",
    "drain_default": "c. drain N no-op jobs, default concurrency",
    "drain_c100": "d. drain N no-op jobs, concurrency 100",
    "sleep_drain": "e. sleep drain: {sleep} x 50 ms jobs, concurrency 100",
    "latency": "f. enqueue → start latency (idle worker, {lat} jobs {gap:g} ms apart)",
    "round_trip": "g. enqueue → result round trip (sequential)",
    "memory": "h. memory: {mem} no-op jobs, concurrency 100",
}
SHORT_METRIC = {
    "throughput (1st start → N-th count)": "jobs/s",
    "throughput": "jobs/s",
}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# -- running adapters -------------------------------------------------------------------------


def adapter_cmd(system: peers.System, *argv: str) -> list[str]:
    return [system.python, str(peers.ADAPTERS / system.adapter), *argv]


#: Where the asyncjobs adapter imports asyncjobs from: this tree, or a --rev snapshot.
ASYNCJOBS_SRC = ROOT
ASYNCJOBS_LOOP = "asyncio"


def adapter_env(system: peers.System) -> dict[str, str]:
    env = {**os.environ, **system.env}
    env.pop("PYTHONPATH", None)  # each venv imports its own packages only
    if system.venv is None:
        # asyncjobs: this working tree (or the snapshot), whatever is installed
        env["PYTHONPATH"] = str(ASYNCJOBS_SRC)
        env["BENCH_ASYNCJOBS_LOOP"] = ASYNCJOBS_LOOP
    return env


def snapshot(rev: str) -> str:
    """``git archive REV asyncjobs`` into a temporary folder (others may be editing the tree)."""
    folder = tempfile.mkdtemp(prefix="peers-bench-asyncjobs-")
    tar = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev, "asyncjobs"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", folder], input=tar, check=True)
    return folder


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
    argv = [scenario, "--url", url, "--n", str(args.jobs), "--sleep-jobs", str(args.sleep_jobs)]
    argv += ["--memory-jobs", str(args.memory_jobs), "--latency-jobs", str(args.latency_jobs)]
    argv += ["--gap-ms", str(args.gap_ms), "--rt-budget-s", str(args.rt_budget)]
    argv += ["--logdir", logdir]
    errlog = os.path.join(logdir, f"{system.name}-{scenario}.stderr")
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
    if res.returncode != 0:
        with open(errlog, errors="replace") as f:
            tail = "".join(f.readlines()[-15:])
        return lines, f"exit {res.returncode}: {tail.strip()[-1500:]}"
    return lines, None


# -- results ----------------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        # (scenario, metric) -> {"unit", "better", "systems": {name: [samples]}}
        self.metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.na: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []
        self.notes: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, line: dict[str, Any]) -> None:
        system, scenario = line["system"], line["scenario"]
        if "na" in line:
            self.na.setdefault(scenario, {})[system] = line["na"]
            return
        m = self.metrics.setdefault(
            (scenario, line["metric"]),
            {"unit": line["unit"], "better": line["better"], "systems": {}},
        )
        m["systems"].setdefault(system, []).append(float(line["value"]))
        extra = {
            k: v
            for k, v in line.items()
            if k not in {"system", "scenario", "metric", "unit", "value", "better"}
        }
        if extra:
            self.notes.setdefault((scenario, system), {}).update(extra)


def fmt(v: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{v:,.0f}"
    if unit == "ms":
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    if unit == "MB":
        return f"{v:.1f}"
    return f"{v:.2f}"


def summarize(samples: list[float]) -> tuple[float, float, float]:
    return statistics.median(samples), min(samples), max(samples)


def cell(samples: list[float] | None, unit: str) -> str:
    if not samples:
        return ""
    med, lo, hi = summarize(samples)
    if len(samples) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} ({fmt(lo, unit)}-{fmt(hi, unit)})"


def ratio(m: dict[str, Any]) -> str:
    aj = m["systems"].get("asyncjobs")
    others = {k: summarize(v)[0] for k, v in m["systems"].items() if k != "asyncjobs" and v}
    if not aj or not others:
        return ""
    pick = max if m["better"] == "higher" else min
    best = pick(others, key=lambda k: others[k])
    if others[best] == 0:
        return ""
    r = summarize(aj)[0] / others[best]
    ahead = r >= 1 if m["better"] == "higher" else r <= 1
    return f"{r:.2f}x {best} {'✓' if ahead else '✗'}"


def table(res: Results, systems: list[str], args: argparse.Namespace) -> str:
    title_args = {
        "sleep": args.sleep_jobs,
        "lat": args.latency_jobs,
        "gap": args.gap_ms,
        "mem": args.memory_jobs,
    }
    head = ["Scenario", "Metric", *systems, "asyncjobs / best peer"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(systems) + "---|"]
    order = SCENARIOS[:6] + ["round_trip", "memory"]
    for scenario in order:
        title = TITLES[scenario].format(**title_args)
        keys = [k for k in res.metrics if k[0] == scenario]
        na = res.na.get(scenario, {})
        if not keys and not na:
            continue
        for key in keys:
            m = res.metrics[key]
            unit, arrow = m["unit"], "↑" if m["better"] == "higher" else "↓"
            cells = []
            for s in systems:
                c = cell(m["systems"].get(s), unit)
                if not c and s in na:
                    c = "n/a"
                if c and res.notes.get((scenario, s), {}).get("same_run_as"):
                    c += " †"
                cells.append(c)
            metric = f"{SHORT_METRIC.get(key[1], key[1])} [{unit} {arrow}]"
            if SHORT_METRIC.get(key[1]) == unit:
                metric = f"{unit} {arrow}"
            rows.append(f"| {title} | {metric} | " + " | ".join(cells) + f" | {ratio(m)} |")
            title = ""
        if not keys:
            rows.append(
                f"| {title} | | " + " | ".join("n/a" if s in na else "" for s in systems) + " | |"
            )
    return "\n".join(rows)


def profile_summary(path: str, top: int = 15) -> str:
    """Shares of py-spy's raw (collapsed-stack) samples: by leaf area, self, and inclusive."""
    self_c: dict[str, int] = {}
    incl: dict[str, int] = {}
    areas: dict[str, int] = {}
    total = startup = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            if any("importlib._bootstrap" in fr for fr in frames):
                startup += n  # module imports: worker start-up, not the drain
                continue
            funcs = [fr.rsplit(":", 1)[0] + ")" if fr.endswith(")") else fr for fr in frames]
            leaf = funcs[-1]
            self_c[leaf] = self_c.get(leaf, 0) + n
            for fn in set(funcs):
                if "(asyncjobs/" in fn and "(asyncjobs/cli.py)" not in fn:
                    incl[fn] = incl.get(fn, 0) + n
            where = leaf.rsplit("(", 1)[-1]
            area = next(
                (
                    a
                    for key, a in (
                        ("asyncjobs/", "asyncjobs"),
                        ("redis/", "redis-py"),
                        ("hiredis", "redis-py"),
                        ("logging/", "logging"),
                        ("bench_common", "benchmark task body"),
                        ("asyncio/", "asyncio"),
                        ("selectors", "asyncio"),
                    )
                    if key in where
                ),
                "other",
            )
            areas[area] = areas.get(area, 0) + n
    run = max(total - startup, 1)
    out = [
        f"\n### asyncjobs worker profile: py-spy, {total} samples at 250 Hz, "
        f"{100 * startup / max(total, 1):.0f}% start-up imports (left out below)"
    ]
    out.append(
        "\nby leaf area: "
        + ", ".join(
            f"{a} {100 * n / run:.0f}%" for a, n in sorted(areas.items(), key=lambda kv: -kv[1])
        )
    )
    for title, data in (("self", self_c), ("inclusive, asyncjobs functions", incl)):
        out.append(f"\ntop {top} by {title}:\n```")
        for fr, n in sorted(data.items(), key=lambda kv: -kv[1])[:top]:
            out.append(f"{100 * n / run:5.1f}%  {fr}")
        out.append("```")
    return "\n".join(out)


# -- main -------------------------------------------------------------------------------------


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


def git_rev(rev: str | None = None) -> str:
    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()

    if rev:
        return git("rev-parse", "--short", rev)
    dirty = git("status", "--porcelain", "--", "asyncjobs")
    return git("rev-parse", "--short", "HEAD") + ("+uncommitted" if dirty else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
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
        help="benchmark asyncjobs as committed at this revision (git archive into a "
        "temporary folder) instead of the working tree, e.g. while others edit it",
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

    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = [s for s in systems if s not in peers.SYSTEMS]
    if unknown:
        p.error(f"unknown system(s) {unknown}; known: {list(peers.SYSTEMS)}")
    if args.install:
        peers.install(systems, upgrade=args.upgrade)
        return
    missing = peers.check_installed(systems)
    if missing:
        p.error(f"not installed: {missing}; run `python benchmarks/run.py --install` first")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        p.error(f"unknown scenario(s) {bad}; known: {SCENARIOS}")
    q = args.quick
    args.repeat = args.repeat or (1 if q else 3)
    args.jobs = args.jobs or (2000 if q else 20_000)
    args.memory_jobs = args.memory_jobs or (10_000 if q else 100_000)
    args.rt_budget = args.rt_budget or (10.0 if q else 30.0)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_path = args.json or str(HERE / "results" / f"peers-{stamp}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    logdir = tempfile.mkdtemp(prefix="peers-bench-logs-")

    global ASYNCJOBS_SRC, ASYNCJOBS_LOOP
    ASYNCJOBS_LOOP = args.asyncjobs_loop
    snap = snapshot(args.rev) if args.rev and "asyncjobs" in systems else None
    if snap:
        ASYNCJOBS_SRC = Path(snap)
    versions = peers.read_versions()
    if "asyncjobs" in systems:
        versions["asyncjobs"] = peers.installed_versions(peers.SYSTEMS["asyncjobs"])
        versions["asyncjobs"]["asyncjobs"] += f" ({git_rev(args.rev)}, --loop {ASYNCJOBS_LOOP})"
    started = time.perf_counter()
    load_before = os.getloadavg()
    server = RedisServer("peers-bench-redis-").start()
    log(
        f"redis-server pid {server.proc.pid if server.proc else '?'} on {server.url}; "
        f"worker logs and adapter stderr in {logdir}"
    )
    res = Results()
    raw: list[dict[str, Any]] = []
    try:
        info = {s: adapter_info(peers.SYSTEMS[s], server.url) for s in systems}
        if "asyncjobs" in systems:
            check = subprocess.run(
                [sys.executable, "-c", "import asyncjobs; print(asyncjobs.__file__)"],
                env=adapter_env(peers.SYSTEMS["asyncjobs"]),
                cwd=peers.ADAPTERS,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            if not check.startswith(str(ASYNCJOBS_SRC / "asyncjobs")):
                raise RuntimeError(f"asyncjobs imported from {check}, not {ASYNCJOBS_SRC}")
        for rep in range(args.repeat):
            for scenario in scenarios:
                k = rep % len(systems)
                for name in systems[k:] + systems[:k]:
                    if scenario == "drain_default" and info[name]["default_concurrency"] == 100:
                        continue  # same run as drain_c100; copied below
                    server.flushdb()
                    t0 = time.perf_counter()
                    lines, error = run_one(peers.SYSTEMS[name], scenario, args, server.url, logdir)
                    took = time.perf_counter() - t0
                    for line in lines:
                        line["repetition"] = rep + 1
                        raw.append(line)
                        res.add(line)
                        if (
                            line["scenario"] == "drain_c100"
                            and "drain_default" in scenarios
                            and info[name]["default_concurrency"] == 100
                            and "na" not in line
                        ):
                            copy = {
                                **line,
                                "scenario": "drain_default",
                                "same_run_as": "drain_c100",
                            }
                            raw.append(copy)
                            res.add(copy)
                    status = "ok" if error is None else f"FAILED: {error}"
                    where = f"[rep {rep + 1}/{args.repeat}] {scenario:<13} {name:<11}"
                    log(f"{where} {took:6.1f}s {status}")
                    if error is not None:
                        res.errors.append(f"{name} {scenario} (rep {rep + 1}): {error}")
        if args.profile and "asyncjobs" in systems:
            server.flushdb()
            profile_env = {
                "BENCH_PYSPY": str(peers.PYSPY),
                "BENCH_PYSPY_OUT": os.path.abspath(args.profile),
            }
            aj = peers.SYSTEMS["asyncjobs"]
            aj = peers.System(
                aj.name, aj.venv, aj.requirements, aj.report, {**aj.env, **profile_env}, aj.adapter
            )
            log("[profile] one extra asyncjobs drain_c100 under py-spy (not counted)")
            _, error = run_one(aj, "drain_c100", args, server.url, logdir)
            if error:
                res.errors.append(f"profile run: {error}")
        redis_version = server.version()
    finally:
        server.stop()
        if snap:
            shutil.rmtree(snap, ignore_errors=True)
    env = {
        "machine": machine(),
        "redis_server": redis_version,
        "versions": versions,
        "systems": systems,
        "jobs": args.jobs,
        "repeat": args.repeat,
        "memory_jobs": args.memory_jobs,
        "sleep_jobs": args.sleep_jobs,
        "latency_jobs": args.latency_jobs,
        "gap_ms": args.gap_ms,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "default_concurrency": {s: info[s]["default_concurrency"] for s in systems},
    }
    with open(out_path, "w") as f:
        f.write(json.dumps({"kind": "env", **env}) + "\n")
        for line in raw:
            f.write(json.dumps({"kind": "sample", **line}) + "\n")
        for (scenario, metric), m in res.metrics.items():
            for s, samples in m["systems"].items():
                med, _lo, hi = summarize(samples)
                f.write(
                    json.dumps(
                        {
                            "kind": "summary",
                            "system": s,
                            "scenario": scenario,
                            "metric": metric,
                            "unit": m["unit"],
                            "better": m["better"],
                            "samples": samples,
                            "median": med,
                            "min": min(samples),
                            "max": hi,
                        }
                    )
                    + "\n"
                )
        for scenario, by_sys in res.na.items():
            for s, reason in by_sys.items():
                f.write(
                    json.dumps({"kind": "na", "system": s, "scenario": scenario, "reason": reason})
                    + "\n"
                )

    mc = env["machine"]
    print(
        f"## asyncjobs vs peers: N={args.jobs}, {args.repeat} repetition(s), "
        f"redis-server {redis_version}, Python {mc['python']}, {mc['cpus']} CPUs ({mc['cpu']})\n"
    )
    print(
        "Versions: "
        + "; ".join(
            f"{s}: " + ", ".join(f"{k} {v}" for k, v in versions.get(s, {}).items())
            for s in systems
        )
    )
    print(
        "Default concurrency: "
        + ", ".join(f"{s} {info[s]['default_concurrency']}" for s in systems)
    )
    print(
        "Cells: median (min-max) over repetitions. ↑ higher is better, ↓ lower is better. "
        "Ratio = asyncjobs median / best peer median; ✓ = asyncjobs ahead.\n"
    )
    print(table(res, systems, args))
    if any(v.get("same_run_as") for v in res.notes.values()):
        print("\n† default concurrency is 100: the figure is the concurrency-100 run (d).")
    if res.na:
        print("\nn/a:")
        for scenario, by_sys in res.na.items():
            for s, reason in by_sys.items():
                print(f"- {scenario} / {s}: {reason}")
    notes = {k: v for k, v in res.notes.items() if "missed_notifications" in v or "api" in v}
    if notes:
        print("\nAPIs used:")
        seen = set()
        for (scenario, s), v in sorted(notes.items()):
            if "api" in v and (scenario, s) not in seen:
                seen.add((scenario, s))
                extra = (
                    f" — {v['missed_notifications']} wait(s) ran into the 5 s timeout"
                    if v.get("missed_notifications")
                    else ""
                )
                print(f"- {scenario} / {s}: {v['api']}{extra}")
    if res.errors:
        print("\nFAILED runs:")
        for e in res.errors:
            print(f"- {e}")
    if args.profile and os.path.exists(args.profile):
        print(profile_summary(args.profile))
    print(
        f"\nload average before {load_before[0]:.2f}, after {env['load_after'][0]:.2f}; "
        f"total {time.perf_counter() - started:.0f}s; JSON lines: {out_path}"
    )


if __name__ == "__main__":
    main()
