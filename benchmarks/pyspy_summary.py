"""Summary of a py-spy raw profile (collapsed stacks) of an asyncjobs worker: run.py --profile.

Shares of the samples by leaf area (asyncjobs, redis-py, logging, the task body, asyncio), and
the top frames by self and inclusive time; module imports (worker start-up) are left out.
"""

from __future__ import annotations


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
