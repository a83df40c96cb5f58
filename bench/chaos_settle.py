"""After the chaos load: waiting for the dust to settle (the reservations of killed or unsettled
requests past their lease, the outbox drained, the spool replayed, the record count still),
bounded; then the rate-counter probe: a few requests sent on their own inside one minute window,
whose request and token counters must move by exactly their number and their recorded tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass

from bench.chaos_load import Load
from bench.chaos_setup import LEASE_S, PREFIX, ChaosInstallation
from bench.chaos_state import (
    read_records,
    read_redis_state,
    read_spool,
    record_count,
    redis_now_ms,
    window_counters,
)
from bench.chaos_verdict import CounterCheck

SETTLE_TIMEOUT_S = 180.0
STILL_S = 3.0  # the record count must hold this long
PROBES = 6
WINDOW_MS = 60_000
LATEST_START_IN_WINDOW_S = 45.0  # later than this, the probe waits for the next window
PROBE_RECORD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Settled:
    waited_s: float
    settled: bool  # False: the bound passed first
    records: int | None


def _drained(owned: ChaosInstallation) -> bool:
    with owned.redis.client() as client:
        state = read_redis_state(client, prefix=PREFIX)
    return not (state.outbox_length or state.outbox_pending) and read_spool(owned.spool_path).lines == 0


def settle(owned: ChaosInstallation, *, last_request_end: float) -> Settled:
    """Wait until every lease taken during the load has ended, the outbox and the spool are
    empty and the record count has held still for ``STILL_S`` (at most ``SETTLE_TIMEOUT_S``)."""
    started = time.monotonic()
    leases_end = last_request_end + LEASE_S + 1.0
    count, still_since = record_count(owned.database_url), time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        time.sleep(0.5)
        now_count = record_count(owned.database_url)
        if now_count != count:
            count, still_since = now_count, time.monotonic()
        still = now_count is not None and time.monotonic() - still_since >= STILL_S
        if time.time() >= leases_end and still and _drained(owned):
            return Settled(waited_s=round(time.monotonic() - started, 1), settled=True, records=count)
    return Settled(waited_s=round(time.monotonic() - started, 1), settled=False, records=count)


def _window_start_wait(now_ms: int) -> float:
    """Seconds to wait so that the probe starts early in a minute window."""
    into = (now_ms % WINDOW_MS) / 1000
    return 0.0 if into <= LATEST_START_IN_WINDOW_S else WINDOW_MS / 1000 - into + 1.0


def probe_counters(owned: ChaosInstallation, *, load: Load) -> CounterCheck | None:
    """Send ``PROBES`` requests (JSON and streamed in turn) inside one window and compare its
    counters before and after with their records; None if their records did not all come."""
    with owned.redis.client() as client:
        time.sleep(_window_start_wait(redis_now_ms(client)))
        window = redis_now_ms(client) // WINDOW_MS
        before = window_counters(client, prefix=PREFIX, window=window)
        load.phase = "probe"
        probes = {load.probe(streamed=index % 2 == 1).client_id for index in range(PROBES)}
        deadline = time.monotonic() + PROBE_RECORD_TIMEOUT_S
        while True:
            recorded = [r for r in read_records(owned.database_url) if r.client_request_id in probes]
            if len(recorded) == PROBES or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if len(recorded) != PROBES:
            return None
        # The event reaches the outbox in the settlement's own script: recorded means settled.
        after = window_counters(client, prefix=PREFIX, window=window)
    return CounterCheck(
        window=window,
        probes=PROBES,
        probe_tokens=sum(r.tokens for r in recorded),
        rpm_before=before["rpm"],
        rpm_after=after["rpm"],
        tpm_before=before["tpm"],
        tpm_after=after["tpm"],
    )
