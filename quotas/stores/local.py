"""The in-process limit store, used without ``REDIS_URL``: the same algorithms and quota rules
as the Redis script (``quotas.algorithms``, ``quotas.budget``), on state held in this process.

Correct for one process only: each process counts on its own (``serve --workers 2`` without
Redis allows each worker the full limits) and the counters start empty when it starts. Quota
spend starts from what the usage records already hold for the current period (``baseline``)."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from quotas.algorithms import (
    Bucket,
    Outcome,
    leaky_bucket,
    settle_bucket,
    settle_count,
    token_bucket,
    window,
    window_index,
)
from quotas.budget import alert_due, quota_admits
from quotas.policy import Plan, QuotaLine, RateLine
from quotas.stores.base import LineState, Outbox, QuotaState, Refusal, RefusalKind, Settled, Verdict

Write = Callable[[], None]


@dataclass(slots=True)
class _QuotaCounter:
    spent: int
    reserved: int = 0
    alerted: bool = False
    leases: dict[str, tuple[int, int]] = field(default_factory=dict)  # request id -> (amount, expiry)

    def reap(self, now_ms: int) -> QuotaState:
        """Release the reservations whose lease has expired; returns the state after that."""
        for rid, (amount, expiry) in list(self.leases.items()):
            if expiry <= now_ms:
                self.reserved -= amount
                del self.leases[rid]
        return QuotaState(self.spent, self.reserved)


def _zero_baseline(quota_id: int, period_key: str) -> int:
    return 0


class _Refusals:
    """The same choice as the script: a quota refusal wins; otherwise the longest wait, and a
    request that can never fit beats any wait."""

    def __init__(self) -> None:
        self.rate: Refusal | None = None
        self.quota: Refusal | None = None

    def add(self, kind: RefusalKind, index: int, retry_ms: int | None) -> None:
        if kind == "quota":
            self.quota = self.quota or Refusal(kind, index, 0)
            return
        current = self.rate
        if current is None or (
            current.retry_ms is not None and (retry_ms is None or retry_ms > current.retry_ms)
        ):
            self.rate = Refusal(kind, index, retry_ms)

    @property
    def chosen(self) -> Refusal | None:
        return self.quota or self.rate


class LocalStore:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        baseline: Callable[[int, str], int] = _zero_baseline,
    ) -> None:
        self._clock = clock
        self._baseline = baseline
        self._lock = threading.Lock()  # processes may run more than one event loop (tests do)
        self._windows: dict[str, dict[int, int]] = {}
        self._buckets: dict[str, Bucket] = {}
        self._slots: dict[str, dict[str, int]] = {}
        self._quotas: dict[str, _QuotaCounter] = {}
        self._quota_keys: dict[int, str] = {}

    def _now(self, now_ms: int | None) -> int:
        return int(self._clock() * 1000) if now_ms is None else now_ms

    def _rate(self, line: RateLine, now_ms: int, writes: list[Write]) -> Outcome:
        limit, cost, window_ms = line.limit, line.cost, line.window_ms
        if line.algorithm in ("fixed_window", "sliding_window"):
            counts = self._windows.setdefault(line.key, {})
            index = window_index(now_ms, window_ms)
            for old in [i for i in counts if i < index - 1]:
                del counts[old]
            sliding = line.algorithm == "sliding_window"
            outcome = window(
                sliding=sliding,
                current=counts.get(index, 0),
                previous=counts.get(index - 1, 0) if sliding else 0,
                now_ms=now_ms,
                window_ms=window_ms,
                limit=limit,
                cost=cost,
            )
            if outcome.admitted:
                writes.append(lambda: counts.__setitem__(index, counts.get(index, 0) + cost))
            return outcome
        algorithm = token_bucket if line.algorithm == "token_bucket" else leaky_bucket
        outcome, state = algorithm(
            self._buckets.get(line.key), now_ms=now_ms, window_ms=window_ms, limit=limit, cost=cost
        )
        if outcome.admitted:
            writes.append(lambda: self._buckets.__setitem__(line.key, state))
        return outcome

    def _counter(self, line: QuotaLine) -> _QuotaCounter:
        counter = self._quotas.get(line.key)
        if counter is None:
            previous = self._quota_keys.get(line.quota.id)
            if previous is not None and previous != line.key:
                self._quotas.pop(previous, None)  # the period rolled over
            counter = _QuotaCounter(spent=self._baseline(line.quota.id, line.period.key))
            self._quotas[line.key] = counter
            self._quota_keys[line.quota.id] = line.key
        return counter

    def _evaluate(self, plan: Plan, now_ms: int) -> Verdict:
        writes: list[Write] = []
        refusals = _Refusals()
        states: list[LineState] = []
        for index, line in enumerate(plan.rates):
            outcome = self._rate(line, now_ms, writes)
            states.append(LineState(outcome.remaining, outcome.reset_ms))
            if not outcome.admitted:
                refusals.add("rate" if outcome.retry_ms is not None else "too_large", index, outcome.retry_ms)
        for index, parallel in enumerate(plan.parallel):
            slots = self._slots.setdefault(parallel.key, {})
            for rid in [rid for rid, expiry in slots.items() if expiry <= now_ms]:
                del slots[rid]
            if len(slots) >= parallel.limit:
                refusals.add("parallel", index, 1000)
            else:
                writes.append(functools.partial(slots.__setitem__, plan.request_id, now_ms + plan.lease_ms))
        quota_states: list[QuotaState] = []
        for index, quota in enumerate(plan.quotas):
            counter = self._counter(quota)
            quota_states.append(counter.reap(now_ms))
            fits = quota_admits(
                spent=counter.spent,
                reserved=counter.reserved,
                amount=quota.amount_micro,
                limit=quota.limit_micro,
                hard=quota.quota.hard,
            )
            if not fits:
                refusals.add("quota", index, 0)
            elif quota.amount_micro > 0:
                writes.append(functools.partial(self._reserve, counter, quota, plan, now_ms))
        if refusals.chosen is None:
            for write in writes:
                write()
        return Verdict(
            now_ms=now_ms, rates=tuple(states), quotas=tuple(quota_states), refusal=refusals.chosen
        )

    @staticmethod
    def _reserve(counter: _QuotaCounter, line: QuotaLine, plan: Plan, now_ms: int) -> None:
        counter.reserved += line.amount_micro
        counter.leases[plan.request_id] = (line.amount_micro, now_ms + plan.lease_ms)

    async def evaluate(self, plan: Plan, *, now_ms: int | None = None) -> Verdict:
        with self._lock:
            return self._evaluate(plan, self._now(now_ms))

    def _settle_tokens(self, line: RateLine, *, admitted_ms: int, now_ms: int, delta: int) -> None:
        if line.algorithm in ("fixed_window", "sliding_window"):
            counts = self._windows.get(line.key, {})
            index = window_index(admitted_ms, line.window_ms)
            if index in counts:
                counts[index] = int(settle_count(counts[index], delta))
            return
        state = self._buckets.get(line.key)
        if state is not None:
            self._buckets[line.key] = settle_bucket(
                line.algorithm, state, now_ms=now_ms, window_ms=line.window_ms, limit=line.limit, delta=delta
            )

    def _settle(
        self, plan: Plan, *, admitted_ms: int, tokens: int, cost_micro: int, now_ms: int
    ) -> tuple[Settled, ...]:
        for line in plan.rates:
            if line.dimension == "tokens" and tokens != line.cost:
                self._settle_tokens(line, admitted_ms=admitted_ms, now_ms=now_ms, delta=tokens - line.cost)
        for parallel in plan.parallel:
            self._slots.get(parallel.key, {}).pop(plan.request_id, None)
        results: list[Settled] = []
        for quota in plan.quotas:
            counter = self._counter(quota)
            held = counter.leases.pop(plan.request_id, None)
            if held is not None:
                counter.reserved -= held[0]
            counter.spent += cost_micro
            fired = alert_due(spent=counter.spent, threshold=quota.threshold_micro, alerted=counter.alerted)
            counter.alerted = counter.alerted or fired
            results.append(Settled(spent=counter.spent, alert=fired))
        return tuple(results)

    async def settle(
        self,
        plan: Plan | None,
        *,
        admitted_ms: int,
        tokens: int,
        cost_micro: int,
        now_ms: int | None = None,
        outbox: Outbox | None = None,
    ) -> tuple[Settled, ...]:
        if outbox is not None:
            outbox.on_failure()  # no streams in process: the caller records the event itself
        if plan is None:
            return ()
        with self._lock:
            return self._settle(
                plan, admitted_ms=admitted_ms, tokens=tokens, cost_micro=cost_micro, now_ms=self._now(now_ms)
            )

    async def quota_states(
        self, lines: tuple[QuotaLine, ...], *, now_ms: int | None = None
    ) -> tuple[QuotaState, ...]:
        return self.quota_states_now(lines, now_ms=now_ms)

    def quota_states_now(
        self, lines: tuple[QuotaLine, ...], *, now_ms: int | None = None
    ) -> tuple[QuotaState, ...]:
        """``quota_states`` for a caller outside the event loop (the admin's threads)."""
        now_ms = self._now(now_ms)
        with self._lock:
            return tuple(self._counter(line).reap(now_ms) for line in lines)

    async def aclose(self) -> None:
        return None
