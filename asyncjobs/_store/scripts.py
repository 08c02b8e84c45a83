"""The Lua scripts and their calling convention, read from the scripts themselves.

Each script is the shared prelude followed by its own file. The prelude names the key block
(``KEY_NAMES``: the KEYS every script receives), the leading arguments every script receives,
and the fields of a new job (``JOB_FIELDS``); each script's header names its own arguments
(``ARGV[4] id   ARGV[5] token ...``) and, if it takes a repeated group, its fields
(``then, per job: id token result``). This module parses those, so the Lua is the one place the
contract is written; the store builds every call from it.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "extend",
    "complete",
    "fail",
    "requeue",
    "recover",
    "cancel",
    "progress",
    "checkpoint",
    "replay",
    "cron_tick",
    "cron_add",
    "cron_remove",
    "cron_declare",
    "heartbeat",
    "workflow_start",
    "pause",
    "stats",
    "purge",
    "replay_many",
    "dlq_search",
    "purge_dead_letters",
    "forget",
    "unknown_task",
    "partitions",
)


def _read(name: str) -> str:
    return (resources.files("asyncjobs") / "scripts" / f"{name}.lua").read_text()


def _lua_list(source: str, name: str) -> tuple[str, ...]:
    match = re.search(rf"local {name} = \{{(.*?)\}}", source, re.S)
    if match is None:
        raise RuntimeError(f"the Lua prelude defines no {name}")
    return tuple(re.findall(r"'([a-z_]+)'", match.group(1)))


def _lua_number(source: str, name: str) -> int:
    match = re.search(rf"local {name} = (\d+)\n", source)
    if match is None:
        raise RuntimeError(f"the Lua prelude defines no {name}")
    return int(match.group(1))


_PRELUDE = _read("_prelude")

#: The queue's keys every script receives as KEYS, in order (``<tag>:<name>`` each).
KEY_NAMES = _lua_list(_PRELUDE, "KEY_NAMES")
#: The fields of one new job, in the order enqueue and cron_tick read them.
JOB_FIELDS = _lua_list(_PRELUDE, "JOB_FIELDS")
#: How many arguments lead every script's ARGV (tag, keep_ms, dead_letter_cap, sharded).
LEADING = _lua_number(_PRELUDE, "LEADING")
#: ``_priority`` is clamped to ±PRIORITY_LIMIT by the scripts; enqueue refuses more.
PRIORITY_LIMIT = _lua_number(_PRELUDE, "PRIORITY_LIMIT")
LEADING_ARGS = tuple(
    name for _, name in sorted((int(i), n) for i, n in re.findall(r"ARGV\[(\d)\] (\w+)", _PRELUDE))
)


@dataclass(frozen=True)
class Script:
    """One script: full source (prelude included), SHA1, and the names of its own arguments."""

    name: str
    source: str
    sha: str
    args: tuple[str, ...]  # the fixed ARGV after the leading ones, in order
    each: tuple[str, ...]  # the fields of a repeated group after those ('' = none)


def _header(text: str) -> str:
    """The comment block at the top of a script, up to its Returns line."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("--") or line.startswith("-- Returns"):
            break
        lines.append(line)
    return "\n".join(lines)


def _parse(name: str, text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    header = _header(text)
    numbered = sorted((int(i), arg) for i, arg in re.findall(r"ARGV\[(\d+)\] (\w+)", header))
    positions = [i for i, _ in numbered]
    if positions != list(range(LEADING + 1, LEADING + 1 + len(positions))):
        raise RuntimeError(f"{name}.lua: its ARGV must be numbered {LEADING + 1}, {LEADING + 2}...")
    each: tuple[str, ...] = ()
    # "then, per job: a b c", maybe continued on lines holding nothing but names
    group = re.search(r"then, per \w+: ([\w ]+)((?:\n--\s+[a-z_ ]+$)*)", header, re.M)
    if group is not None:
        words = tuple((group.group(1) + group.group(2).replace("--", " ")).split())
        each = JOB_FIELDS if words == ("JOB_FIELDS",) else words
    return tuple(arg for _, arg in numbered), each


def _prelude_blocks(prelude: str) -> list[tuple[str | None, str]]:
    """The prelude cut into (function name, text) blocks; None for everything that is not a
    ``local function`` (kept by every script). A function's leading comment goes with it."""
    blocks: list[tuple[str | None, str]] = []
    lines: list[str] = []
    name: str | None = None
    for line in prelude.split("\n"):
        started = re.match(r"local function (\w+)\(", line)
        if started:
            comment: list[str] = []
            while lines and lines[-1].startswith("--"):
                comment.insert(0, lines.pop())
            blocks.append((None, "\n".join(lines)))
            lines, name = comment, started.group(1)
        lines.append(line)
        if name is not None and line == "end":
            blocks.append((name, "\n".join(lines)))
            lines, name = [], None
    blocks.append((None, "\n".join(lines)))
    return blocks


def prelude_for(own: str, prelude: str | None = None) -> str:
    """The prelude with only the helper functions ``own`` uses, directly or through another
    helper: Redis runs a script's whole text on every call, and defining the two dozen helpers
    every time was a third of a one-job enqueue's Redis time."""
    blocks = _prelude_blocks(_PRELUDE if prelude is None else prelude)
    functions = {name: text for name, text in blocks if name is not None}
    wanted: set[str] = set()
    pending = [own] + [text for name, text in blocks if name is None]
    while pending:
        text = pending.pop()
        for name in functions:
            if name not in wanted and re.search(rf"\b{name}\b", text):
                wanted.add(name)
                pending.append(functions[name])
    return "\n".join(text for name, text in blocks if name is None or name in wanted)


@cache
def load_scripts() -> dict[str, Script]:
    """Read every script from the package, prepending the shared prelude (the helper
    functions it uses)."""
    scripts = {}
    for name in SCRIPT_NAMES:
        own = _read(name)
        source = prelude_for(own) + "\n" + own
        args, each = _parse(name, own)
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[name] = Script(name, source, sha, args, each)
    return scripts
