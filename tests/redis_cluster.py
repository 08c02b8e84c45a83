"""A real 3-master Redis Cluster on loopback ports, started and stopped by PID, for tests.

It is put together with plain cluster commands (SET-CONFIG-EPOCH, ADDSLOTSRANGE, MEET), which
is what ``redis-cli --cluster create`` sends, so it needs nothing beyond the server binary.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

import redis

from .redis_server import RedisServer

SLOTS = 16384


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
        clients = [redis.Redis(port=n.port, socket_timeout=10) for n in self.nodes]
        try:
            self._assemble(clients)
        except BaseException:
            self.stop()
            raise
        finally:
            for client in clients:
                client.close()
        return self

    def _assemble(self, clients: list[redis.Redis]) -> None:
        """Give each master an even share of the slots and a distinct epoch, then MEET."""
        share = SLOTS // len(clients)
        for i, client in enumerate(clients):
            first, last = i * share, SLOTS - 1 if i == len(clients) - 1 else (i + 1) * share - 1
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            infos = [client.execute_command("CLUSTER", "INFO") for client in clients]
            if all(_ready(info, len(clients)) for info in infos):
                return
            time.sleep(0.1)
        raise RuntimeError("the cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        for node in self.nodes:
            node.cleanup()
        self.nodes = []


def _ready(info: bytes | str | dict[str, object], nodes: int) -> bool:
    """CLUSTER INFO (raw, or parsed into a dict by some redis-py versions) says all is up."""
    if isinstance(info, dict):
        fields = {str(k): str(v) for k, v in info.items()}
    else:
        text = info.decode() if isinstance(info, bytes) else info
        fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (
        fields.get("cluster_state") == "ok"
        and fields.get("cluster_slots_assigned") == str(SLOTS)
        and fields.get("cluster_known_nodes") == str(nodes)
    )
