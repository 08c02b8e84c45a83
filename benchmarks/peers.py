"""The systems run.py compares, and how each one is installed (one virtual environment per peer).

Every peer lives in its own venv under ``benchmarks/.venvs/<venv>`` (git-ignored) because their
pins clash (arq wants ``redis<6``, taskiq-redis and pydocket want ``redis>=6``, streaq uses
coredis, bullmq gets ``redis<8``: see its entry). Peers come from PyPI through pip; nothing of
theirs is copied into this repository.

asyncjobs gets a venv too, with its runtime dependencies only (read from pyproject.toml), and
imports the working tree or a ``--rev`` snapshot through PYTHONPATH (run.py checks it does).
It used to run on the dev environment, where redis-py 7+ also imports the OpenTelemetry SDK
(installed there for the tests): start-up and RSS figures that no user without the SDK sees.

Every venv also gets ``hiredis`` (asyncjobs depends on ``redis[hiredis]``, arq already pulls it
in; giving it to the other redis-py users too keeps the reply parser the same for everyone) and
``redis`` (the plain client the benchmark tasks use for their one ``INCR``; streaq itself is on
coredis and does not need it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _runtime_requirements() -> tuple[str, ...]:
    """asyncjobs's own dependencies as pyproject.toml lists them (and uvloop, for --loop)."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("\ndependencies = [", 1)[1].split("\n]", 1)[0]
    return (*re.findall(r'^\s*"([^"]+)"', block, re.M), "uvloop")


VENVS = HERE / ".venvs"
ADAPTERS = HERE / "adapters"
VERSIONS_FILE = VENVS / "versions.json"
#: py-spy for run.py --profile, in a tools venv of its own
PYSPY = VENVS / "tools" / "bin" / "py-spy"


@dataclass(frozen=True)
class System:
    name: str
    #: venv folder under .venvs/, or None for the interpreter running run.py
    venv: str | None
    #: pip requirement strings for the venv
    requirements: tuple[str, ...] = ()
    #: distributions whose versions are reported
    report: tuple[str, ...] = ()
    #: extra environment for the adapter and its workers
    env: dict[str, str] = field(default_factory=dict)
    #: adapter script in adapters/
    adapter: str = ""
    #: in the default --systems set
    default: bool = True

    @property
    def python(self) -> str:
        if self.venv is None:
            return sys.executable
        return str(VENVS / self.venv / "bin" / "python")

    @property
    def bin_dir(self) -> str:
        return os.path.dirname(self.python)


SYSTEMS: dict[str, System] = {
    s.name: s
    for s in (
        System(
            "asyncjobs",
            "asyncjobs",
            _runtime_requirements(),
            ("redis", "hiredis", "pydantic"),  # the package itself comes from its source
            adapter="asyncjobs_bench.py",
        ),
        System(
            "arq",
            "arq",
            ("arq", "hiredis"),
            ("arq", "redis", "hiredis"),
            adapter="arq_bench.py",
        ),
        System(
            "saq",
            "saq",
            ("saq[redis]", "hiredis", "typing_extensions"),  # saq 0.26.4 imports it undeclared
            ("saq", "redis", "hiredis"),
            adapter="saq_bench.py",
        ),
        System(
            "streaq",
            "streaq",
            ("streaq", "redis", "hiredis"),
            ("streaq", "coredis", "anyio", "redis"),
            adapter="streaq_bench.py",
        ),
        System(
            "taskiq",
            "taskiq",
            ("taskiq", "taskiq-redis", "hiredis"),
            ("taskiq", "taskiq-redis", "redis", "hiredis"),
            env={"BENCH_TASKIQ_BROKER": "stream"},
            adapter="taskiq_bench.py",
        ),
        # Same venv, ListQueueBroker (BRPOP, no acknowledgement: at-most-once). Opt-in only.
        System(
            "taskiq_list",
            "taskiq",
            ("taskiq", "taskiq-redis", "hiredis"),
            ("taskiq", "taskiq-redis", "redis", "hiredis"),
            env={"BENCH_TASKIQ_BROKER": "list"},
            adapter="taskiq_bench.py",
            default=False,
        ),
        System(
            "docket",
            "docket",
            ("pydocket", "hiredis"),
            ("pydocket", "redis", "hiredis"),
            adapter="docket_bench.py",
        ),
        # redis<8: redis-py 8 reads with a 5 s socket timeout by default, shorter than bullmq
        # 3.4's blocking reads (the worker's BZPOPMIN up to drainDelay 5 s, QueueEvents' XREAD
        # BLOCK 10 s): they time out and are retried after a 2 s backoff, so a job can start
        # 2 s late and a completed event arrive seconds late. bullmq allows redis>=6.2,<9.
        System(
            "bullmq",
            "bullmq",
            ("bullmq", "redis<8", "hiredis"),
            ("bullmq", "redis", "hiredis", "msgpack"),
            adapter="bullmq_bench.py",
        ),
    )
}

