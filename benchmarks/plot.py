#!/usr/bin/env python
"""Draw a side-by-side run (the JSON lines of benchmarks/run.py) as one PNG of bar charts.

    pip install -e '.[bench]'     # matplotlib
    python benchmarks/plot.py benchmarks/results/peers-<time>.jsonl -o docs/benchmarks.png

Each panel is one metric; a bar is the median over repetitions, the whisker its min-max.
Latency panels use a log scale (pollers sit two orders of magnitude above the rest).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

#: (scenario, metric, panel title, log scale)
PANELS = [
    ("enqueue_seq", "throughput", "enqueue, one call at a time (jobs/s, higher is better)", False),
    ("enqueue_batch", "throughput", "enqueue, batch API (jobs/s)", False),
    ("drain_c100", "throughput", "drain no-op jobs, concurrency 100 (jobs/s)", False),
    ("sleep_drain", "elapsed", "sleep drain 2000 x 50 ms (s, ideal 1.0, lower is better)", False),
    ("latency", "p50", "enqueue -> start, idle worker, p50 (ms, log)", True),
    ("round_trip", "p50", "enqueue -> result, p50 (ms, log)", True),
    ("drain_c100", "Redis CPU", "Redis CPU per job, drain at concurrency 100 (µs)", False),
    ("enqueue_batch", "Redis CPU", "Redis CPU per job, batch enqueue (µs)", False),
]
#: bar order when the run's env line does not list its systems
SYSTEMS = ["asyncjobs", "arq", "saq", "streaq", "taskiq", "docket", "bullmq"]


def load(path: Path) -> tuple[dict[tuple[str, str], dict[str, list[float]]], dict[str, Any]]:
    samples: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    env: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        row = json.loads(line)
        if row.get("kind") == "env":
            env = row
        elif "value" in row:
            samples[(row["scenario"], row["metric"])][row["system"]].append(float(row["value"]))
    return samples, env


def metric_key(samples: dict[tuple[str, str], Any], scenario: str, metric: str) -> Any:
    """The metric whose name contains ``metric`` (run.py's names are descriptive)."""
    for key in samples:
        if key[0] == scenario and metric in key[1]:
            return key
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON lines written by benchmarks/run.py")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks.png"))
    args = parser.parse_args()
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("matplotlib is not installed: pip install -e '.[bench]'") from None

    samples, env = load(args.results)
    systems = env.get("systems") or SYSTEMS
    panels = [(p, metric_key(samples, p[0], p[1])) for p in PANELS]
    panels = [(p, k) for p, k in panels if k is not None]
    if not panels:
        raise SystemExit(f"no known scenario in {args.results}")
    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3.2 * rows), squeeze=False)
    for ax, ((_, _, title, log), key) in zip(axes.flat, panels, strict=False):
        by_system = samples[key]
        names = [s for s in systems if by_system.get(s)]
        medians = [statistics.median(by_system[s]) for s in names]
        low = [m - min(by_system[s]) for m, s in zip(medians, names, strict=True)]
        high = [max(by_system[s]) - m for m, s in zip(medians, names, strict=True)]
        colors = ["#d62728" if s == "asyncjobs" else "#7f7f7f" for s in names]
        ax.bar(names, medians, yerr=[low, high], color=colors, capsize=3)
        ax.set_title(title, fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        if log:
            ax.set_yscale("log")
        for x, value in enumerate(medians):
            label = f"{value:,.0f}" if value >= 100 else f"{value:.2f}"
            ax.annotate(label, (x, value), ha="center", va="bottom", fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    machine = env.get("machine", {})
    fig.suptitle(
        f"asyncjobs vs peers — redis-server {env.get('redis_server', '?')}, Python "
        f"{machine.get('python', '?')}, {machine.get('cpus', '?')} CPUs",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
