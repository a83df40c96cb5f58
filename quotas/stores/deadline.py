"""A deadline for a call to a shared store that measures the store, not this process.

A reply that has arrived is read only when the event loop gets to it; a loop running late (a
burst of requests, a long callback) makes every pending call look slow, and a plain timeout
then blames the store. ``StoreDeadline`` runs the call under a timer that, when it fires, takes
off the time the loop spent stalled meanwhile (``stalled``: the process's running total of how
late its loop ran, in seconds) and waits on for what is left. Only time the loop was responsive
counts against ``timeout``; ``cap`` bounds the wait in wall time whatever the loop does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


def never_stalled() -> float:
    return 0.0


class DeadlinePassed(Exception):
    """The call used up its deadline. ``stalled`` says whether the loop's own lag, not the
    store, took most of it (the wall-time cap was reached)."""

    def __init__(self, *, stalled: bool) -> None:
        super().__init__("the loop stalled past the cap" if stalled else "the store did not answer in time")
        self.stalled = stalled


class StoreDeadline:
    """``async with StoreDeadline(timeout=..., cap=..., stalled=...):`` around one store call;
    raises ``DeadlinePassed`` when it expires (the call inside is cancelled)."""

    __slots__ = (
        "_cap",
        "_expired",
        "_handle",
        "_loop",
        "_stall_at_start",
        "_stalled",
        "_started",
        "_task",
        "_timeout",
    )

    def __init__(self, *, timeout: float, cap: float, stalled: Callable[[], float] = never_stalled) -> None:
        self._timeout, self._cap, self._stalled = timeout, max(cap, timeout), stalled
        self._expired: DeadlinePassed | None = None
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> StoreDeadline:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("StoreDeadline must be used inside a task")
        self._task = task
        self._started, self._stall_at_start = self._loop.time(), self._stalled()
        self._handle = self._loop.call_at(self._started + self._timeout, self._check)
        return self

    def _check(self) -> None:
        elapsed = self._loop.time() - self._started
        used = elapsed - (self._stalled() - self._stall_at_start)
        if used >= self._timeout or elapsed >= self._cap:
            self._handle = None
            self._expired = DeadlinePassed(stalled=used < self._timeout)
            self._task.cancel()
            return
        wait = min(self._timeout - used, self._cap - elapsed)
        self._handle = self._loop.call_at(self._loop.time() + wait, self._check)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._expired is not None and kind is asyncio.CancelledError and self._task.uncancel() == 0:
            raise self._expired from error
