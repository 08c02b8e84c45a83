"""The benchmarks start their own server the way the tests do, so they run on a fresh machine."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from .redis_server import find_server

ROOT = Path(__file__).parent.parent
BENCH = ROOT / "benchmarks"


def test_the_benchmarks_start_the_server_the_tests_found() -> None:
    spec = importlib.util.spec_from_file_location("redis_process", BENCH / "redis_process.py")
    assert spec is not None and spec.loader is not None
    redis_process = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(redis_process)
    server = redis_process.RedisServer().start()
    try:
        assert server.binary == find_server().path
        assert server.command("PING").startswith(b"+PONG")
    finally:
        server.stop()


def test_a_benchmark_without_a_server_says_what_to_install_in_one_line() -> None:
    argv = [sys.executable, str(BENCH / "latency_floor.py"), "--samples", "5"]
    env = {**os.environ, "ASYNCJOBS_TEST_REDIS_SERVER": "/nonexistent/redis-server"}
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: ASYNCJOBS_TEST_REDIS_SERVER=/nonexistent/redis-server is not an executable "
        "file or command"
    ]
