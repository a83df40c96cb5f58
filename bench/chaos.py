"""``python -m bench --only chaos``: the full path (auth, rate tier, parallel limit, hard cost
quota, usage ledger) under load and through faults, then a reckoning: every answered request
recorded exactly once, the quota's spend equal to the records' costs, no reservation, lease or
parallel slot left, the outbox drained and the spool replayed. Exit status 1 when anything was
lost or left stuck (each failure named), 2 when the run could not be made.

The phases are in ``bench.chaos_faults``, the installation in ``bench.chaos_setup``, the load
in ``bench.chaos_load``, the waiting and the counter probe in ``bench.chaos_settle``, the checks
in ``bench.chaos_verdict``; this module runs them in order, prints the report and writes the
JSON under ``bench/results/``."""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from bench.chaos_faults import FULL, PHASES, QUICK, Chaos
from bench.chaos_load import Load, outcomes
from bench.chaos_report import counter_line, ledger_lines, outcome_table, state_table, verdict_lines
from bench.chaos_settle import Settled, probe_counters, settle
from bench.chaos_setup import GATEWAY_NAME, MODEL, PREFIX, ChaosInstallation, install, start_gateway
from bench.chaos_state import read_records, read_redis_state, read_spool, record_count
from bench.chaos_verdict import CounterCheck, LedgerCheck, StateCheck, check_ledger, failures
from bench.gateway import manage
from bench.options import Options
from bench.redis_server import redis_version
from bench.report import write_json
from bench.upstreams import ROOT

LOG_EXAMPLES = 8


@dataclass(frozen=True)
class Reckoning:
    settled: Settled
    counters: CounterCheck | None
    ledger: LedgerCheck
    state: StateCheck
    reconcile_output: str
    disturbed: list[str]  # what happened that the run did not do
    kill_orphans: list[tuple[int, int]]  # per SIGKILL: requests holding after it, after the lease

    def failures(self) -> list[str]:
        found = [f"the run was disturbed: {line}" for line in self.disturbed]
        found += [
            f"{left} of {held} reservation(s) of the killed worker's requests outlived their lease"
            for held, left in self.kill_orphans
            if left
        ]
        found += failures(self.ledger, state=self.state, counters=self.counters)
        if not self.settled.settled:
            found.append(
                f"the run did not settle within {self.settled.waited_s:.0f} s (outbox, spool or records)"
            )
        return found


def _preflight(load: Load) -> None:
    for streamed in (False, True):
        sent = load.probe(streamed=streamed)
        kind = "streamed" if streamed else "JSON"
        if sent.outcome != "200":
            raise RuntimeError(f"the gateway's first {kind} request ended {sent.outcome} ({sent.error_code})")
        if not sent.rate_headers:
            raise RuntimeError(
                f"the gateway's first {kind} request has no x-ratelimit-* header: no tier applied"
            )


def _reckon(chaos: Chaos, *, disturbed: list[str]) -> Reckoning:
    owned, load = chaos.owned, chaos.load
    print("load stopped; waiting for the leases, the outbox and the spool", flush=True)
    with owned.redis.client() as client:
        load_end = read_redis_state(client, prefix=PREFIX)
    settled = settle(owned, last_request_end=max(s.ended for s in load.sent))
    print(f"settled in {settled.waited_s:.1f} s; probing the rate counters", flush=True)
    counters = probe_counters(owned, load=load)
    with owned.redis.client() as client:
        before = read_redis_state(client, prefix=PREFIX)
        output = manage("reconcilequotas", env=owned.env).strip()
        after = read_redis_state(client, prefix=PREFIX)
    records = read_records(owned.database_url)
    state = StateCheck(
        records_micro=sum(r.cost_micro for r in records),
        load_end=load_end,
        before=before,
        after=after,
        spool=read_spool(owned.spool_path),
    )
    ledger = check_ledger(load.sent, records=records, kill_times=chaos.kill_times)
    return Reckoning(
        settled=settled,
        counters=counters,
        ledger=ledger,
        state=state,
        reconcile_output=output,
        disturbed=disturbed,
        kill_orphans=chaos.kill_orphans,
    )


def disturbances(chaos: Chaos, *, log_path: Path) -> list[str]:
    """What happened that the run did not do: a worker exit other than the SIGKILLs (in
    ``serve``'s log), an owned service not running when the load ended. The checks after such a
    run say little about the faults it was meant to make."""
    try:
        exits = [line for line in log_path.read_text(errors="replace").splitlines() if "exited (" in line]
    except OSError:
        exits = []
    unplanned = [line for line in exits if "signal SIGKILL" not in line]
    found = [f"unplanned worker exit: {line.split(' ERROR ', 1)[-1]}" for line in unplanned]
    if len(exits) - len(unplanned) != len(chaos.kill_times):
        found.append(
            f"{len(exits) - len(unplanned)} worker SIGKILL exit(s) logged for {len(chaos.kill_times)} made"
        )
    owned = chaos.owned
    for name, alive in (
        ("the upstream", owned.upstream.service is not None and owned.upstream.service.alive()),
        ("redis-server", owned.redis.answers()),
        ("PostgreSQL", owned.postgres.running()),
        ("manage.py serve", chaos.gateway.service.alive()),
    ):
        if not alive:
            found.append(f"{name} was not running when the load ended")
    return found


