"""Moving averages of upstream latency per deployment, for ``least_latency``.

Each process keeps its own view (read on the hot path without I/O). With Redis the views are
shared: ``routing.sync`` periodically publishes what this process measured since the last sync
into one hash and reads back everyone's averages (last writer wins per deployment), so a
deployment made slow on one instance is avoided by all within a sync interval."""

from __future__ import annotations

from collections.abc import Mapping


class LatencyBoard:
    """Exponentially weighted moving averages (weight ``alpha`` for the newest sample)."""

    def __init__(self, *, alpha: float = 0.3) -> None:
        self._alpha = alpha
        self._average: dict[int, float] = {}
        self._dirty: dict[int, float] = {}

    def observe(self, deployment_id: int, latency_ms: float) -> None:
        previous = self._average.get(deployment_id)
        average = latency_ms if previous is None else self._alpha * latency_ms + (1 - self._alpha) * previous
        self._average[deployment_id] = average
        self._dirty[deployment_id] = average

    def averages(self) -> Mapping[int, float]:
        return self._average

    def take_dirty(self) -> dict[int, float]:
        dirty, self._dirty = self._dirty, {}
        return dirty

    def merge(self, shared: Mapping[int, float]) -> None:
        """Adopt the shared averages, except where this process measured since the last sync."""
        for deployment_id, average in shared.items():
            if deployment_id not in self._dirty:
                self._average[deployment_id] = average
