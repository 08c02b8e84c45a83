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
from dataclasses import dataclass, field
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
    "leave",
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
    """One script: full source (prelude included), SHA1, the keys it takes and the names of
    its own arguments."""

    name: str
    source: str
    sha: str
    keys: tuple[str, ...]  # the KEY_NAMES it uses, in the prelude's order: its KEYS
    args: tuple[str, ...]  # the fixed ARGV after the leading ones, in order
    each: tuple[str, ...]  # the fields of a repeated group after those ('' = none)
    arg_set: frozenset[str] = field(init=False, repr=False)  # args, for checking each call

    def __post_init__(self) -> None:
        object.__setattr__(self, "arg_set", frozenset(self.args))


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


def _words(text: str) -> set[str]:
    """The names a piece of Lua uses, its comments and the contents of its strings aside (no
    string in our scripts holds "--")."""
    return set(re.findall(r"\w+", re.sub(r"'[^'\n]*'", "''", re.sub(r"--[^\n]*", "", text))))


@cache
def _prelude_parts() -> tuple[list[tuple[str | None, str]], dict[str, set[str]], set[str]]:
    """The prelude's blocks, the names each helper function uses, and the names the rest uses."""
    blocks = _prelude_blocks(_PRELUDE)
    uses = {name: _words(text) for name, text in blocks if name is not None}
    common = set().union(*(_words(text) for name, text in blocks if name is None))
    return blocks, uses, common


def prelude_for(own: str) -> str:
    """The prelude with only the helper functions ``own`` uses, directly or through another
    helper: Redis runs a script's whole text on every call, and defining the two dozen helpers
    every time was a third of a one-job enqueue's Redis time."""
    blocks, uses, common = _prelude_parts()
    seen = _words(own) | common
    wanted: set[str] = set()
    pending = [name for name in uses if name in seen]
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending += [other for other in uses if other in uses[name] and other not in wanted]
    return "\n".join(text for name, text in blocks if name is None or name in wanted)


_K_FROM_ALL_KEYS = "local K = {}\nfor i, name in ipairs(KEY_NAMES) do K[name] = KEYS[i] end\n"


def specialize(source: str) -> tuple[str, tuple[str, ...]]:
    """``source`` with K built from only the keys it uses, and P holding only the prefixes it
    uses; and those keys, in KEY_NAMES order (at least one: a cluster client routes a script
    call by its first key)."""
    code = re.sub(r"'[^'\n]*'", "''", re.sub(r"--[^\n]*", "", source))
    dotted = set(re.findall(r"\b([KP]\.\w+)", code))
    used = tuple(n for n in KEY_NAMES if f"K.{n}" in dotted) or KEY_NAMES[:1]
    if _K_FROM_ALL_KEYS not in source:
        raise RuntimeError("the Lua prelude no longer builds K as the loader expects")
    table = ", ".join(f"{name} = KEYS[{i}]" for i, name in enumerate(used, 1))
    source = source.replace(_K_FROM_ALL_KEYS, f"local K = {{{table}}}\n")
    names = re.compile(r"local KEY_NAMES = \{.*?\}\n", re.S)
    if "KEY_NAMES" not in _words(names.sub("", source, count=1)):  # kept for forget.lua
        source = names.sub("", source, count=1)
    prefixes = re.search(r"local P = \{(.*?)\}\n", source, re.S)
    if prefixes is None:
        raise RuntimeError("the Lua prelude defines no P")
    entries = re.findall(r"(\w+) = (TAG \.\. '[^']*')", prefixes.group(1))
    kept = ", ".join(f"{n} = {v}" for n, v in entries if f"P.{n}" in dotted)
    source = source[: prefixes.start()] + f"local P = {{{kept}}}\n" + source[prefixes.end() :]
    return source, used


@cache
def load_scripts() -> dict[str, Script]:
    """Read every script from the package, prepending the shared prelude (the helper
    functions it uses, and its key block cut to the keys it uses)."""
    scripts = {}
    for name in SCRIPT_NAMES:
        own = _read(name)
        source, keys = specialize(prelude_for(own) + "\n" + own)
        args, each = _parse(name, own)
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[name] = Script(name, source, sha, keys, args, each)
    return scripts
