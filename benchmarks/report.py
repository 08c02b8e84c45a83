"""A run.py run's results: samples per (scenario, metric, system), Markdown table, JSON lines.

Standard library only (run.py runs the peers' interpreters and imports nothing of theirs).
"""

from __future__ import annotations

import json
import statistics
from typing import Any

#: table order of the scenarios ("latency" runs report "latency" and "round_trip")
TABLE_ORDER = [
    "enqueue_seq",
    "enqueue_batch",
    "drain_default",
    "drain_c100",
    "sleep_drain",
    "latency",
    "round_trip",
    "memory",
    "drain_burst",
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
    "drain_burst": "i. burst drain: N no-op jobs, concurrency 100, worker exits when done",
}
#: row order inside a scenario; metrics not listed come last
METRIC_ORDER = [
    "throughput",
    "throughput (1st start → N-th count)",
    "throughput (1st start → last ack)",
    "elapsed (ideal 1.0 s)",
    "worker startup (spawn → 1st job)",
    "wall (spawn → exit)",
    "exit after the N-th count",
    "p50",
    "p95",
    "p99",
    "worker RSS after the run",
    "worker peak RSS (VmHWM)",
    "Redis used_memory, N queued",
    "Redis used_memory, after the run",
    "worker CPU",
    "Redis CPU",
    "Redis commands",
]
#: metrics whose unit says it all in the table
SHORT_METRIC = {"throughput (1st start → N-th count)", "throughput"}
#: fields of a sample line that are not notes
SAMPLE_FIELDS = {"system", "scenario", "metric", "unit", "value", "better", "repetition"}


class Results:
    def __init__(self) -> None:
        # (scenario, metric) -> {"unit", "better", "systems": {name: [samples]}}
        self.metrics: dict[tuple[str, str], dict[str, Any]] = {}
        self.na: dict[str, dict[str, str]] = {}
        self.errors: list[str] = []
        self.notes: dict[tuple[str, str], dict[str, Any]] = {}
        #: every line as the adapters printed it, plus the repetition
        self.raw: list[dict[str, Any]] = []

    def add(self, line: dict[str, Any]) -> None:
        self.raw.append(line)
        system, scenario = line["system"], line["scenario"]
        if "na" in line:
            self.na.setdefault(scenario, {})[system] = line["na"]
            return
        m = self.metrics.setdefault(
            (scenario, line["metric"]),
            {"unit": line["unit"], "better": line["better"], "systems": {}},
        )
        m["systems"].setdefault(system, []).append(float(line["value"]))
        extra = {k: v for k, v in line.items() if k not in SAMPLE_FIELDS}
        if extra:
            self.notes.setdefault((scenario, system), {}).update(extra)


def fmt(v: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{v:,.0f}"
    if unit == "ms":
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    if unit in {"MB", "µs/job", "cmd/job"}:
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


def ratio(m: dict[str, Any], ours: str, rivals: list[str]) -> str:
    """Our median over the best rival's, with ✓ where ours is ahead."""
    aj = m["systems"].get(ours)
    others = {k: summarize(v)[0] for k, v in m["systems"].items() if k in rivals and v}
    if not aj or not others:
        return ""
    pick = max if m["better"] == "higher" else min
    best = pick(others, key=lambda k: others[k])
    if others[best] == 0:
        return ""
    r = summarize(aj)[0] / others[best]
    ahead = r >= 1 if m["better"] == "higher" else r <= 1
    return f"{r:.2f}x {best} {'✓' if ahead else '✗'}"


def metric_label(metric: str, unit: str, better: str) -> str:
    arrow = "↑" if better == "higher" else "↓"
    return f"{unit} {arrow}" if metric in SHORT_METRIC else f"{metric} [{unit} {arrow}]"


def rank(metric: str) -> int:
    return METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)


def table(res: Results, systems: list[str], title_args: dict[str, Any]) -> str:
    """One row per (scenario, metric); ratio columns for the last asyncjobs (asyncjobs@REV with
    several revisions) against the best peer and, with several, against the first revision."""
    ours = [s for s in systems if s == "asyncjobs" or s.startswith("asyncjobs@")]
    peers = [s for s in systems if s not in ours]
    head = ["Scenario", "Metric", *systems]
    if ours:
        head.append(f"{ours[-1]} / best peer")
    if len(ours) > 1:
        head.append(f"{ours[-1]} / {ours[0]}")
    extra = len(head) - 2 - len(systems)
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * 2 + "---:|" * len(systems)]
    rows[1] += "---|" * extra
    for scenario in TABLE_ORDER:
        title = TITLES[scenario].format(**title_args)
        keys = sorted((k for k in res.metrics if k[0] == scenario), key=lambda k: rank(k[1]))
        na = res.na.get(scenario, {})
        if not keys and not na:
            continue
        for key in keys:
            m = res.metrics[key]
            cells = []
            for s in systems:
                c = cell(m["systems"].get(s), m["unit"])
                if not c and s in na:
                    c = "n/a"
                if c and res.notes.get((scenario, s), {}).get("same_run_as"):
                    c += " †"
                cells.append(c)
            if ours:
                cells.append(ratio(m, ours[-1], peers))
            if len(ours) > 1:
                cells.append(ratio(m, ours[-1], ours[:1]))
            label = metric_label(key[1], m["unit"], m["better"])
            rows.append(f"| {title} | {label} | " + " | ".join(cells) + " |")
            title = ""
        if not keys:
            cells = ["n/a" if s in na else "" for s in systems] + [""] * extra
            rows.append(f"| {title} | | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def write_jsonl(path: str, env: dict[str, Any], res: Results) -> None:
    """One env line, every sample, a summary per (system, scenario, metric), every n/a."""
    with open(path, "w") as f:
        f.write(json.dumps({"kind": "env", **env}) + "\n")
        for line in res.raw:
            f.write(json.dumps({"kind": "sample", **line}) + "\n")
        for (scenario, metric), m in res.metrics.items():
            for s, samples in m["systems"].items():
                med, lo, hi = summarize(samples)
                summary = {"kind": "summary", "system": s, "scenario": scenario}
                summary.update(metric=metric, unit=m["unit"], better=m["better"])
                summary.update(samples=samples, median=med, min=lo, max=hi)
                f.write(json.dumps(summary) + "\n")
        for scenario, by_sys in res.na.items():
            for s, reason in by_sys.items():
                na = {"kind": "na", "system": s, "scenario": scenario, "reason": reason}
                f.write(json.dumps(na) + "\n")


def notes_text(res: Results) -> str:
    """The table's footnotes: †, n/a reasons, APIs used, failed runs."""
    out = []
    if any(v.get("same_run_as") for v in res.notes.values()):
        out.append("\n† default concurrency is 100: the figure is the concurrency-100 run (d).")
    if res.na:
        out.append("\nn/a:")
        for scenario, by_sys in res.na.items():
            out += [f"- {scenario} / {s}: {reason}" for s, reason in by_sys.items()]
    apis = sorted((k, v) for k, v in res.notes.items() if "api" in v)
    if apis:
        out.append("\nAPIs used:")
        for (scenario, s), v in apis:
            missed = v.get("missed_notifications")
            extra = f" — {missed} wait(s) ran into the 5 s timeout" if missed else ""
            out.append(f"- {scenario} / {s}: {v['api']}{extra}")
    if res.errors:
        out.append("\nFAILED runs:")
        out += [f"- {e}" for e in res.errors]
    return "\n".join(out)
