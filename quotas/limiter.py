"""Admission: one store round trip decides every limit of a request (``Limiter.admit``), and
one more replaces its reservation by what it actually used (``Admission.settle``).

The store is Redis (shared by every gateway process) or in-process (``quotas.stores.local``);
this module holds what both share: the verdict a store returns, the ``x-ratelimit-*`` headers,
the refusal errors, and the policy for an unreachable Redis (fail open: admit, count, log once a
minute; fail closed: 503), which recovers by itself."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from quotas.budget import Period, from_micro
from quotas.errors import AdmissionError, LimiterUnavailable, Overloaded, QuotaExceeded, RateLimited
from quotas.policy import Plan, QuotaLine, QuotaPolicy, RateLine
from quotas.stores.base import (
    LimitStore,
    LineState,
    Outbox,
    QuotaState,
    StoreOverloaded,
    StoreUnavailable,
    Verdict,
)

logger = logging.getLogger(__name__)

FAIL_OPEN_LOG_SECONDS = 60.0
PARALLEL_RETRY_MS = 1000


@dataclass(frozen=True, slots=True)
class QuotaAlertNotice:
    quota: QuotaPolicy
    tenant_id: int
    period: Period
    spent_micro: int


def duration(ms: int) -> str:
    """OpenAI's reset format: ``20ms``, ``1.5s``, ``6m0s``, ``1h2m3s``."""
    if ms < 1000:
        return f"{max(0, ms)}ms"
    minutes, seconds = divmod(ms / 1000, 60)
    if minutes == 0:
        return f"{seconds:g}s"
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}h{minutes}m{seconds:g}s" if hours else f"{minutes}m{seconds:g}s"


def rate_limit_headers(lines: tuple[RateLine, ...], states: tuple[LineState, ...]) -> dict[str, str]:
    """``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` from the tightest line of each
    dimension (least remaining; on a tie, the later reset). A dimension without lines gets none."""
    headers: dict[str, str] = {}
    for dimension in ("requests", "tokens"):
        pairs = [
            (line, state) for line, state in zip(lines, states, strict=True) if line.dimension == dimension
        ]
        if not pairs:
            continue
        line, state = min(pairs, key=lambda pair: (pair[1].remaining, -pair[1].reset_ms))
        headers[f"x-ratelimit-limit-{dimension}"] = str(line.limit)
        headers[f"x-ratelimit-remaining-{dimension}"] = str(state.remaining)
        headers[f"x-ratelimit-reset-{dimension}"] = duration(state.reset_ms)
    return headers


def _retry_headers(headers: dict[str, str], retry_ms: int | None) -> dict[str, str]:
    if retry_ms is None:
        return headers
    return {
        **headers,
        "retry-after": str(max(1, math.ceil(retry_ms / 1000))),
        "retry-after-ms": str(retry_ms),
    }


def _quota_refusal(
    line: QuotaLine, state: QuotaState, headers: dict[str, str], now: dt.datetime
) -> QuotaExceeded:
    quota = line.quota
    over_alone = state.spent + line.amount_micro > line.limit_micro
    seconds = line.period.seconds_left(now) if over_alone else PARALLEL_RETRY_MS / 1000
    retry_ms = None if seconds is None else math.ceil(seconds * 1000)
    where = {"day": "daily", "week": "weekly", "month": "monthly"}.get(quota.period, "lifetime")
    message = (
        f"You exceeded your current quota: the {quota.owner}'s {where} limit is ${quota.limit_usd}, "
        f"${from_micro(state.spent)} is spent and ${from_micro(state.reserved)} is reserved by requests "
        f"in flight; this request may cost up to ${from_micro(line.amount_micro)}."
    )
    return QuotaExceeded(message, headers=_retry_headers(headers, retry_ms))


def refusal_error(
    plan: Plan, verdict: Verdict, headers: dict[str, str], *, now: dt.datetime
) -> AdmissionError:
    refusal = verdict.refusal
    assert refusal is not None
    if refusal.kind == "quota":
        return _quota_refusal(plan.quotas[refusal.index], verdict.quotas[refusal.index], headers, now)
    if refusal.kind == "parallel":
        parallel = plan.parallel[refusal.index]
        message = (
            f"Too many requests in flight ({parallel.scope}): the limit is {parallel.limit} at a time. "
            "Please try again when one has finished."
        )
        return RateLimited(message, error_type="requests", headers=_retry_headers(headers, refusal.retry_ms))
    line, state = plan.rates[refusal.index], verdict.rates[refusal.index]
    if refusal.kind == "too_large":
        message = (
            f"Request too large for {line.label}: limit {line.limit}, requested {line.cost}. "
            "Send a shorter prompt or a smaller max_tokens."
        )
        return RateLimited(message, error_type=line.dimension, headers=headers)
    wait = duration(refusal.retry_ms or 0)
    message = (
        f"Rate limit reached for {line.label}: limit {line.limit}, remaining {state.remaining}, "
        f"requested {line.cost}. Please try again in {wait}."
    )
    return RateLimited(message, error_type=line.dimension, headers=_retry_headers(headers, refusal.retry_ms))


