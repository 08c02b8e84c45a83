"""The least Redis ACL a worker and a producer need, as ``ACL SETUSER`` rules.

Commands: those the scripts call (read from the Lua, so a new one cannot be forgotten) and those
the store sends itself. Keys: a worker may use every key of the prefix; a producer every key of
the form ``{<prefix>:<queue>}:...`` and the queue registry, but not ``{<prefix>:<queue>}!worker``,
which every script only workers run writes first (see ``workers_only`` in the prelude): so a
producer-only user can enqueue, wait, cancel and replay, but not claim, ack or extend.
"""

from __future__ import annotations

import re
from typing import Literal

from .scripts import load_scripts

Role = Literal["worker", "producer"]

#: Commands the store sends itself, outside scripts (reads, waits, pub/sub, loading scripts);
#: tests/test_acl.py holds it against the redis-py calls the store's code makes.
CLIENT_COMMANDS = (
    "ping",
    "select",
    "time",
    "evalsha",
    "script|load",
    "bzpopmin",
    "zadd",
    "zrange",
    "zcard",
    "zcount",
    "zscore",
    "sadd",
    "srem",
    "smembers",
    "hget",
    "hmget",
    "hgetall",
    "hkeys",
    "hlen",
    "lrange",
    "xlen",
    "xrange",
    "xrevrange",
    "xtrim",
    "subscribe",
    "unsubscribe",
    "ssubscribe",
    "config|get",
    # redis-py's cluster client, to connect: the slot map, the commands' key positions, and
    # (redis-py 5.0) INFO, to see that the node is in a cluster
    "cluster|slots",
    "command",
    "info",
)


def script_commands() -> set[str]:
    """Every command any script calls."""
    found: set[str] = set()
    for script in load_scripts().values():
        found |= {name.lower() for name in re.findall(r"rcall\('([A-Z]+)'", script.source)}
    return found


def commands() -> list[str]:
    return sorted(set(CLIENT_COMMANDS) | script_commands())


def acl_rules(role: Role, prefix: str = "asyncjobs") -> list[str]:
    """The rules of an ``ACL SETUSER <name> on ><password> ...`` line for this role."""
    keys = (f"~{{{prefix}:*}}*",) if role == "worker" else (f"~{{{prefix}:*}}:*",)
    rules = ["resetkeys", *keys, f"~{prefix}:*", "resetchannels", f"&{{{prefix}:*}}:*"]
    return rules + ["-@all"] + [f"+{name}" for name in commands()]
