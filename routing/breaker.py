"""Circuit breakers, one per deployment: closed (traffic flows, consecutive failures counted),
open (no traffic for ``open_seconds`` after ``failure_threshold`` consecutive failures),
half-open (one probe at a time; ``success_threshold`` successes close it, a failure reopens).

The transitions are pure functions of a state, a policy and the time (wall clock seconds, so
that instances can share when a breaker opened). ``BreakerBoard`` keeps this process's states;
``routing.sync`` publishes openings and closings through Redis so every instance skips a
deployment that one of them saw failing."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Final, Literal

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    success_threshold: int = 2
    open_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class Breaker:
    state: State = "closed"
    failures: int = 0
    successes: int = 0
    opened_at: float = 0.0
    probing: bool = False


CLOSED: Final = Breaker()


def current(policy: BreakerPolicy, breaker: Breaker, now: float) -> Breaker:
    """An open breaker whose ``open_seconds`` passed is half-open."""
    if breaker.state == "open" and now - breaker.opened_at >= policy.open_seconds:
        return Breaker(state="half_open", opened_at=breaker.opened_at)
    return breaker


def allows(policy: BreakerPolicy, breaker: Breaker, now: float) -> bool:
    """Whether a request may go to the deployment now (half-open: only when no probe is out)."""
    state = current(policy, breaker, now)
    return state.state == "closed" or (state.state == "half_open" and not state.probing)


def on_start(policy: BreakerPolicy, breaker: Breaker, now: float) -> Breaker:
    """A request goes out: in half-open it is the probe."""
    state = current(policy, breaker, now)
    return replace(state, probing=True) if state.state == "half_open" else state


def on_success(policy: BreakerPolicy, breaker: Breaker, now: float) -> Breaker:
    state = current(policy, breaker, now)
    if state.state != "half_open":
        return CLOSED if state.state == "closed" else state
    successes = state.successes + 1
    if successes >= policy.success_threshold:
        return CLOSED
    return replace(state, successes=successes, probing=False)


def on_failure(policy: BreakerPolicy, breaker: Breaker, now: float) -> Breaker:
    state = current(policy, breaker, now)
    if state.state == "half_open":
        return Breaker(state="open", opened_at=now)
    if state.state == "open":
        return state
    failures = state.failures + 1
    if failures >= policy.failure_threshold:
        return Breaker(state="open", opened_at=now)
    return replace(state, failures=failures)


class BreakerBoard:
    """This process's breakers by deployment id; ``changes`` collects openings (their time) and
    closings (0.0) for the shared view."""

    def __init__(self, policy: BreakerPolicy, *, clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self._clock = clock
        self._breakers: dict[int, Breaker] = {}
        self._changes: dict[int, float] = {}

    def get(self, deployment_id: int) -> Breaker:
        return current(self.policy, self._breakers.get(deployment_id, CLOSED), self._clock())

    def allows(self, deployment_id: int) -> bool:
        return allows(self.policy, self._breakers.get(deployment_id, CLOSED), self._clock())

    def start(self, deployment_id: int) -> None:
        self._update(deployment_id, on_start)

    def succeeded(self, deployment_id: int) -> None:
        self._update(deployment_id, on_success)

    def failed(self, deployment_id: int) -> None:
        self._update(deployment_id, on_failure)

    def _update(
        self, deployment_id: int, transition: Callable[[BreakerPolicy, Breaker, float], Breaker]
    ) -> None:
        before = self._breakers.get(deployment_id, CLOSED)
        after = transition(self.policy, before, self._clock())
        if after == CLOSED:
            self._breakers.pop(deployment_id, None)
        else:
            self._breakers[deployment_id] = after
        if after.state == "open" and after.opened_at != before.opened_at:
            self._changes[deployment_id] = after.opened_at
        elif after == CLOSED and before.state != "closed":
            self._changes[deployment_id] = 0.0

    def take_changes(self) -> dict[int, float]:
        changes, self._changes = self._changes, {}
        return changes

    def merge(self, shared: Mapping[int, float]) -> None:
        """Adopt openings other instances published (deployment id -> opened at; 0: closed)."""
        for deployment_id, opened_at in shared.items():
            mine = self._breakers.get(deployment_id, CLOSED)
            if deployment_id in self._changes:
                continue
            if opened_at > mine.opened_at:
                self._breakers[deployment_id] = Breaker(state="open", opened_at=opened_at)
            elif opened_at == 0.0 and mine.state != "closed" and not mine.probing:
                self._breakers.pop(deployment_id, None)

    def states(self) -> dict[int, Breaker]:
        return {deployment_id: self.get(deployment_id) for deployment_id in self._breakers}