@dataclass(slots=True)
class Admission:
    """An admitted request's claim on its limits; ``settle`` exactly once when it ends."""

    plan: Plan | None
    admitted_ms: int
    headers: dict[str, str] = field(default_factory=dict)
    limiter: Limiter | None = None
    settled: bool = False

    def settle(self, *, tokens: int, cost_micro: int) -> None:
        """Schedule the settlement (never blocks, never raises)."""
        if self.settled:
            return
        self.settled = True
        if self.limiter is not None and self.plan is not None and self.plan.needs_settlement:
            self.limiter.settle_soon(self, tokens=tokens, cost_micro=cost_micro)


class Limiter:
    def __init__(
        self,
        store: LimitStore,
        *,
        fail_open: bool,
        on_alert: Callable[[QuotaAlertNotice], None],
    ) -> None:
        self.store = store
        self._fail_open = fail_open
        self._on_alert = on_alert
        self._pending: set[asyncio.Task[None]] = set()
        self.unenforced_total = 0
        self._unenforced_since_log = 0
        self._last_log = -math.inf

    async def admit(self, plan: Plan, *, now_ms: int | None = None) -> Admission:
        """The request's admission, or the refusal error (429, or 503 when failing closed)."""
        try:
            verdict = await self.store.evaluate(plan, now_ms=now_ms)
        except StoreOverloaded:
            raise Overloaded(
                "The gateway is overloaded; please retry shortly.", headers={"retry-after": "1"}
            ) from None
        except StoreUnavailable as exc:
            if not self._fail_open:
                raise LimiterUnavailable(
                    "The gateway cannot check rate limits right now; please retry shortly.",
                    headers={"retry-after": "1"},
                ) from None
            self._count_unenforced(exc)
            return Admission(plan=None, admitted_ms=0)
        headers = rate_limit_headers(plan.rates, verdict.rates)
        if verdict.refusal is not None:
            now = dt.datetime.fromtimestamp(verdict.now_ms / 1000, tz=dt.UTC)
            raise refusal_error(plan, verdict, headers, now=now)
        return Admission(plan=plan, admitted_ms=verdict.now_ms, headers=headers, limiter=self)

    def _count_unenforced(self, exc: StoreUnavailable) -> None:
        self.unenforced_total += 1
        self._unenforced_since_log += 1
        moment = time.monotonic()
        if moment - self._last_log >= FAIL_OPEN_LOG_SECONDS:
            logger.warning(
                "rate limits and quotas unavailable (%s): %d request(s) admitted unchecked since last said",
                exc,
                self._unenforced_since_log,
            )
            self._last_log, self._unenforced_since_log = moment, 0

    def settle_soon(
        self, admission: Admission | None, *, tokens: int, cost_micro: int, outbox: Outbox | None = None
    ) -> None:
        """Schedule the settlement of ``admission`` (any admission, or none) together with the
        append of ``outbox``: one store round trip (never blocks, never raises)."""
        if admission is not None:
            admission.settled = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("settlement outside an event loop dropped; its reservations expire by themselves")
            if outbox is not None:
                outbox.on_failure()
            return
        task = loop.create_task(self.settle(admission, tokens=tokens, cost_micro=cost_micro, outbox=outbox))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(
        self,
        admission: Admission | None,
        *,
        tokens: int,
        cost_micro: int,
        now_ms: int | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        plan = admission.plan if admission is not None else None
        if plan is not None and not plan.needs_settlement:
            plan = None
        if plan is None and outbox is None:
            return
        admitted_ms = admission.admitted_ms if admission is not None else 0
        try:
            results = await self.store.settle(
                plan,
                admitted_ms=admitted_ms,
                tokens=tokens,
                cost_micro=cost_micro,
                now_ms=now_ms,
                outbox=outbox,
            )
        except (StoreUnavailable, StoreOverloaded) as exc:
            # The store has handed ``outbox`` to its ``on_failure`` unless it was appended.
            if plan is not None:
                logger.warning(
                    "settlement of %s failed, its reservations expire by themselves: %s", plan.request_id, exc
                )
            return
        except Exception:
            # A fault of ours past the store's Redis calls: logged once here rather than as a
            # task's unretrieved exception. The store's append already decided the event's fate.
            logger.exception("settlement failed unexpectedly; its reservations expire by themselves")
            return
        if plan is None:
            return
        for line, result in zip(plan.quotas, results, strict=True):
            if result.alert:
                self._on_alert(
                    QuotaAlertNotice(
                        quota=line.quota,
                        tenant_id=plan.tenant_id,
                        period=line.period,
                        spent_micro=result.spent,
                    )
                )

    async def drain(self) -> None:
        """Wait for scheduled settlements (shutdown and tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.drain()
        await self.store.aclose()