DEFAULT_SYSTEMS = [s.name for s in SYSTEMS.values() if s.default]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def installed_versions(system: System) -> dict[str, str]:
    """Versions of ``system.report`` as seen by the system's own interpreter."""
    code = (
        "import json, sys\n"
        "from importlib.metadata import version, PackageNotFoundError\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        out[name] = version(name)\n"
        "    except PackageNotFoundError:\n"
        "        out[name] = None\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run(
        [system.python, "-c", code, *system.report], capture_output=True, text=True, check=True
    )
    return dict(json.loads(res.stdout))


def install(names: list[str], upgrade: bool = False) -> dict[str, dict[str, str]]:
    """Create the venvs (python -m venv) and pip-install each peer; write versions.json."""
    VENVS.mkdir(exist_ok=True)
    done: set[str] = set()
    for name in names:
        system = SYSTEMS[name]
        if system.venv is None or system.venv in done:
            continue
        done.add(system.venv)
        venv = VENVS / system.venv
        if not (venv / "bin" / "python").exists():
            log(f"[install] python -m venv {venv}")
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        cmd = [system.python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        if upgrade:
            cmd.append("--upgrade")
        log(f"[install] {system.venv}: pip install {' '.join(system.requirements)}")
        subprocess.run([*cmd, *system.requirements], check=True)
    if not PYSPY.exists():
        log("[install] tools: python -m venv + pip install py-spy (for run.py --profile)")
        subprocess.run([sys.executable, "-m", "venv", str(VENVS / "tools")], check=True)
        subprocess.run(
            [
                str(VENVS / "tools" / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "py-spy",
            ],
            check=True,
        )
    versions = {name: installed_versions(SYSTEMS[name]) for name in names}
    old = read_versions()
    old.update(versions)
    VERSIONS_FILE.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")
    for name, v in versions.items():
        log(f"[install] {name}: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    return versions


def read_versions() -> dict[str, dict[str, str]]:
    try:
        return dict(json.loads(VERSIONS_FILE.read_text()))
    except (OSError, ValueError):
        return {}


def check_installed(names: list[str]) -> list[str]:
    """Names of systems whose interpreter is missing (run ``run.py --install`` first)."""
    return [n for n in names if not os.path.exists(SYSTEMS[n].python)]


def asyncjobs_worker(url: str, jobs: int, extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """Command and environment of an ``asyncjobs worker`` for the scripts beside run.py
    (worker_cost.py, bench_scaling.py): on asyncjobs's runtime-only venv when run.py --install
    made it, as run.py's own workers, importing this working tree; else on this interpreter."""
    import asyncjobs_bench  # adapters/ is on the caller's sys.path

    cmd = asyncjobs_bench.Adapter().worker_cmd(url, None) + extra
    runtime = SYSTEMS["asyncjobs"].python
    if os.path.exists(runtime):
        cmd[0] = runtime
    path = os.pathsep.join(p for p in (str(ADAPTERS), str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "BENCH_REDIS_URL": url, "BENCH_TARGET": str(jobs), "PYTHONPATH": path}
    return cmd, env
