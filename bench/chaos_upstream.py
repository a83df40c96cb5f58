"""The chaos profile's upstream: ``python -m bench.servers chat`` (one OpenAI-compatible chat
endpoint that streams the SSE answer with its usage chunk when asked to, else answers the JSON
``chat.completion`` with its usage block after 50 ms), on one port for the whole run, so that
the run can SIGKILL it mid-stream and start it again on the same port."""

from __future__ import annotations

import socket
import sys
import time
from functools import partial
from pathlib import Path

from bench.proc import Service, start_service, wait_until
from bench.servers import CHAT_PATH
from bench.upstreams import ROOT, _responds, free_port


def bound_socket(port: int) -> socket.socket:
    """A listening socket on ``port`` (SO_REUSEADDR: the port of a killed upstream is taken
    again at once, whatever its old connections' state)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    return sock


class ChaosUpstream:
    """``start`` (again after ``kill``: SIGKILL, streams in flight are cut and new connections
    refused until it is back) on the port chosen once."""

    def __init__(self, *, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.service: Service | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{CHAT_PATH}"

    def start(self) -> float:
        """Start and wait until it answers; the seconds that took."""
        started = time.monotonic()
        self.starts += 1
        sock = bound_socket(self.port)
        argv = [sys.executable, "-m", "bench.servers", "chat", "--fd", str(sock.fileno())]
        self.service = start_service(
            f"upstream-{self.starts}", argv, log_dir=self.log_dir, cwd=ROOT, pass_fds=[sock.fileno()]
        )
        sock.close()
        wait_until(partial(_responds, self.chat_url), service=self.service, timeout=30)
        return time.monotonic() - started

    def kill(self) -> None:
        if self.service is not None and self.service.alive():
            self.service.process.kill()
            self.service.process.wait(10)

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
