"""The chaos profile's phases, each bounded and under the continuous load of ``bench.chaos_load``:
steady load; SIGKILL of one ``serve`` worker; a Redis hang (SIGSTOP, SIGCONT) and a Redis
restart; a PostgreSQL outage (with a short Redis hang inside it, so that usage events take the
spool file); the upstream killed mid-stream and started again; client aborts mid-stream; and an
overload burst beyond ``GATEWAY_MAX_IN_FLIGHT``. Every fault is noted with its time."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from bench.chaos_load import Load, outcomes
from bench.chaos_setup import LEASE_S, PREFIX, WORKERS, ChaosInstallation
from bench.chaos_state import held_request_ids, read_spool
from bench.gateway import Gateway

WATCH_TICK_S = 0.2
RESTART_TIMEOUT_S = 30.0
ORPHANED_AFTER_S = 2.0
LEASE_SLACK_S = 2.0  # past the lease: the next admission of the quota releases it


@dataclass(frozen=True)
class Durations:
    """Seconds of each phase, and when in it (from its start) each fault happens."""

    steady: float
    kill: float
    kill_at: float
    redis: float
    redis_hang_at: float
    redis_hang: float
    redis_restart_at: float
    postgres: float
    postgres_stop_at: float
    postgres_outage: float
    postgres_redis_hang: float
    upstream: float
    upstream_kill_at: float
    upstream_down: float
    aborts: float
    overload: float
    bursts: int

    @property
    def load_seconds(self) -> float:
        return (
            self.steady + self.kill + self.redis + self.postgres + self.upstream + self.aborts + self.overload
        )


FULL = Durations(
    steady=40,
    kill=40,
    kill_at=10,
    redis=60,
    redis_hang_at=10,
    redis_hang=5,
    redis_restart_at=35,
    postgres=50,
    postgres_stop_at=5,
    postgres_outage=25,
    postgres_redis_hang=3,
    upstream=35,
    upstream_kill_at=10,
    upstream_down=5,
    aborts=30,
    overload=30,
    bursts=3,
)
QUICK = Durations(
    steady=8,
    kill=15,  # the kill after 3 s, then the lease (10 s) and 2 s
    kill_at=3,
    redis=16,
    redis_hang_at=2,
    redis_hang=2,
    redis_restart_at=8,
    postgres=14,
    postgres_stop_at=2,
    postgres_outage=8,
    postgres_redis_hang=2,
    upstream=10,
    upstream_kill_at=3,
    upstream_down=2,
    aborts=6,
    overload=8,
    bursts=2,
)


@dataclass(frozen=True)
class Fault:
    at_s: float  # since the load started
    phase: str
    what: str


@dataclass(frozen=True)
class PhaseSpan:
    name: str
    started: float  # time.time()
    ended: float


@dataclass
class Chaos:
    owned: ChaosInstallation
    gateway: Gateway
    load: Load
    durations: Durations
    burst_size: int
    started: float = field(default_factory=time.time)
    faults: list[Fault] = field(default_factory=list)
    phases: list[PhaseSpan] = field(default_factory=list)
    kill_times: list[float] = field(default_factory=list)  # time.time() of each worker SIGKILL
    kill_orphans: list[tuple[int, int]] = field(default_factory=list)  # held after the kill, after the lease
    spool_peak_lines: int = 0

    def note(self, what: str) -> None:
        fault = Fault(at_s=round(time.time() - self.started, 1), phase=self.load.phase, what=what)
        self.faults.append(fault)
        print(f"  t={fault.at_s:6.1f} s  {fault.phase:<12} {what}", flush=True)

    def held(self) -> set[str]:
        with self.owned.redis.client() as client:
            return held_request_ids(client, prefix=PREFIX)

    def in_flight(self, *, streamed: bool | None = None) -> int:
        return sum(
            1 for s in list(self.load.sent) if not s.ended and (streamed is None or s.streamed == streamed)
        )

    @contextmanager
    def phase(self, name: str, seconds: float) -> Iterator[Callable[[float], None]]:
        """Run a phase of ``seconds``; yields ``at(offset)``, which waits until that moment of it."""
        self.load.phase = name
        started = time.time()

        def at(offset: float) -> None:
            self.wait(started + offset)

        print(f"phase {name} ({seconds:.0f} s)", flush=True)
        yield at
        at(seconds)
        self.phases.append(PhaseSpan(name=name, started=started, ended=time.time()))

    def wait(self, until: float) -> None:
        """Sleep until ``until`` (time.time()), noting the spool file's largest size meanwhile."""
        while (left := until - time.time()) > 0:
            time.sleep(min(WATCH_TICK_S, left))
            self.spool_peak_lines = max(self.spool_peak_lines, read_spool(self.owned.spool_path).lines)

    def as_dict(self) -> dict[str, object]:
        return {
            "faults": [asdict(f) for f in self.faults],
            "phases": [
                {
                    "name": p.name,
                    "seconds": round(p.ended - p.started, 1),
                    "started_at_s": round(p.started - self.started, 1),
                }
                for p in self.phases
            ],
            "spool_peak_lines": self.spool_peak_lines,
            "kill_orphans": [
                {"held_after_kill": held, "held_after_lease": left} for held, left in self.kill_orphans
            ],
        }


