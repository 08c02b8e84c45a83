"""A worker as a subprocess the benchmark owns: started, measured and stopped by its own PIDs.

Standard library only: the adapters (each in its peer's venv) and bench_scaling.py use it.
py-spy can sample it (run.py ``--profile``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time

#: SIGTERM → SIGKILL grace for a worker (taskiq's worker process does not exit on its own)
STOP_GRACE_S = 10.0
HERE = os.path.dirname(os.path.abspath(__file__))


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += _children(p)
    return tree


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()  # the command name may hold spaces
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


class WorkerProcess:
    """One worker command (a peer's CLI) as a subprocess, its output in a log file."""

    def __init__(self, cmd: list[str], env: dict[str, str], logdir: str, label: str) -> None:
        self.cmd = cmd
        self.env = env
        fd, self.log_path = tempfile.mkstemp(prefix=f"{label}-", suffix=".log", dir=logdir)
        os.close(fd)
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned_at = 0.0

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as out:
            self.spawned_at = time.time()
            self.proc = subprocess.Popen(
                self.cmd,
                cwd=HERE,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C does not reach it; we stop it
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float) -> tuple[int, float]:
        """Block until the worker exits on its own (burst mode): (exit code, epoch time)."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        return code, time.time()

    def rss_kb(self) -> tuple[int, int, int]:
        """(sum VmRSS, sum VmHWM, process count) over the worker's process tree."""
        assert self.proc is not None
        tree = process_tree(self.proc.pid)
        return (
            sum(_status_kb(p, "VmRSS") for p in tree),
            sum(_status_kb(p, "VmHWM") for p in tree),
            len(tree),
        )

    def cpu_s(self) -> float:
        """CPU seconds (user + system) used so far by the worker's process tree."""
        assert self.proc is not None
        ticks = sum(_cpu_ticks(p) for p in process_tree(self.proc.pid))
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 25) -> str:
        with open(self.log_path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, SIGKILL after the grace; children that outlive it by their PIDs."""
        if self.proc is None:
            return
        tree = process_tree(self.proc.pid) if self.alive() else []
        cmdlines = {p: _cmdline(p) for p in tree}
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # children (taskiq's worker processes) that outlived their parent: by PID, if unchanged
        deadline = time.monotonic() + STOP_GRACE_S
        for p in tree[1:]:
            while _cmdline(p) == cmdlines[p] and cmdlines[p] and time.monotonic() < deadline:
                time.sleep(0.05)
            if _cmdline(p) == cmdlines[p] and cmdlines[p]:
                with contextlib.suppress(OSError):
                    os.kill(p, signal.SIGKILL)
        self.proc = None


def start_profiler(worker: WorkerProcess) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY (py-spy binary) and BENCH_PYSPY_OUT set: sample the worker's drain."""
    binary, out = os.environ.get("BENCH_PYSPY"), os.environ.get("BENCH_PYSPY_OUT")
    if not binary or not out or worker.proc is None:
        return None
    cmd = [binary, "record", "--pid", str(worker.proc.pid), "--rate", "250", "--format", "raw"]
    return subprocess.Popen([*cmd, "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