def _log_errors(path: Path) -> tuple[int, list[str]]:
    """ERROR lines and tracebacks in the gateway's log, with a few distinct ones."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return 0, []
    errors = [line for line in lines if " ERROR " in line or line.startswith("Traceback")]
    distinct = list(dict.fromkeys(line.split(" ERROR ", 1)[-1][:200] for line in errors))
    return len(errors), distinct[:LOG_EXAMPLES]


def _run_phases(owned: ChaosInstallation, options: Options) -> tuple[Chaos, Reckoning]:
    gateway = start_gateway(owned)
    print(
        f"gateway: manage.py serve, pid {gateway.service.pid}, workers {gateway.pids()} at {gateway.base_url}"
    )
    run_id = "chaos-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    load = Load(
        url=gateway.chat_url, key=owned.key, model=MODEL, concurrency=options.chaos_concurrency, run_id=run_id
    )
    load.start()
    try:
        _preflight(load)
        durations = QUICK if options.chaos_quick else FULL
        chaos = Chaos(
            owned=owned, gateway=gateway, load=load, durations=durations, burst_size=options.chaos_burst
        )
        for phase in PHASES:
            phase(chaos)
        load.quiet()
        disturbed = disturbances(chaos, log_path=owned.workdir / f"{GATEWAY_NAME}.log")
        for line in disturbed:
            print(f"DISTURBED: {line}", flush=True)
        return chaos, _reckon(chaos, disturbed=disturbed)
    finally:
        load.close()


def _meta(options: Options, *, owned: ChaosInstallation, chaos: Chaos, **extra: object) -> dict[str, object]:
    return {
        "mode": "quick" if options.chaos_quick else "full",
        "scenarios": ["chaos"],
        "python": platform.python_version(),
        "redis_server": redis_version(),
        "cpus": os.cpu_count(),
        "setup": owned.describe(),
        "durations_s": asdict(chaos.durations),
        "concurrency": options.chaos_concurrency,
        "burst_size": options.chaos_burst,
        "loadavg_end": list(os.getloadavg()),
        **extra,
    }


def _print_report(
    chaos: Chaos, *, reckoning: Reckoning, gateway_exit: int | None, log: tuple[int, list[str]]
) -> None:
    print()
    print(outcome_table(chaos.load.sent, phases=_phase_names(chaos)))
    print()
    print("faults:")
    for fault in chaos.faults:
        print(f"  t={fault.at_s:6.1f} s  {fault.phase:<12} {fault.what}")
    print()
    print("\n".join(ledger_lines(reckoning.ledger)))
    print()
    print(state_table(reckoning.state))
    print()
    print(counter_line(reckoning.counters))
    print(f"reconcilequotas: {reckoning.reconcile_output}")
    print(f"gateway stopped with exit status {gateway_exit}; its log has {log[0]} ERROR line(s)")
    for line in log[1]:
        print(f"  {line}")


def _stop_gateway(owned: ChaosInstallation) -> tuple[int | None, list[str]]:
    """SIGTERM ``serve`` (its workers drain); its exit status, and a failure if a record
    appeared after the checks (they would have been made too early)."""
    records = record_count(owned.database_url)
    assert owned.gateway is not None
    owned.gateway.service.stop(timeout=30)
    after = record_count(owned.database_url)
    late = [] if after == records else [f"{records} records when checked, {after} once the gateway stopped"]
    return owned.gateway.service.process.returncode, late


def _phase_names(chaos: Chaos) -> list[str]:
    return ["setup", *(p.name for p in chaos.phases), "probe"]


def _results(
    chaos: Chaos,
    *,
    reckoning: Reckoning,
    gateway_exit: int | None,
    log: tuple[int, list[str]],
    found: list[str],
) -> dict[str, object]:
    """The JSON's sections besides ``meta`` (``rows`` is empty: this profile has no table of rates)."""
    return {
        "outcomes": {
            name: dict(outcomes([s for s in chaos.load.sent if s.phase == name]))
            for name in _phase_names(chaos)
        },
        "chaos": chaos.as_dict(),
        "settled": asdict(reckoning.settled),
        "usage_records": reckoning.ledger.as_dict(),
        "state": reckoning.state.as_dict(),
        "rate_counters": reckoning.counters.as_dict() if reckoning.counters else None,
        "reconcilequotas": reckoning.reconcile_output,
        "gateway_exit_status": gateway_exit,
        "gateway_log_errors": {"count": log[0], "examples": log[1]},
        "disturbed": reckoning.disturbed,
        "failures": found,
        "ok": not found,
    }


def _clean_up(owned: ChaosInstallation, *, keep: bool) -> None:
    owned.stop(keep=keep)
    if keep:
        print(f"kept {owned.workdir} and {owned.postgres.base}")
    else:
        shutil.rmtree(owned.workdir, ignore_errors=True)


def run_chaos(options: Options, *, source: dict[str, object]) -> int:
    started, loadavg_start = time.monotonic(), list(os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="gateway-chaos-"))
    print(f"chaos ({'quick' if options.chaos_quick else 'full'}): working in {workdir}", flush=True)
    owned = install(workdir, on_redis_error=options.chaos_on_redis_error)
    try:
        chaos, reckoning = _run_phases(owned, options)
        if options.keep:  # every request sent, one JSON object a line, beside the logs
            lines = (orjson.dumps(s.as_dict()) for s in chaos.load.sent)
            (workdir / "sent.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        found = reckoning.failures()
        gateway_exit, late = _stop_gateway(owned)
        found += late
        log = _log_errors(workdir / f"{GATEWAY_NAME}.log")
    finally:
        _clean_up(owned, keep=options.keep)
    _print_report(chaos, reckoning=reckoning, gateway_exit=gateway_exit, log=log)
    print("\n".join(verdict_lines(found)))
    wall_s = round(time.monotonic() - started, 1)
    meta = _meta(options, owned=owned, chaos=chaos, source=source, loadavg_start=loadavg_start, wall_s=wall_s)
    extra = _results(chaos, reckoning=reckoning, gateway_exit=gateway_exit, log=log, found=found)
    path = write_json([], meta, directory=options.results_dir, mode=f"{meta['mode']}-chaos", extra=extra)
    print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if found else 0
