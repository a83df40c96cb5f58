"""``manage.py serve --workers N``: N Daphne processes sharing one listening socket, supervised.

The parent binds the socket and starts each worker with ``daphne --fd`` on the inherited
descriptor (the kernel spreads connections among them). A worker that exits while no shutdown
was asked for (a crash, the OOM killer) is logged and started again on the same socket, after a
delay that doubles with each exit in a row (``Backoff``) and starts over once a worker stayed up
a while: a worker that cannot start costs a few processes a minute, not a spinning CPU. The other
workers keep answering meanwhile. SIGINT and SIGTERM are forwarded so every worker drains and
flushes its usage records before exiting, and nothing is restarted after them.

Metrics: the workers run prometheus-client's multiprocess mode in ``PROMETHEUS_MULTIPROC_DIR``
(the operator's, or a fresh temporary directory removed at exit), emptied at start; a worker's
live gauges are dropped when it exits (``mark_process_dead``)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from prometheus_client import multiprocess

from gateway_site.observability.metrics import MULTIPROC_ENV, multiprocess_dir

logger = logging.getLogger(__name__)

TICK_SECONDS = 0.1  # how often the parent looks at its workers
CLEAN_EXITS = (0, -signal.SIGTERM)  # how a worker ends when asked to


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


@dataclass(frozen=True, slots=True)
class Backoff:
    """The wait before starting a worker again: ``initial`` after its first exit, doubling with
    each further exit of a worker that lived less than ``stable`` seconds, at most ``maximum``."""

    initial: float = 0.5
    maximum: float = 30.0
    stable: float = 30.0

    def delay(self, crashes: int) -> float:
        """``crashes``: exits in a row, this one included."""
        return min(self.maximum, self.initial * 2.0 ** max(0, crashes - 1))


def describe_exit(code: int) -> str:
    """``exit code 1`` or ``signal SIGKILL`` (Popen's negative return code)."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


class Slot:
    """One of the N worker places: its current process, and its recent exits."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0  # time.monotonic() of the current process's start
        self.crashes = 0  # exits in a row of processes that lived less than Backoff.stable
        self.restart_at: float | None = None
        self.last_pid = 0
        self.last_code: int | None = None  # the last process's exit status


class Supervisor:
    def __init__(self, command: Sequence[str], *, fd: int, env: dict[str, str], directory: Path) -> None:
        self._command = list(command)
        self._fd = fd
        self._env = env
        self._directory = directory
        self._backoff = Backoff()
        self._slots: list[Slot] = []
        self._signals = 0  # SIGINT/SIGTERM received; each one is forwarded to the workers
        self._forwarded = 0

    def start(self, workers: int) -> None:
        self._slots = [Slot() for _ in range(workers)]
        for slot in self._slots:
            self._spawn(slot, replacing=None)

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        # Only counted here: the loop forwards it, so a worker started in the same tick is not missed.
        self._signals += 1

    def run(self) -> int:
        """Supervise until a stop signal and every worker's exit; the command's exit status."""
        while True:
            now = time.monotonic()
            for slot in self._slots:
                self._tend(slot, now)
            if self._signals:
                if all(slot.process is None for slot in self._slots):
                    break
                self._forward()
            time.sleep(TICK_SECONDS)
        clean = all(slot.last_code in CLEAN_EXITS for slot in self._slots)
        return 0 if clean else 1

    def _tend(self, slot: Slot, now: float) -> None:
        if slot.process is not None and slot.process.poll() is not None:
            self._reap(slot, now)
        elif slot.process is None and not self._signals and now >= (slot.restart_at or float("inf")):
            self._spawn(slot, replacing=slot.last_pid or None)

    def _reap(self, slot: Slot, now: float) -> None:
        assert slot.process is not None
        pid, code = slot.process.pid, slot.process.returncode
        multiprocess.mark_process_dead(pid, str(self._directory))  # type: ignore[no-untyped-call]
        slot.process, slot.last_code, slot.last_pid = None, code, pid
        if self._signals:
            return
        slot.crashes = 1 if now - slot.started >= self._backoff.stable else slot.crashes + 1
        delay = self._backoff.delay(slot.crashes)
        slot.restart_at = now + delay
        logger.error("worker pid %d exited (%s); restarting in %.1f s", pid, describe_exit(code), delay)

    def _spawn(self, slot: Slot, *, replacing: int | None) -> None:
        try:
            process = subprocess.Popen(self._command, pass_fds=[self._fd], env=self._env)
        except OSError:  # no process could be made (fork, memory): retried like a crash
            slot.crashes += 1
            delay = self._backoff.delay(slot.crashes)
            slot.restart_at = time.monotonic() + delay
            logger.exception("starting a worker failed; retrying in %.1f s", delay)
            return
        slot.process, slot.started, slot.restart_at = process, time.monotonic(), None
        if replacing is not None:
            logger.info("worker pid %d started, replacing pid %d", process.pid, replacing)

    def _forward(self) -> None:
        if self._forwarded == self._signals:
            return
        self._forwarded = self._signals
        for slot in self._slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.send_signal(signal.SIGTERM)


class Command(BaseCommand):
    help = "Serve the gateway with N Daphne worker processes on one socket, restarting any that dies."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--access-log", action="store_true", help="Daphne access log on stdout.")
        parser.add_argument("--tls-cert", default="", help="PEM certificate (chain) file: serve HTTPS.")
        parser.add_argument("--tls-key", default="", help="PEM private key file of --tls-cert.")

    def handle(self, *args: Any, **options: Any) -> None:
        workers = max(1, options["workers"])
        tls = self._tls_env(options["tls_cert"], options["tls_key"])
        listener = self._listen(options["host"], options["port"])
        command = [sys.executable, "-m", "daphne", "--fd", str(listener.fileno())]
        command += ["-v", "1" if options["access_log"] else "0", "gateway_site.asgi:application"]
        directory, owned = metrics_directory()
        env = {**os.environ, MULTIPROC_ENV: str(directory), **tls}
        supervisor = Supervisor(command, fd=listener.fileno(), env=env, directory=directory)
        signal.signal(signal.SIGTERM, supervisor.request_stop)
        signal.signal(signal.SIGINT, supervisor.request_stop)
        try:
            supervisor.start(workers)
            self._announce(listener, host=options["host"], workers=workers, tls=bool(tls))
            status = supervisor.run()
        finally:
            listener.close()
            if owned:
                shutil.rmtree(directory, ignore_errors=True)
        if status:
            sys.exit(status)

    @staticmethod
    def _tls_env(cert: str, key: str) -> dict[str, str]:
        """The workers' TLS settings; the files are checked here, so a bad one stops the start
        with its reason rather than every worker in turn."""
        if not cert and not key:
            return {}
        if not cert or not key:
            raise CommandError("--tls-cert and --tls-key go together")
        from gateway_site.http_edge.tls import server_options

        try:
            server_options(cert, key)
        except Exception as exc:
            raise CommandError(f"TLS certificate or key unusable: {type(exc).__name__}: {exc}") from None
        return {
            "GATEWAY_TLS_CERT_FILE": str(Path(cert).resolve()),
            "GATEWAY_TLS_KEY_FILE": str(Path(key).resolve()),
        }

    @staticmethod
    def _listen(host: str, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(1024)
        listener.setblocking(False)
        return listener

    def _announce(self, listener: socket.socket, *, host: str, workers: int, tls: bool = False) -> None:
        shown = host if listener.family == socket.AF_INET else f"[{host}]"
        port = listener.getsockname()[1]  # the real one when --port 0 asked for any free port
        scheme = "https" if tls else "http"
        self.stdout.write(f"gateway listening on {scheme}://{shown}:{port} with {workers} worker(s)")
        self.stdout.flush()
