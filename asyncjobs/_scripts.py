"""The Lua scripts: read from package data once, called by SHA, reloaded on NOSCRIPT."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from redis.exceptions import NoScriptError

from ._connection import is_cluster, wire_of

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
    "replay",
    "cron_tick",
    "heartbeat",
    "workflow_start",
)


@dataclass(frozen=True)
class Script:
    """One script's full source (prelude included) and its SHA1."""

    name: str
    source: str
    sha: str


@cache
def load_scripts() -> dict[str, Script]:
    """Read every script from the package, prepending the shared prelude."""
    folder = resources.files("asyncjobs") / "scripts"
    prelude = (folder / "_prelude.lua").read_text()
    scripts = {}
    for name in SCRIPT_NAMES:
        source = prelude + "\n" + (folder / f"{name}.lua").read_text()
        sha = hashlib.sha1(source.encode()).hexdigest()
        scripts[name] = Script(name, source, sha)
    return scripts


async def preload_scripts(redis: Any) -> None:
    """SCRIPT LOAD every script once (one pipeline), so calls are a single EVALSHA each."""
    if is_cluster(redis):  # cluster pipelines refuse SCRIPT LOAD; each call goes to all primaries
        for script in load_scripts().values():
            await redis.script_load(script.source)
        return
    async with redis.pipeline(transaction=False) as pipe:
        for script in load_scripts().values():
            pipe.script_load(script.source)
        await pipe.execute()


def evalsha_command(name: str, keys: list[str], args: list[Any]) -> tuple[Any, ...]:
    """The named script's EVALSHA as one command's arguments (for a pipeline or a Wire)."""
    return ("EVALSHA", load_scripts()[name].sha, len(keys), *keys, *args)


async def run_script(redis: Any, name: str, keys: list[str], args: list[Any]) -> Any:
    """EVALSHA the named script; on NOSCRIPT (a restarted or new server) load it and retry."""
    command = evalsha_command(name, keys, args)
    wire = wire_of(redis)
    execute = redis.execute_command if wire is None else wire.call
    try:
        return await execute(*command)
    except NoScriptError:
        await redis.script_load(load_scripts()[name].source)
        return await execute(*command)
