"""The chaos run's report: requests by phase and outcome, the faults with their times, the usage
records against what was answered, the quota, reservations, slots, outbox and spool before and
after ``reconcilequotas``, the rate-counter probe, and the verdict."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from bench.chaos_load import Sent, outcomes
from bench.chaos_state import RedisState
from bench.chaos_verdict import CounterCheck, LedgerCheck, StateCheck

OUTCOME_ORDER = (
    "200",
    "client abort",
    "200 stream error",
    "200 cut",
    "429",
    "503 shed",
    "503 limiter",
    "503 no deployment",
    "4xx",
    "5xx",
    "connection error",
)


def outcome_table(sent: list[Sent], *, phases: list[str]) -> str:
    """Requests sent, by the phase they started in and their outcome."""
    by_phase: dict[str, Counter[str]] = {p: outcomes([s for s in sent if s.phase == p]) for p in phases}
    total = outcomes(sent)
    columns = [o for o in OUTCOME_ORDER if total[o]] + sorted(set(total) - set(OUTCOME_ORDER))
    widths = [max(len(c), 6) for c in columns]
    header = f"{'phase':<12} {'sent':>7}  " + "  ".join(
        f"{c:>{w}}" for c, w in zip(columns, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    for name, counts in [*by_phase.items(), ("total", total)]:
        cells = "  ".join(f"{counts[c]:>{w}}" for c, w in zip(columns, widths, strict=True))
        lines.append(f"{name:<12} {sum(counts.values()):>7}  {cells}")
    return "\n".join(lines)


def ledger_lines(check: LedgerCheck) -> list[str]:
    return [
        f"usage records: {check.answered:,} requests admitted and answered, {check.recorded_once:,} recorded "
        f"exactly once; {len(check.missing)} without a record, {len(check.duplicates)} recorded twice or "
        f"more, {len(check.refused_recorded)} refused yet recorded, {len(check.unknown)} records of "
        "requests never sent",
        f"  cut by the SIGKILLed worker (in flight at the kill): {check.cut_by_kill} "
        f"({check.cut_by_kill_recorded} of them recorded all the same)",
        f"  no answer at all (connection refused or reset before the status line): {check.unanswered} "
        f"({check.unanswered_recorded} recorded: admitted before the connection broke)",
    ]


def _state_rows(states: tuple[RedisState, ...], *, records_micro: int) -> list[tuple[str, ...]]:
    def row(label: str, cell: Callable[[RedisState], str]) -> tuple[str, ...]:
        return (label, *(cell(state) for state in states))

    return [
        row("quota spend settled in Redis (micro-$)", lambda s: f"{s.quota_spent_micro:,}"),
        row("records' cost, each rounded up (micro-$)", lambda s: f"{records_micro:,}"),
        row("reserved (micro-$)", lambda s: f"{s.quota_reserved_micro:,}"),
        row("reservations (r:<id> fields)", lambda s: f"{s.reservations:,}"),
        row("leases (live)", lambda s: f"{s.leases} ({s.live_leases})"),
        row("parallel slots (live)", lambda s: f"{s.parallel_slots} ({s.live_parallel_slots})"),
        row("outbox entries / pending", lambda s: f"{s.outbox_length} / {s.outbox_pending}"),
        row("rate counters below zero", lambda s: f"{s.negative_counters}"),
    ]


def state_table(check: StateCheck) -> str:
    """The load's end, then settled (leases waited out, probes sent), then after reconciling.
    The records' cost is the final one in every column."""
    rows = _state_rows((check.load_end, check.before, check.after), records_micro=check.records_micro)
    rows.append(
        ("spool file lines / rejected", "", "", f"{check.spool.lines} / {check.spool.rejected_lines}")
    )
    width = max(len(r[0]) for r in rows)
    heads = ("load end", "before reconcile", "after reconcile")
    lines = [f"{'':<{width}}" + "".join(f"  {h:>17}" for h in heads)]
    lines += [f"{r[0]:<{width}}" + "".join(f"  {c:>17}" for c in r[1:]) for r in rows]
    return "\n".join(lines)


def counter_line(check: CounterCheck | None) -> str:
    if check is None:
        return "rate counters: NOT CHECKED (the probe requests were not all recorded in time) !"
    verdict = "ok" if check.ok else "MISMATCH !"
    return (
        f"rate counters of window {check.window} around {check.probes} requests sent alone: requests "
        f"{check.rpm_before:,} -> {check.rpm_after:,} (+{check.rpm_after - check.rpm_before}), tokens "
        f"{check.tpm_before:,} -> {check.tpm_after:,} (+{check.tpm_after - check.tpm_before}, their records "
        f"hold {check.probe_tokens}): {verdict}"
    )


def verdict_lines(found: list[str]) -> list[str]:
    if not found:
        return ["verdict: nothing lost, nothing stuck"]
    return ["verdict: FAILED !", *(f"  - {item}" for item in found)]
