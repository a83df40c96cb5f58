"""Admission control before any work: a worker that is full sheds a request at once (503,
``retry-after``), before it costs a Redis or an upstream call.

* ``LoopMonitor`` measures how late the event loop runs: a timer due every ``interval`` notes
  by how much it woke late. ``lag()`` is the latest such delay (or the one in progress);
  ``stalled()`` the running total, which the limiter's Redis deadline subtracts so the
  process's own slowness is never blamed on Redis (``quotas.stores.deadline``).
* ``LoadGate`` admits a request while fewer than ``max_in_flight`` are in flight in this
  worker (streams until they end) and the loop's lag is under ``max_lag``; otherwise it says
  why not (``in_flight`` or ``lag``)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal

ShedReason = Literal["in_flight", "lag"]


class LoopMonitor:
    def __init__(self, *, interval: float = 0.05) -> None:
        self._interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._last_lag = 0.0
        self._stalled = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin measuring on the running loop (once)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._due = self._loop.time() + self._interval
            self._task = self._loop.create_task(self._run(), name="loop-monitor")

    async def _run(self) -> None:
        assert self._loop is not None
        while True:
            self._due = self._loop.time() + self._interval
            await asyncio.sleep(self._interval)
            late = max(0.0, self._loop.time() - self._due)
            self._last_lag = late
            self._stalled += late

    def _overdue(self) -> float:
        if self._loop is None or self._task is None:
            return 0.0
        return max(0.0, self._loop.time() - self._due)

    def lag(self) -> float:
        """Seconds the loop ran late at its last wake-up, or is running late now."""
        return max(self._last_lag, self._overdue())

    def stalled(self) -> float:
        """Seconds the loop has run late since the monitor started, the current delay included."""
        return self._stalled + self._overdue()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass(slots=True)
class LoadGate:
    max_in_flight: int
    max_lag: float
    monitor: LoopMonitor = field(default_factory=LoopMonitor)
    in_flight: int = 0

    def enter(self) -> ShedReason | None:
        """Count the request in, or say why it must be shed."""
        self.monitor.start()
        if self.in_flight >= self.max_in_flight:
            return "in_flight"
        if self.monitor.lag() > self.max_lag:
            return "lag"
        self.in_flight += 1
        return None

    def leave(self) -> None:
        self.in_flight -= 1
