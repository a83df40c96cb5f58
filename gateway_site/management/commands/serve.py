"""``manage.py serve --workers N``: N Daphne processes sharing one listening socket.

The parent binds the socket, starts each worker with ``daphne --fd`` on the inherited
descriptor (the kernel spreads connections among them), restarts none, and forwards SIGINT and
SIGTERM so every worker drains and flushes its usage records before exiting.

Metrics: the workers run prometheus-client's multiprocess mode in ``PROMETHEUS_MULTIPROC_DIR``
(the operator's, or a fresh temporary directory removed at exit), emptied at start; a worker's
live gauges are dropped when it exits (``mark_process_dead``)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from prometheus_client import multiprocess

from gateway_site.metrics import MULTIPROC_ENV, multiprocess_dir


def metrics_directory() -> tuple[Path, bool]:
    """The multiprocess metrics directory, emptied, and whether it is ours (to remove at exit)."""
    chosen = multiprocess_dir()
    if not chosen:
        return Path(tempfile.mkdtemp(prefix="gateway-metrics-")), True
    directory = Path(chosen)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # values of a previous run would add up with this one's
        stale.unlink()
    return directory, False


class Command(BaseCommand):
    help = "Serve the gateway with N Daphne worker processes on one socket."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--access-log", action="store_true", help="Daphne access log on stdout.")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = max(1, options["workers"])
        family = socket.AF_INET6 if ":" in options["host"] else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((options["host"], options["port"]))
        listener.listen(1024)
        listener.setblocking(False)
        fd = listener.fileno()
        command = [
            sys.executable,
            "-m",
            "daphne",
            "--fd",
            str(fd),
            "-v",
            "1" if options["access_log"] else "0",
        ]
        command.append("gateway_site.asgi:application")
        directory, owned = metrics_directory()
        env = {**os.environ, MULTIPROC_ENV: str(directory)}
        children = [subprocess.Popen(command, pass_fds=[fd], env=env) for _ in range(workers)]
        host = options["host"] if family == socket.AF_INET else f"[{options['host']}]"
        port = listener.getsockname()[1]  # the real one when --port 0 asked for any free port
        self.stdout.write(f"gateway listening on http://{host}:{port} with {workers} worker(s)")
        self.stdout.flush()

        def forward(signum: int, frame: FrameType | None) -> None:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        try:
            self._supervise(children, directory)
        finally:
            listener.close()
            if owned:
                shutil.rmtree(directory, ignore_errors=True)
        codes = [child.returncode for child in children]
        if any(code not in (0, -signal.SIGTERM) for code in codes):
            sys.exit(1)

    @staticmethod
    def _supervise(children: list[subprocess.Popen[bytes]], directory: Path) -> None:
        """Wait for every worker to exit, marking each one dead for the metrics as it goes."""
        running = list(children)
        while running:
            time.sleep(0.2)
            for child in [c for c in running if c.poll() is not None]:
                multiprocess.mark_process_dead(child.pid, str(directory))  # type: ignore[no-untyped-call]
                running.remove(child)
