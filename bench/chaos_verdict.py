"""Whether the chaos run lost or left anything: each request the client sent, matched with the
usage records by its own ``x-request-id`` (``client_request_id``), and the quota's counters in
Redis against the records.

Nothing lost and nothing stuck means:

- every request the gateway admitted and answered (its status line came, and it is not a
  refusal that comes before admission) has exactly one record; no request has two; a refused
  request has none; no record belongs to a request the client did not send;
- after ``reconcilequotas`` the quota's settled spend equals the records' costs, each rounded
  up to the micro-dollar as settlement does; no reservation, no lease and no parallel slot is
  left; the rate counters moved by exactly what a few requests sent on their own used;
- the outbox stream holds nothing (no entry, none pending) and the spool file was replayed.

Requests cut by the SIGKILL of a worker (answered by it, in flight when it died) may or may not
have a record: they are counted on their own, as are requests that got no answer at all (a
connection refused or reset before the status line)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

from bench.chaos_load import Sent
from bench.chaos_state import Record, RedisState, SpoolState

EXAMPLES = 10  # request ids named per finding in the verdict
LISTED = 100  # request ids kept per finding in the JSON


def cut_by_kill(sent: Sent, *, kill_times: list[float]) -> bool:
    """Answered, then cut (no complete body): by a worker killed while it was in flight."""
    return (
        sent.answered
        and bool(sent.transport_error)
        and not sent.aborted
        and any(sent.started <= moment <= sent.ended for moment in kill_times)
    )


@dataclass(frozen=True)
class LedgerCheck:
    sent: int
    answered: int
    recorded_once: int
    missing: list[str]  # answered without a record
    duplicates: list[str]  # more than one record
    refused_recorded: list[str]  # refused before admission, yet recorded
    unknown: list[str]  # records of request ids never sent
    cut_by_kill: int
    cut_by_kill_recorded: int
    unanswered: int
    unanswered_recorded: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicates or self.refused_recorded or self.unknown)

    def as_dict(self) -> dict[str, object]:
        listed = {
            name: {"count": len(ids), "first": ids[:LISTED]}
            for name, ids in (
                ("missing", self.missing),
                ("duplicates", self.duplicates),
                ("refused_recorded", self.refused_recorded),
                ("unknown", self.unknown),
            )
        }
        return {**asdict(self), **listed, "ok": self.ok}


def check_ledger(sent: list[Sent], *, records: list[Record], kill_times: list[float]) -> LedgerCheck:
    by_client = Counter(r.client_request_id for r in records)
    ids = {s.client_id for s in sent}
    killed = [s for s in sent if cut_by_kill(s, kill_times=kill_times)]
    killed_ids = {s.client_id for s in killed}
    owed = [s for s in sent if s.answered and s.client_id not in killed_ids]
    unanswered = [s for s in sent if s.status is None]
    return LedgerCheck(
        sent=len(sent),
        answered=len(owed),
        recorded_once=sum(1 for s in owed if by_client[s.client_id] == 1),
        missing=[s.client_id for s in owed if by_client[s.client_id] == 0],
        duplicates=sorted(client_id for client_id, count in by_client.items() if count > 1),
        refused_recorded=[s.client_id for s in sent if s.refused and by_client[s.client_id]],
        unknown=sorted(r.request_id for r in records if r.client_request_id not in ids),
        cut_by_kill=len(killed),
        cut_by_kill_recorded=sum(1 for s in killed if by_client[s.client_id]),
        unanswered=len(unanswered),
        unanswered_recorded=sum(1 for s in unanswered if by_client[s.client_id]),
    )


@dataclass(frozen=True)
class CounterCheck:
    """The rate counters of one minute window around requests sent on their own after the
    load: the request counter moves by their number, the token counter by their recorded
    tokens (the reservation replaced by the actual usage)."""

    window: int
    probes: int
    probe_tokens: int
    rpm_before: int
    rpm_after: int
    tpm_before: int
    tpm_after: int

    @property
    def ok(self) -> bool:
        return (
            self.rpm_after - self.rpm_before == self.probes
            and self.tpm_after - self.tpm_before == self.probe_tokens
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True)
class StateCheck:
    records_micro: int
    load_end: RedisState  # as the load stopped: the reservations of killed or unsettled requests held
    before: RedisState  # settled (leases waited out), before reconcilequotas
    after: RedisState
    spool: SpoolState

    @property
    def failures(self) -> list[str]:
        a = self.after
        found = []
        if a.quota_spent_micro != self.records_micro:
            found.append(
                f"quota spend {a.quota_spent_micro} micro-$ != records' {self.records_micro} micro-$"
            )
        if a.quota_reserved_micro or a.reservations or a.leases:
            found.append(
                f"reservations left: reserved {a.quota_reserved_micro} micro-$, {a.reservations} "
                f"reservation(s), {a.leases} lease(s)"
            )
        if a.parallel_slots:
            found.append(f"{a.parallel_slots} parallel slot(s) left ({a.live_parallel_slots} live)")
        if a.negative_counters:
            found.append(f"{a.negative_counters} rate counter(s) below zero")
        if a.outbox_length or a.outbox_pending:
            found.append(f"outbox not drained: {a.outbox_length} entries, {a.outbox_pending} pending")
        if self.spool.lines or self.spool.rejected_lines:
            found.append(
                f"spool not replayed: {self.spool.lines} line(s), {self.spool.rejected_lines} rejected"
            )
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "records_micro": self.records_micro,
            "load_end": self.load_end.as_dict(),
            "before_reconcile": self.before.as_dict(),
            "after_reconcile": self.after.as_dict(),
            "spool": self.spool.as_dict(),
            "failures": self.failures,
        }


def failures(ledger: LedgerCheck, *, state: StateCheck, counters: CounterCheck | None) -> list[str]:
    """What failed, named; empty: nothing lost and nothing stuck."""
    found = []
    for label, ids in (
        ("answered without a usage record", ledger.missing),
        ("recorded more than once", ledger.duplicates),
        ("refused before admission, yet recorded", ledger.refused_recorded),
        ("records of requests never sent", ledger.unknown),
    ):
        if ids:
            found.append(f"{len(ids)} {label}: {', '.join(ids[:EXAMPLES])}")
    found += state.failures
    if counters is None:
        found.append("rate counters not checked (the probe requests were not all recorded)")
    elif not counters.ok:
        found.append(
            f"rate counters: rpm +{counters.rpm_after - counters.rpm_before} for {counters.probes} "
            f"requests, tpm +{counters.tpm_after - counters.tpm_before} for {counters.probe_tokens} tokens"
        )
    return found
