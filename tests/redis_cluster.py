"""A real 3-master Redis Cluster on loopback ports, started and stopped by PID, for tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field

from .redis_server import RedisServer


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """Ports p with p and its cluster-bus port p + 10000 both free."""
    ports: list[int] = []
    candidate = 30000 + (int(time.time() * 1000) % 2000) * 5
    while len(ports) < count:
        candidate += 1
        if candidate > 50000:
            candidate = 30001
        if _free(candidate) and _free(candidate + 10000):
            ports.append(candidate)
    return ports


@dataclass
class RedisCluster:
    masters: int = 3
    nodes: list[RedisServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> RedisCluster:
        for port in cluster_ports(self.masters):
            node = RedisServer(
                port=port,
                extra_args=("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                            "--cluster-node-timeout", "5000"),
            )  # fmt: skip
            self.nodes.append(node.start())
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli not found (Debian package redis-tools)")
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes)]
            + ["--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [
                subprocess.run(
                    [cli, "-p", str(n.port), "cluster", "info"], capture_output=True, text=True
                ).stdout
                for n in self.nodes
            ]
            if all("cluster_state:ok" in s for s in states):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.cleanup()
        self.nodes = []
