"""Redis servers of their own: Debian's ``redis-server`` on free loopback ports, for the tests
of the realtime bus over Redis (``BUS_URL``), the soak's Redis variant, the bus measurement and
the bench's Django Channels.

``RedisServer`` runs one in a directory of its own, saving nothing to disk (no RDB snapshot, no
append-only file), ready once it answers ``PING``; ``restart`` starts it again on the same port
(after ``kill`` or ``stop``), as a restarted Redis keeps its address. ``RedisCluster`` runs
three such nodes with cluster mode on and joins them (``redis-cli --cluster create``), each
master of a third of the slots. ``redis_missing`` says why none can run here.
"""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .paths import HOST
from .process import ServerProcess

__all__ = ["RedisServer", "RedisCluster", "redis_missing"]


def redis_missing() -> str | None:
    """Why no Redis can be started here (None: it can)."""
    if shutil.which("redis-server") is None:
        return (
            "redis-server is not installed; scripts/ensure-redis installs Debian's package "
            "(as root, or with sudo)"
        )
    return None


def _cluster_port() -> int:
    """A free port for a cluster node: its bus port (10,000 higher) free too, both below
    65,536 (the kernel's free ports may be too high for that)."""
    for _ in range(200):
        port = random.randint(20_000, 50_000)
        try:
            for each in (port, port + 10_000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((HOST, each))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisServer(ServerProcess):
    """``redis-server`` on loopback, in ``directory`` (a temporary one by default)."""

    answer_timeout = 1.0

    def __init__(
        self,
        name: str = "redis",
        *,
        directory: Path | None = None,
        port: int | None = None,
        cluster: bool = False,
    ) -> None:
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"aiotutorial-{name}-")
            directory = Path(self._tmp.name)
        self.directory = directory
        self.cluster = cluster
        if cluster and port is None:
            port = _cluster_port()
        super().__init__(
            log_path=directory / f"{name}.log", name=name, port=port, start_timeout=20.0
        )

    def command(self) -> list[str]:
        data = self.directory / str(self.port)
        data.mkdir(exist_ok=True)
        argv = [
            "redis-server",
            *("--port", str(self.port), "--bind", HOST, "--dir", str(data)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""),
        ]
        if self.cluster:
            argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            # The other nodes go on serving their slots while one is down.
            argv += ["--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no"]
        return argv

    def answers(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=self.answer_timeout) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @property
    def redis_url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def kill(self) -> None:
        """``kill -9``: gone at once, its clients' connections reset."""
        self.stop(signal.SIGKILL, 5.0)

    def restart(self) -> RedisServer:
        """Start again on the same port (after ``kill`` or ``stop``)."""
        self.stop()
        self.process = None
        self._fixed_port = self.port
        self.start()
        return self

    def cli(self, *args: str) -> str:
        """``redis-cli`` against this server: its output."""
        result = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout


class RedisCluster:
    """Three cluster-mode Redis nodes joined into one cluster (masters only)."""

    def __init__(self, name: str = "redis-cluster", nodes: int = 3) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"aiotutorial-{name}-")
        directory = Path(self._tmp.name)
        self.nodes = [
            RedisServer(f"{name}-{n}", directory=directory, cluster=True) for n in range(nodes)
        ]

    @property
    def redis_url(self) -> str:
        """Any node's URL: the bus reads the rest of the cluster from it."""
        return self.nodes[0].redis_url

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        addresses = [f"{HOST}:{node.port}" for node in self.nodes]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses]
            + ["--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        deadline = time.monotonic() + 20
        while not all("cluster_state:ok" in node.cli("CLUSTER", "INFO") for node in self.nodes):
            if time.monotonic() > deadline:
                raise RuntimeError("the Redis cluster did not come up within 20 s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self._tmp.cleanup()

    def node_of(self, topic: str) -> RedisServer:
        """The node serving ``topic``'s hash slot."""
        slot = int(self.nodes[0].cli("CLUSTER", "KEYSLOT", topic))
        for line in self.nodes[0].cli("CLUSTER", "NODES").splitlines():
            fields = line.split()
            address, ranges = fields[1].split("@")[0], fields[8:]
            for each in ranges:
                first, _, last = each.partition("-")
                if first.isdigit() and int(first) <= slot <= int(last or first):
                    port = int(address.rsplit(":", 1)[1])
                    return next(node for node in self.nodes if node.port == port)
        raise LookupError(f"no node serves slot {slot}")
