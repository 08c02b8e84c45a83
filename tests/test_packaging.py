"""The distribution: its name, what the wheel holds, and a job run from an installed wheel.

The wheel test builds with ``python -m build`` as a release would, installs the wheel into a
fresh virtual environment and runs a job on memory:// from a directory outside the checkout,
so it imports the installed copy, never this tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
DIST = re.search(r'^name = "([^"]+)"', PYPROJECT, re.M).group(1)  # type: ignore[union-attr]
VERSION = re.search(r'^version = "([^"]+)"', PYPROJECT, re.M).group(1)  # type: ignore[union-attr]

#: Files users read that may tell them what to install.
USER_FACING = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
USER_FACING += sorted((ROOT / "asyncjobs").rglob("*.py")) + sorted((ROOT / "examples").glob("*.py"))

LEFTOVERS = (".git", ".venv*", "*.egg-info", "build", "dist", "site", "__pycache__", ".*_cache")
LEFTOVERS += ("benchmarks",)  # not part of the distribution, and may hold large venvs

RUN_A_JOB = """
import asyncio, importlib.metadata, pathlib, sys
import asyncjobs
from asyncjobs import Context, Queue, Worker, WorkerSettings, task

@task
async def add(ctx: Context, a: int, b: int) -> int:
    return a + b

async def main() -> None:
    async with Queue("memory://wheel") as queue:
        job = await queue.enqueue(add, 2, 3)
        await Worker(WorkerSettings(redis_url="memory://wheel", functions=[add])).run(
            burst=True, handle_signals=False
        )
        print(await job.result(timeout=10))

asyncio.run(main())
print(pathlib.Path(asyncjobs.__file__).resolve())
print(asyncjobs.__version__)
print(importlib.metadata.version("asyncjobs-redis"))
"""


def test_the_version_in_the_code_is_pyprojects() -> None:
    """asyncjobs keeps its version in the code (reading the metadata slowed every start)."""
    from asyncjobs._version import VERSION as CODE_VERSION

    assert CODE_VERSION == VERSION, "bump asyncjobs/_version.py with pyproject.toml's version"


def test_the_distribution_name_is_not_the_taken_one() -> None:
    assert DIST != "asyncjobs", "'asyncjobs' on the package index is an unrelated project"
    assert '\nasyncjobs = "asyncjobs.cli:main"\n' in PYPROJECT  # the command keeps its name


def test_every_install_command_names_the_distribution() -> None:
    """`pip install asyncjobs-redis[...]` would install someone else's project."""
    wrong = re.compile(r"pip install\s+['\"]?asyncjobs(?![-\w])")
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in USER_FACING
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if wrong.search(line)
    ]
    assert not found, (
        "install commands naming 'asyncjobs' instead of " + DIST + ":\n" + "\n".join(found)
    )


@pytest.mark.packaging
def test_the_wheel_installs_and_runs_a_job_outside_the_checkout(tmp_path: Path) -> None:
    # Build from a copy without build leftovers: a stale *.egg-info/SOURCES.txt would put files
    # in the sdist that MANIFEST.in no longer asks for.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*LEFTOVERS))
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    [wheel] = dist.glob("*.whl")
    assert wheel.name.startswith(DIST.replace("-", "_") + "-")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "asyncjobs").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert shipped - names == set(), "files of the package missing from the wheel"
    assert any(n.endswith(".lua") for n in names) and "asyncjobs/py.typed" in names
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info/METADATA"))
    )
    assert b"License-Expression: MIT" in metadata
    assert any(n.endswith("licenses/LICENSE") for n in names)

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip_env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
        env=pip_env,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    clean_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    run = subprocess.run(
        [str(python), "-c", RUN_A_JOB],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env,
    )
    assert run.returncode == 0, run.stderr
    result, location, version, installed = run.stdout.splitlines()
    assert result == "5"
    assert Path(location).is_relative_to(env_dir.resolve()), location
    assert version == installed == VERSION, "asyncjobs.__version__ is the distribution's"
    command = subprocess.run(
        [str(env_dir / "bin" / "asyncjobs"), "--help"],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env,
    )
    assert command.returncode == 0 and "worker" in command.stdout, command.stderr
