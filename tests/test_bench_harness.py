"""The benchmarks start their own server the way the tests do, so they run on a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def _latency_floor(**env: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "benchmarks/latency_floor.py", "--samples", "5", "--gap-ms", "2"]
    return subprocess.run(
        argv, cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


def test_a_benchmark_runs_on_the_server_the_tests_found() -> None:
    run = _latency_floor()
    assert run.returncode == 0, run.stderr
    assert "Wire: wake + pipelined script" in run.stdout


def test_a_benchmark_without_a_server_says_what_to_install_in_one_line() -> None:
    run = _latency_floor(ASYNCJOBS_TEST_REDIS_SERVER="/nonexistent/redis-server")
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: ASYNCJOBS_TEST_REDIS_SERVER=/nonexistent/redis-server is not an executable "
        "file or command"
    ]
