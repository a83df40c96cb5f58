"""What limits a key: its rate tiers and cost quotas as frozen values (built with the key
registry, so admission reads no database), and ``build_plan``, which turns them into the
concrete lines one request is checked against, each with its counter's Redis key.

Scopes: the key's own tier is counted per key; the tenant's tier is counted per tenant (all its
keys together). A key without its own tier inherits the tenant's, whose per-tenant count
already bounds every key, so no per-key lines are added for it. A tier's per-model lines add
limits for each model whose name matches the line's pattern (first matching line), counted per
model. Quotas of the tenant and of the key all apply."""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from quotas.algorithms import DAY_MS, MINUTE_MS, Algorithm
from quotas.budget import Period, PeriodName, alert_threshold, current_period, to_micro

Dimension = Literal["requests", "tokens"]


@dataclass(frozen=True, slots=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    requests_per_day: int | None = None
    tokens_per_day: int | None = None
    max_parallel: int | None = None


@dataclass(frozen=True, slots=True)
class ModelLimits:
    pattern: str
    matcher: re.Pattern[str]
    limits: Limits


@dataclass(frozen=True, slots=True)
class TierPolicy:
    name: str
    algorithm: Algorithm
    limits: Limits
    models: tuple[ModelLimits, ...] = ()

    def model_limits(self, model: str) -> Limits | None:
        for line in self.models:
            if line.matcher.match(model):
                return line.limits
        return None


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    id: int
    owner: Literal["tenant", "key"]
    period: PeriodName
    limit_usd: Decimal
    hard: bool
    alert_at: Decimal | None = None
    alert_webhook: str = ""
    limit_micro: int = field(init=False, compare=False)
    threshold_micro: int | None = field(init=False, compare=False)

    def __post_init__(self) -> None:
        # Computed once when the registry loads, not per request.
        object.__setattr__(self, "limit_micro", to_micro(self.limit_usd))
        object.__setattr__(self, "threshold_micro", alert_threshold(self.limit_micro, self.alert_at))


@dataclass(frozen=True, slots=True)
class LimitPolicy:
    tenant_id: int
    key_id: int
    # The name of the key-level counters: empty for a key (``k<key id>``), ``s<digest>`` for the
    # subject of a token (quotas.authentication.tokens), so each subject has its own limits.
    holder: str = ""
    key_tier: TierPolicy | None = None
    tenant_tier: TierPolicy | None = None
    quotas: tuple[QuotaPolicy, ...] = ()

    @property
    def empty(self) -> bool:
        return self.key_tier is None and self.tenant_tier is None and not self.quotas


NO_LIMITS = LimitPolicy(tenant_id=0, key_id=0)


@dataclass(frozen=True, slots=True)
class RateLine:
    key: str
    algorithm: Algorithm
    dimension: Dimension
    window_ms: int
    limit: int
    cost: int
    scope: str  # for messages: "key", "tenant", "key, model gpt-4o"

    @property
    def label(self) -> str:
        per = "minute" if self.window_ms == MINUTE_MS else "day"
        return f"{self.dimension} per {per} ({self.scope})"


@dataclass(frozen=True, slots=True)
class ParallelLine:
    key: str
    limit: int
    scope: str


@dataclass(frozen=True, slots=True)
class QuotaLine:
    quota: QuotaPolicy
    period: Period
    key: str
    leases_key: str
    limit_micro: int
    amount_micro: int  # the reservation; 0 for a soft quota (it never refuses)
    threshold_micro: int | None
    expire_at_ms: int  # when the period's counter may go (0: never)


@dataclass(frozen=True, slots=True)
class Plan:
    """Every line one request is checked against, and what it reserves."""

    request_id: str
    tenant_id: int
    tokens: int
    lease_ms: int
    rates: tuple[RateLine, ...]
    parallel: tuple[ParallelLine, ...]
    quotas: tuple[QuotaLine, ...]

    @property
    def needs_settlement(self) -> bool:
        return bool(self.parallel or self.quotas or any(r.dimension == "tokens" for r in self.rates))


# Counters of a period stay readable this long after it ends (inspection, late settlements).
_PERIOD_GRACE = dt.timedelta(days=35)


@functools.lru_cache(maxsize=8192)
def _line_templates(
    limits: Limits, base: str, algorithm: Algorithm, scope: str
) -> tuple[tuple[RateLine, ...], tuple[ParallelLine, ...]]:
    """The lines of one scope, with a token cost of 0 (memoised: keys and limits are the same
    for every request of a key and model)."""
    specs: tuple[tuple[str, int | None, Dimension, int], ...] = (
        ("rpm", limits.requests_per_minute, "requests", MINUTE_MS),
        ("tpm", limits.tokens_per_minute, "tokens", MINUTE_MS),
        ("rpd", limits.requests_per_day, "requests", DAY_MS),
        ("tpd", limits.tokens_per_day, "tokens", DAY_MS),
    )
    code = algorithm[0]  # a counter per algorithm: changing it never meets the old state's type
    rates = tuple(
        RateLine(
            key=f"{base}:{name}:{code}",
            algorithm=algorithm,
            dimension=dimension,
            window_ms=window_ms,
            limit=limit,
            cost=1 if dimension == "requests" else 0,
            scope=scope,
        )
        for name, limit, dimension, window_ms in specs
        if limit is not None
    )
    parallel = (
        (ParallelLine(key=f"{base}:par", limit=limits.max_parallel, scope=scope),)
        if limits.max_parallel is not None
        else ()
    )
    return rates, parallel


def _scope_lines(
    limits: Limits, *, base: str, algorithm: Algorithm, scope: str, tokens: int
) -> tuple[list[RateLine], list[ParallelLine]]:
    rates, parallel = _line_templates(limits, base, algorithm, scope)
    costed = [
        line
        if line.dimension == "requests"
        else RateLine(line.key, line.algorithm, "tokens", line.window_ms, line.limit, tokens, line.scope)
        for line in rates
    ]
    return costed, list(parallel)


def _tier_lines(
    tier: TierPolicy, *, base: str, scope: str, model: str, tokens: int
) -> tuple[list[RateLine], list[ParallelLine]]:
    rates, parallel = _scope_lines(
        tier.limits, base=base, algorithm=tier.algorithm, scope=scope, tokens=tokens
    )
    per_model = tier.model_limits(model)
    if per_model is not None:
        more_rates, more_parallel = _scope_lines(
            per_model,
            base=f"{base}:m:{model}",
            algorithm=tier.algorithm,
            scope=f"{scope}, model {model}",
            tokens=tokens,
        )
        rates += more_rates
        parallel += more_parallel
    return rates, parallel


def _tenant_base(prefix: str, tenant_id: int) -> str:
    return f"{prefix}{{t{tenant_id}}}"


def quota_counter_key(prefix: str, *, tenant_id: int, quota_id: int, period: Period) -> str:
    """The Redis hash of one quota's period: ``spent``, ``reserved``, ``alerted``, and one
    ``r:<request id>`` field per reservation in flight."""
    return f"{_tenant_base(prefix, tenant_id)}:q{quota_id}:{period.key}"


def quota_leases_key(counter_key: str) -> str:
    """The sorted set of a quota hash's reservations in flight: request id -> lease deadline."""
    return f"{counter_key}:leases"


def quota_expire_at_ms(period: Period) -> int:
    return 0 if period.end is None else int((period.end + _PERIOD_GRACE).timestamp() * 1000)


def _quota_line(
    quota: QuotaPolicy, *, prefix: str, tenant_id: int, now: dt.datetime, tz: ZoneInfo, cost_micro: int
) -> QuotaLine:
    period = current_period(quota.period, now, tz)
    key = quota_counter_key(prefix, tenant_id=tenant_id, quota_id=quota.id, period=period)
    limit = quota.limit_micro
    return QuotaLine(
        quota=quota,
        period=period,
        key=key,
        leases_key=quota_leases_key(key),
        limit_micro=limit,
        amount_micro=cost_micro if quota.hard else 0,
        threshold_micro=quota.threshold_micro,
        expire_at_ms=quota_expire_at_ms(period),
    )


def quota_line(
    quota: QuotaPolicy, *, prefix: str, tenant_id: int, now: dt.datetime, tz: ZoneInfo
) -> QuotaLine:
    """The line of one quota's current period, reserving nothing (to read its state)."""
    return _quota_line(quota, prefix=prefix, tenant_id=tenant_id, now=now, tz=tz, cost_micro=0)


def build_plan(
    policy: LimitPolicy,
    *,
    prefix: str,
    request_id: str,
    model: str,
    tokens: int,
    cost_micro: int,
    lease_ms: int,
    now: dt.datetime,
    tz: ZoneInfo,
) -> Plan:
    """The lines for one request to ``model`` that reserves ``tokens`` (rate limits) and at
    most ``cost_micro`` (hard quotas). All counters of a tenant share one Redis hash tag."""
    base = _tenant_base(prefix, policy.tenant_id)
    rates: list[RateLine] = []
    parallel: list[ParallelLine] = []
    if policy.key_tier is not None:
        more_rates, more_parallel = _tier_lines(
            policy.key_tier,
            base=f"{base}:{policy.holder or f'k{policy.key_id}'}",
            scope="key",
            model=model,
            tokens=tokens,
        )
        rates += more_rates
        parallel += more_parallel
    if policy.tenant_tier is not None:
        more_rates, more_parallel = _tier_lines(
            policy.tenant_tier, base=f"{base}:t", scope="tenant", model=model, tokens=tokens
        )
        rates += more_rates
        parallel += more_parallel
    quotas = tuple(
        _quota_line(q, prefix=prefix, tenant_id=policy.tenant_id, now=now, tz=tz, cost_micro=cost_micro)
        for q in policy.quotas
    )
    return Plan(
        request_id=request_id,
        tenant_id=policy.tenant_id,
        tokens=tokens,
        lease_ms=lease_ms,
        rates=tuple(rates),
        parallel=tuple(parallel),
        quotas=quotas,
    )