def steady(chaos: Chaos) -> None:
    with chaos.phase("steady", chaos.durations.steady):
        chaos.load.run_steady()  # the load runs from here to the end of the last phase


def _restarted_worker(gateway: Gateway, *, before: list[int]) -> int | None:
    """The pid of the worker ``serve`` started in place of a killed one (None: none came)."""
    deadline = time.monotonic() + RESTART_TIMEOUT_S
    while time.monotonic() < deadline:
        pids = gateway.pids()
        new = [pid for pid in pids if pid not in before]
        if len(pids) == WORKERS and new:
            return new[0]
        time.sleep(0.05)
    return None


def worker_kill(chaos: Chaos) -> None:
    d = chaos.durations
    with chaos.phase("worker-kill", d.kill) as at:
        at(d.kill_at)
        held = chaos.held()
        before = chaos.gateway.pids()
        victim = before[0]
        in_flight = chaos.in_flight()
        os.kill(victim, signal.SIGKILL)
        chaos.kill_times.append(time.time())
        killed = time.monotonic()
        chaos.note(f"SIGKILL worker pid {victim} of {before} ({in_flight} requests in flight in the client)")
        new = _restarted_worker(chaos.gateway, before=before)
        if new is None:
            chaos.note(f"serve did not start a worker in place of {victim} within {RESTART_TIMEOUT_S:.0f} s")
        else:
            chaos.note(f"serve started worker pid {new} in {time.monotonic() - killed:.1f} s")
        # A request lasts well under a second: one still holding its reservation or slot this
        # long after the kill was in flight on the killed worker and is left to its lease.
        at(d.kill_at + ORPHANED_AFTER_S)
        orphans = held & chaos.held()
        chaos.note(f"{len(orphans)} request(s) of the killed worker still hold a reservation or slot")
        at(d.kill_at + LEASE_S + LEASE_SLACK_S)
        left = orphans & chaos.held()
        chaos.kill_orphans.append((len(orphans), len(left)))
        chaos.note(
            f"{len(left)} of them held {LEASE_S + LEASE_SLACK_S:.0f} s after the kill (lease {LEASE_S} s)"
        )


def redis_faults(chaos: Chaos) -> None:
    d, redis_server = chaos.durations, chaos.owned.redis
    with chaos.phase("redis", d.redis) as at:
        at(d.redis_hang_at)
        redis_server.hang()
        chaos.note(f"SIGSTOP redis-server pid {redis_server.pid} (hang {d.redis_hang:.0f} s)")
        at(d.redis_hang_at + d.redis_hang)
        redis_server.resume()
        chaos.note("SIGCONT redis-server")
        at(d.redis_restart_at)
        down = redis_server.restart()
        chaos.note(f"redis-server restarted (SIGTERM, same port and dir): {down:.1f} s without Redis")


def postgres_outage(chaos: Chaos) -> None:
    d, owned = chaos.durations, chaos.owned
    with chaos.phase("postgres", d.postgres) as at:
        at(d.postgres_stop_at)
        owned.postgres.stop()
        chaos.note(f"PostgreSQL stopped (pg_ctl stop -m fast) for {d.postgres_outage:.0f} s")
        hang_at = d.postgres_stop_at + (d.postgres_outage - d.postgres_redis_hang) / 2
        at(hang_at)
        owned.redis.hang()
        chaos.note(
            f"SIGSTOP redis-server for {d.postgres_redis_hang:.0f} s inside the outage (events to the spool)"
        )
        at(hang_at + d.postgres_redis_hang)
        owned.redis.resume()
        chaos.note("SIGCONT redis-server")
        at(d.postgres_stop_at + d.postgres_outage)
        owned.postgres.start()
        chaos.note(f"PostgreSQL started again; spool file held up to {chaos.spool_peak_lines} event(s)")


def upstream_kill(chaos: Chaos) -> None:
    d, upstream = chaos.durations, chaos.owned.upstream
    with chaos.phase("upstream", d.upstream) as at:
        at(d.upstream_kill_at)
        streams = chaos.in_flight(streamed=True)
        upstream.kill()
        chaos.note(
            f"SIGKILL upstream ({streams} streams in flight in the client) for {d.upstream_down:.0f} s"
        )
        at(d.upstream_kill_at + d.upstream_down)
        took = upstream.start()
        chaos.note(f"upstream started again on port {upstream.port} (answering after {took:.1f} s)")


def client_aborts(chaos: Chaos) -> None:
    with chaos.phase("aborts", chaos.durations.aborts):
        chaos.load.abort_streams = True
        chaos.note("every other stream is closed by the client after 3 content chunks")
    chaos.load.abort_streams = False


def overload(chaos: Chaos) -> None:
    d = chaos.durations
    gap = d.overload / d.bursts
    with chaos.phase("overload", d.overload) as at:
        for index in range(d.bursts):
            at(index * gap)
            sent = chaos.load.burst(chaos.burst_size)
            counts = ", ".join(f"{n} x {outcome}" for outcome, n in sorted(outcomes(sent).items()))
            chaos.note(f"burst of {chaos.burst_size} streams at once: {counts}")


PHASES = (steady, worker_kill, redis_faults, postgres_outage, upstream_kill, client_aborts, overload)
