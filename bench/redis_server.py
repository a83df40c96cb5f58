"""A redis-server owned by one bench run, on a free loopback port, with persistence that
survives a restart (``appendonly yes``, ``appendfsync always``, a directory of its own), so
that the chaos profile can hang it (SIGSTOP, SIGCONT) and restart it (SIGTERM, then start
again on the same port and directory) the way an operator's Redis goes through a stall or a
restart. The shared Redis on 6379 is never touched."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from bench.proc import Service, start_service, wait_until
from bench.upstreams import free_port

INSTALL_HINT = "redis-server not found: apt-get install -y redis-server"
STOP_TIMEOUT_S = 30.0


class OwnedRedis:
    def __init__(self, *, parent: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chaos-redis-", dir=parent))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.service: Service | None = None
        self.starts = 0

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--protected-mode",
            "no",
        ]

    def client(self, *, timeout: float = 5.0) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=timeout, socket_connect_timeout=timeout)

    def answers(self) -> bool:
        try:
            with self.client(timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self) -> OwnedRedis:
        self.starts += 1
        self.service = start_service(f"redis-{self.starts}", self.argv(), log_dir=self.dir)
        wait_until(self.answers, service=self.service, timeout=30)
        return self

    @property
    def pid(self) -> int:
        if self.service is None:
            raise RuntimeError("redis-server is not running")
        return self.service.pid

    def hang(self) -> None:
        """Freeze the server: connections stay open, nothing is answered (a stall)."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self.service is None or not self.service.alive():
            raise RuntimeError("redis-server is not running")
        self.service.process.send_signal(signum)

    def stop(self) -> None:
        """SIGTERM: Redis finishes its append-only file and exits."""
        if self.service is not None:
            self.service.stop(timeout=STOP_TIMEOUT_S)

    def restart(self) -> float:
        """Stop, then start on the same port and directory; the seconds it did not answer."""
        started = time.monotonic()
        self.stop()
        self.start()
        return time.monotonic() - started

    def destroy(self, *, keep: bool = False) -> None:
        try:
            if self.service is not None and self.service.alive():
                self.service.process.send_signal(signal.SIGCONT)  # a stopped process cannot take SIGTERM
                self.stop()
        finally:
            if not keep:
                shutil.rmtree(self.dir, ignore_errors=True)


def redis_version() -> str:
    done = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return done.stdout.strip()
