"""Static check of every script: it reads only the globals Redis gives a script.

A misspelt or out-of-scope local (say `attempts` used where it is not defined) is a global
read in Lua, and Redis only fails when that line runs; luac's listing shows it at once.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from asyncjobs._store.scripts import SCRIPT_NAMES, load_scripts

REDIS_GLOBALS = {"redis", "cjson", "KEYS", "ARGV", "math", "string", "table", "tonumber"}
REDIS_GLOBALS |= {"tostring", "ipairs", "pairs", "type", "pcall", "error", "unpack", "select"}
LUAC = shutil.which("luac5.1")


@pytest.mark.skipif(LUAC is None, reason="luac5.1 missing: apt-get install lua5.1 (.ci/run does)")
@pytest.mark.parametrize("name", SCRIPT_NAMES)
def test_script_reads_only_known_globals(name: str, tmp_path: Path) -> None:
    source = tmp_path / f"{name}.lua"
    source.write_text(load_scripts()[name].source)
    listing = subprocess.run(
        [str(LUAC), "-p", "-l", str(source)], capture_output=True, text=True, check=True
    ).stdout
    read = set(re.findall(r"GETGLOBAL\s.*?; (\S+)", listing))
    written = set(re.findall(r"SETGLOBAL\s.*?; (\S+)", listing))
    assert read <= REDIS_GLOBALS, f"{name}.lua reads unknown globals {read - REDIS_GLOBALS}"
    assert not written, f"{name}.lua writes globals {written} (Redis forbids it)"
