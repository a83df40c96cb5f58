"""Upstream calls per deployment in one-minute buckets, for the admin's routing overview:
how many calls, how many failed (the failures a breaker counts: timeouts, unreachable, 429,
5xx), and the summed latency of the successful ones.

``StatsBoard`` keeps this process's buckets for ``keep_minutes``; ``take_dirty`` hands the
increments since the last call to ``routing.sync``, which adds them to one Redis hash per
minute so the overview covers every instance."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallCounts:
    calls: int = 0
    failures: int = 0
    latency_ms: float = 0.0  # summed over the successful calls

    def __add__(self, other: CallCounts) -> CallCounts:
        return CallCounts(
            calls=self.calls + other.calls,
            failures=self.failures + other.failures,
            latency_ms=self.latency_ms + other.latency_ms,
        )

    @property
    def successes(self) -> int:
        return self.calls - self.failures

    @property
    def error_rate(self) -> float | None:
        return self.failures / self.calls if self.calls else None

    @property
    def mean_latency_ms(self) -> float | None:
        return self.latency_ms / self.successes if self.successes else None


Bucket = tuple[int, int]  # (minute since the epoch, deployment id)


def minute_of(wall_seconds: float) -> int:
    return int(wall_seconds // 60)


class StatsBoard:
    def __init__(self, *, clock: Callable[[], float] = time.time, keep_minutes: int = 60) -> None:
        self._clock = clock
        self._keep = keep_minutes
        self._buckets: dict[Bucket, CallCounts] = {}
        self._dirty: dict[Bucket, CallCounts] = {}
        self._minute = 0

    def record(self, deployment_id: int, *, failed: bool, latency_ms: float) -> None:
        minute = minute_of(self._clock())
        one = CallCounts(calls=1, failures=int(failed), latency_ms=0.0 if failed else latency_ms)
        bucket = (minute, deployment_id)
        self._buckets[bucket] = self._buckets.get(bucket, CallCounts()) + one
        self._dirty[bucket] = self._dirty.get(bucket, CallCounts()) + one
        if minute != self._minute:  # once a minute, drop what is older than ``keep_minutes``
            self._minute = minute
            self._forget_before(minute - self._keep)

    def _forget_before(self, minute: int) -> None:
        for bucket in [b for b in self._buckets if b[0] < minute]:
            del self._buckets[bucket]

    def take_dirty(self) -> dict[Bucket, CallCounts]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def window(self, minutes: int) -> dict[int, CallCounts]:
        """This process's counts per deployment over the last ``minutes`` minutes (this one
        included)."""
        return totals_since(dict(self._buckets).items(), minute_of(self._clock()) - minutes + 1)


def totals_since(buckets: Iterable[tuple[Bucket, CallCounts]], first_minute: int) -> dict[int, CallCounts]:
    totals: dict[int, CallCounts] = {}
    for (minute, deployment_id), counts in buckets:
        if minute >= first_minute:
            totals[deployment_id] = totals.get(deployment_id, CallCounts()) + counts
    return totals


def merge_totals(parts: Iterable[Mapping[int, CallCounts]]) -> dict[int, CallCounts]:
    merged: dict[int, CallCounts] = {}
    for part in parts:
        for deployment_id, counts in part.items():
            merged[deployment_id] = merged.get(deployment_id, CallCounts()) + counts
    return merged


# --- The shared view in Redis: one hash per minute, fields ``<id>:c``, ``<id>:f``, ``<id>:ms``.

SHARED_TTL_SECONDS = 2 * 3600


# The hash tag of every key the routing sync reads and writes together (``routing.sync``): on
# Redis Cluster they share one slot, so a sync round is one round trip to one node.
ROUTING_TAG = "{routing}"


def shared_key(prefix: str, minute: int) -> str:
    return f"{prefix}{ROUTING_TAG}:dstats:{minute}"


def shared_fields(counts: CallCounts, deployment_id: int) -> dict[str, float]:
    return {
        f"{deployment_id}:c": counts.calls,
        f"{deployment_id}:f": counts.failures,
        f"{deployment_id}:ms": round(counts.latency_ms, 3),
    }


def parse_shared(fields: Mapping[bytes, bytes]) -> dict[int, CallCounts]:
    """One minute's hash back into counts per deployment."""
    parts: dict[int, dict[str, float]] = {}
    for name, value in fields.items():
        deployment, _, kind = name.decode().partition(":")
        parts.setdefault(int(deployment), {})[kind] = float(value)
    return {
        deployment_id: CallCounts(
            calls=int(p.get("c", 0)), failures=int(p.get("f", 0)), latency_ms=p.get("ms", 0.0)
        )
        for deployment_id, p in parts.items()
    }
