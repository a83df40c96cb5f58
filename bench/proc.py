"""Child processes of the harness: CPU pinning, start and stop, and what /proc says about them
(CPU seconds from utime+stime, resident memory now and at its peak)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Pinning:
    """The gateway's CPU and the load side's (wrk, upstreams, this harness); None: unpinned.
    ``all_cpus`` (a taskset list) is for the processes meant to use every CPU: this harness
    pins itself to the load CPU and its children would otherwise inherit that."""

    gateway_cpu: int | None
    load_cpu: int | None
    all_cpus: str | None = None

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(gateway_cpu=None, load_cpu=None)
        return cls(gateway_cpu=cpus[0], load_cpu=cpus[1], all_cpus=",".join(map(str, cpus)))

    @property
    def enabled(self) -> bool:
        return self.gateway_cpu is not None

    def describe(self) -> str:
        if not self.enabled:
            return "not pinned (needs 2 CPUs and taskset): results are not per core"
        return f"gateway on CPU {self.gateway_cpu}; wrk, upstreams and this harness on CPU {self.load_cpu}"


def pinned(cpu: int | str | None, argv: Sequence[str]) -> list[str]:
    """``argv`` under ``taskset -c cpu`` (a CPU number or a taskset list); None: as it is."""
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else list(argv)


def _stat_cpu_seconds(path: Path) -> float:
    """utime + stime (fields 14 and 15) of a /proc stat file, in seconds."""
    text = path.read_text()
    fields = text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process: all its threads, including those that exited."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat"))


@dataclass(frozen=True)
class CpuSnapshot:
    total: float
    threads: dict[int, float]  # live thread id -> CPU seconds


@dataclass(frozen=True)
class CpuSpent:
    """CPU seconds spent between two snapshots: by the main thread (the event loop), by the
    threads alive at both ends (background workers), and by threads that started or ended in
    between (short-lived ones, such as per-request executors)."""

    total: float
    main: float
    background: float

    @property
    def short_lived(self) -> float:
        return max(0.0, self.total - self.main - self.background)


def cpu_snapshot(pid: int) -> CpuSnapshot:
    threads: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            threads[int(task.name)] = _stat_cpu_seconds(task / "stat")
        except (OSError, ValueError):
            continue  # the thread ended while listing
    return CpuSnapshot(total=cpu_seconds(pid), threads=threads)


def cpu_spent(pid: int, before: CpuSnapshot, after: CpuSnapshot) -> CpuSpent:
    main = after.threads.get(pid, 0.0) - before.threads.get(pid, 0.0)
    background = sum(
        after.threads[tid] - before.threads[tid]
        for tid in before.threads.keys() & after.threads.keys()
        if tid != pid
    )
    return CpuSpent(total=after.total - before.total, main=main, background=background)


def child_pids(pid: int) -> list[int]:
    """The live children of a process, from ``/proc/<pid>/task/*/children`` (each thread lists
    the children it started)."""
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return sorted(set(children))


@dataclass(frozen=True)
class Memory:
    rss_mb: float
    peak_rss_mb: float


def memory(pid: int) -> Memory:
    """VmRSS and VmHWM (the peak resident set since the process started), in MB."""
    values: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) / 1024
    return Memory(rss_mb=values.get("VmRSS", 0.0), peak_rss_mb=values.get("VmHWM", 0.0))


@dataclass
class Service:
    """A long-running child (an upstream, the gateway) with its output in a log file."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_service(
    name: str,
    argv: Sequence[str],
    *,
    log_dir: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> Service:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=tuple(pass_fds),
        )
    return Service(name=name, process=process, log_path=log_path)


def wait_until(ready: Callable[[], bool], *, service: Service, timeout: float = 30.0) -> None:
    """Poll ``ready`` until it holds; fail with the service's log if it dies or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"{service.name} exited early:\n{service.log_tail()}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{service.name} did not become ready in {timeout:.0f}s:\n{service.log_tail()}")
