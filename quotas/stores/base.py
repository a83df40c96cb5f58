"""What a limit store is (``LimitStore``) and the values it answers with: the verdict on a
request's lines, the state of a quota, a settlement's result. Both stores (``local``: in
process; ``shared``: Redis) decide alike."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from quotas.policy import Plan, QuotaLine

RefusalKind = Literal["rate", "too_large", "parallel", "quota"]


class StoreUnavailable(Exception):
    """The shared store could not be reached (or answered garbage)."""


class StoreOverloaded(Exception):
    """This process was too slow to hear the store's answer in time (its event loop stalled):
    neither the store's fault nor a reason to admit a request unchecked."""


@dataclass(frozen=True, slots=True)
class LineState:
    remaining: int
    reset_ms: int


@dataclass(frozen=True, slots=True)
class QuotaState:
    spent: int
    reserved: int


@dataclass(frozen=True, slots=True)
class Refusal:
    kind: RefusalKind
    index: int  # 0-based, within the plan's lines of that kind
    retry_ms: int | None


@dataclass(frozen=True, slots=True)
class Verdict:
    now_ms: int
    rates: tuple[LineState, ...]  # one per plan.rates
    quotas: tuple[QuotaState, ...]  # one per plan.quotas, before this request
    refusal: Refusal | None = None


@dataclass(frozen=True, slots=True)
class Settled:
    """A quota line after settlement: its spend, and whether this settlement crossed the alert
    threshold first (exactly one settlement per period does)."""

    spent: int
    alert: bool


@dataclass(frozen=True, slots=True)
class Outbox:
    """An already-serialized event to append to a Redis stream in the settlement's round trip
    (the usage ledger's outbox). ``on_failure`` is called, once, when the store could not append
    it (Redis unreachable, or a store without streams): the caller records the event otherwise.
    After a lost reply the entry may be both appended and recorded otherwise: consumers of the
    stream must ignore a duplicate."""

    stream: str
    payload: bytes
    on_failure: Callable[[], None]


class LimitStore(Protocol):
    async def evaluate(self, plan: Plan, *, now_ms: int | None = None) -> Verdict:
        """Decide every line atomically; reserve them all when all admit."""

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
        """Replace the plan's reservations by the actual tokens and cost; release its slots;
        append ``outbox`` in the same round trip. Raises ``StoreUnavailable`` (the caller then
        calls ``outbox.on_failure``)."""

    async def quota_states(
        self, lines: tuple[QuotaLine, ...], *, now_ms: int | None = None
    ) -> tuple[QuotaState, ...]:
        """Each quota line's current spend and live reservations (those whose lease ended are
        released first, as admission would)."""

    async def aclose(self) -> None: ...
