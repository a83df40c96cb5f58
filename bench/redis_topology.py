"""Redis deployments of a run's own on free loopback ports, from Debian's ``redis-server``: a
Redis Cluster (``OwnedRedisCluster``: three primaries, each with a replica when asked) and a
primary with a replica watched by Sentinel (``OwnedSentinel``). Each node runs in a directory
of its own, without persistence; ``stop_all`` ends every process it started (by pid). The shared
Redis on 6379 is never touched."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import redis

INSTALL_HINT = "redis-server not found: apt-get install -y redis-server redis-sentinel"
SLOTS = 16384


def free_port_pair() -> int:
    """A free loopback port whose cluster bus port (10000 above it) is free too."""
    while True:
        with socket.socket() as first, socket.socket() as bus:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            if port + 10000 > 65535:
                continue
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    return binary


@dataclass
class Node:
    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    def client(self, *, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def answers(self) -> bool:
        try:
            with self.client(timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self, *options: str, config: Path | None = None) -> None:
        """``config``: a file the server rewrites (a sentinel's); ``options`` go after it."""
        argv = [redis_binary(), *([str(config)] if config else []), "--port", str(self.port)]
        argv += ["--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "", "--appendonly", "no"]
        with (self.dir / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                [*argv, "--protected-mode", "no", *options], stdout=log, stderr=log
            )
        wait(self.answers, what=f"redis on port {self.port}")

    def kill(self) -> None:
        """SIGKILL: the node is gone at once, as a crashed machine (no goodbye to the others)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def wait(predicate: object, *, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(predicate) or not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout:.0f} s")
        time.sleep(0.05)


class _Owned:
    def __init__(self, prefix: str) -> None:
        self.base = Path(tempfile.mkdtemp(prefix=prefix))
        self.nodes: list[Node] = []

    def _node(self) -> Node:
        node = Node(port=free_port_pair(), dir=self.base / f"n{len(self.nodes)}")
        node.dir.mkdir()
        self.nodes.append(node)
        return node

    def start(self) -> Self:
        """Start every node; should one fail, the others are stopped again."""
        try:
            self._start()
        except BaseException:
            self.stop_all()
            raise
        return self

    def _start(self) -> None:
        raise NotImplementedError

    def stop_all(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def logs(self) -> str:
        return "\n".join(
            f"--- port {n.port}\n" + (n.dir / "server.log").read_text(errors="replace")[-3000:]
            for n in self.nodes
            if (n.dir / "server.log").exists()
        )


class OwnedRedisCluster(_Owned):
    """Three primaries sharing the 16384 slots, and a replica of each when ``replicas``.
    ``node_timeout_ms``: how long a primary may be unreachable before its replica takes over."""

    def __init__(self, *, replicas: bool = False, node_timeout_ms: int = 1000) -> None:
        super().__init__("gw-redis-cluster-")
        self.node_timeout_ms = node_timeout_ms
        self.primaries = [self._node() for _ in range(3)]
        self.replicas = [self._node() for _ in range(3)] if replicas else []

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.primaries)

    def _start(self) -> None:
        for node in self.nodes:
            node.start(
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node.dir / "nodes.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
            )  # fmt: skip
        self._assign_slots()
        for primary, replica in zip(self.primaries, self.replicas, strict=False):
            self._replicate(primary, replica)
        wait(self._healthy, what="redis cluster", timeout=60)

    def _assign_slots(self) -> None:
        first = self.primaries[0]
        for node in self.nodes[1:]:
            with first.client() as client:
                client.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        per = SLOTS // len(self.primaries)
        for index, node in enumerate(self.primaries):
            end = SLOTS if index == len(self.primaries) - 1 else (index + 1) * per
            with node.client() as client:
                client.execute_command("CLUSTER ADDSLOTSRANGE", index * per, end - 1)

    def _replicate(self, primary: Node, replica: Node) -> None:
        with primary.client() as client:
            node_id = client.execute_command("CLUSTER MYID").decode()

        def known() -> bool:
            with replica.client() as client:
                nodes = client.execute_command("CLUSTER NODES")  # redis-py: {address: fields}
            return any(fields["node_id"] == node_id for fields in nodes.values())

        wait(known, what=f"replica {replica.port} learning of {primary.port}")
        with replica.client() as client:
            client.execute_command("CLUSTER REPLICATE", node_id)

    def _healthy(self) -> bool:
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            with node.client() as client:
                info = client.execute_command("CLUSTER INFO")  # redis-py: {field: value}
            if info["cluster_state"] != "ok" or int(info["cluster_known_nodes"]) != len(self.nodes):
                return False
        for replica in self.replicas:
            with replica.client() as client:
                if client.info("replication").get("master_link_status") != "up":
                    return False
        return True

    def primary_of(self, key: str) -> Node:
        """The primary serving ``key``'s slot now."""
        live = [n for n in self.nodes if n.process is not None and n.process.poll() is None]
        with live[0].client() as client:
            slot = int(client.execute_command("CLUSTER KEYSLOT", key))
            slots = client.execute_command("CLUSTER SLOTS")  # [[start, end, [host, port, id], ...]]
        for start, end, primary, *_ in slots:
            if start <= slot <= end:
                return next(n for n in self.nodes if n.port == primary[1])
        raise RuntimeError(f"no node serves slot {slot}")


class OwnedSentinel(_Owned):
    """A primary, its replica, and one sentinel watching them under ``service`` (quorum 1).
    ``down_after_ms``: how long the primary may be unreachable before the sentinel fails over."""

    def __init__(self, *, service: str = "gateway", down_after_ms: int = 1000) -> None:
        super().__init__("gw-redis-sentinel-")
        self.service = service
        self.down_after_ms = down_after_ms
        self.primary, self.replica, self.sentinel = self._node(), self._node(), self._node()

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.service}/0"

    def _start(self) -> None:
        self.primary.start()
        self.replica.start("--replicaof", "127.0.0.1", str(self.primary.port))
        config = self.sentinel.dir / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            f"sentinel failover-timeout {self.service} 10000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        self.sentinel.start("--sentinel", config=config)
        wait(self._watching, what="sentinel", timeout=30)

    def _watching(self) -> bool:
        with self.sentinel.client() as client:
            replicas = client.execute_command("SENTINEL REPLICAS", self.service)
        return bool(replicas) and self.replica_linked()

    def replica_linked(self) -> bool:
        with self.replica.client() as client:
            return client.info("replication").get("master_link_status") == "up"

    def current_primary_port(self) -> int:
        with self.sentinel.client() as client:
            _, port = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)
