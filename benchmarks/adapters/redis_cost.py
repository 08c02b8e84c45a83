"""What a stretch of work cost Redis: CPU time of the server process and the commands it ran.

Two snapshots of ``INFO cpu`` (used_cpu_sys + used_cpu_user) and ``INFO commandstats``; the
difference, per job. Redis counts the commands a Lua script runs like a client's, so an EVALSHA
whose script does three HSETs counts as four. The harness's own commands between the snapshots
(its polling, the two INFOs that fall inside the window) are taken out by name.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

#: INFO calls inside the window: the first snapshot's commandstats, the second one's cpu
OWN_INFO_CALLS = 2


@dataclass(frozen=True)
class RedisUsage:
    cpu_s: float
    calls: dict[str, int]


@dataclass(frozen=True)
class RedisCost:
    cpu_us_per_job: float
    commands_per_job: float
    #: command name -> calls per job, largest first
    by_command: dict[str, float]


async def read_usage(client: Any) -> RedisUsage:
    """One snapshot through a redis-py asyncio client."""
    cpu = await client.info("cpu")
    stats = await client.info("commandstats")
    calls = {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()}
    return RedisUsage(float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), calls)


def cost(before: RedisUsage, after: RedisUsage, jobs: int, harness: Counter[str]) -> RedisCost:
    """Per-job difference of two snapshots, less ``harness`` (commands the benchmark sent)."""
    own = harness + Counter({"info": OWN_INFO_CALLS})
    delta = {
        name: after.calls.get(name, 0) - before.calls.get(name, 0) - own.get(name, 0)
        for name in after.calls
    }
    ran = {name: n for name, n in delta.items() if n > 0}
    return RedisCost(
        cpu_us_per_job=(after.cpu_s - before.cpu_s) * 1e6 / jobs,
        commands_per_job=sum(ran.values()) / jobs,
        by_command={k: round(v / jobs, 4) for k, v in sorted(ran.items(), key=lambda kv: -kv[1])},
    )
