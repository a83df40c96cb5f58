"""Proof that the usage event was written: each gateway's ``UsageRecord`` rows in its own SQLite
database, counted after the load, against the requests its clients completed.

Every completed response is one record, so the count must be at least the completed requests.
It may exceed them by the requests in flight when a wrk run ended (wrk stops reading; the
gateway still answers and records them): at most the run's connection count, summed over runs.
Outside these bounds is a mismatch, an error of the run."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TABLE = "accounting_usagerecord"
SETTLE_SECONDS = 2.0  # the count must hold this long (writer and drainer flush every 0.5 s)
WAIT_SECONDS = 60.0


@dataclass
class Tally:
    """What the clients of one gateway process completed, and how many more may have been
    answered after a client stopped reading."""

    completed: int = 0
    in_flight_allowance: int = 0

    def add(self, completed: int, *, in_flight: int = 0) -> None:
        self.completed += completed
        self.in_flight_allowance += in_flight


@dataclass(frozen=True)
class RecordCheck:
    gateway: str
    stored: int
    by_status: dict[int, int]
    completed: int
    in_flight_allowance: int
    waited_s: float
    quota_spent_usd: float | None = None  # settled in Redis; None where the profile has no quota

    @property
    def counts_match(self) -> bool:
        return self.completed <= self.stored <= self.completed + self.in_flight_allowance

    @property
    def ok(self) -> bool:
        quota_ran = self.quota_spent_usd is None or self.quota_spent_usd > 0
        return self.counts_match and quota_ran

    def describe(self) -> str:
        statuses = ", ".join(f"{count:,} x {status}" for status, count in sorted(self.by_status.items()))
        verdict = "ok" if self.counts_match else "MISMATCH !"
        quota = ""
        if self.quota_spent_usd is not None:
            quota = f"; quota spend settled in Redis ${self.quota_spent_usd:.6f}"
            quota += "" if self.quota_spent_usd > 0 else " (NOTHING SETTLED !)"
        return (
            f"{self.gateway}: {self.stored:,} usage records ({statuses or 'none'}) for {self.completed:,} "
            f"requests completed by the clients (up to {self.in_flight_allowance:,} more may have been in "
            f"flight when runs ended): {verdict}{quota}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "gateway": self.gateway,
            "stored": self.stored,
            "by_status": {str(k): v for k, v in self.by_status.items()},
            "completed": self.completed,
            "in_flight_allowance": self.in_flight_allowance,
            "waited_s": round(self.waited_s, 1),
            "quota_spent_usd": self.quota_spent_usd,
            "ok": self.ok,
        }


def _count(database: Path) -> dict[int, int]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status")
        return {int(status): int(count) for status, count in rows}


def check_records(
    gateway: str, *, database: Path, tally: Tally, quota_spent: Callable[[], float] | None = None
) -> RecordCheck:
    """Wait (at most ``WAIT_SECONDS``) until the count reaches the completed requests and holds
    still for ``SETTLE_SECONDS``, then compare."""
    started = time.monotonic()
    last_total, since = -1, started
    while True:
        by_status = _count(database)
        total = sum(by_status.values())
        now = time.monotonic()
        if total != last_total:
            last_total, since = total, now
        settled = now - since >= SETTLE_SECONDS
        if (settled and total >= tally.completed) or now - started >= WAIT_SECONDS:
            break
        time.sleep(0.25)
    return RecordCheck(
        gateway=gateway,
        stored=total,
        by_status=by_status,
        completed=tally.completed,
        in_flight_allowance=tally.in_flight_allowance,
        waited_s=time.monotonic() - started,
        quota_spent_usd=quota_spent() if quota_spent is not None else None,
    )
