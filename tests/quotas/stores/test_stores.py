"""The two limit stores against each other: the Redis script (real Redis) and the in-process
store (the pure maths) are fed the same requests at the same injected times and must decide
exactly alike: rate limits of every algorithm at window edges, settlement, parallel slots,
hard-quota reservations, lease expiry, alerts once per period, and period rollover."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from quotas.algorithms import ALGORITHMS, MINUTE_MS
from quotas.budget import current_period
from quotas.errors import LimiterUnavailable, QuotaExceeded, RateLimited
from quotas.limiter import Limiter, QuotaAlertNotice
from quotas.policy import LimitPolicy, Limits, Plan, QuotaPolicy, TierPolicy, build_plan
from quotas.stores.base import LineState, QuotaState, StoreUnavailable, Verdict
from quotas.stores.local import LocalStore
from quotas.stores.shared import RedisStore, create_client
from tests.conftest import redis_url
from tests.e2e.conftest import closed_port

UTC = dt.UTC
T0_MS = 1_800_000_000_000 - (1_800_000_000_000 % MINUTE_MS)  # a minute boundary (Jan 15 2027)
LEASE_MS = 5_000


@pytest.fixture
async def stores(redis_prefix):
    """Both stores; the Redis one writes under this test's prefix (deleted afterwards)."""
    client = create_client(redis_url(), timeout=2)
    yield {"local": LocalStore(), "redis": RedisStore(client)}
    await client.aclose()


def moment(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC)


def plan(policy: LimitPolicy, prefix: str, rid: str, *, at_ms: int, tokens: int = 1, cost: int = 0) -> Plan:
    return build_plan(
        policy,
        prefix=prefix,
        request_id=rid,
        model="gpt-4o-mini",
        tokens=tokens,
        cost_micro=cost,
        lease_ms=LEASE_MS,
        now=moment(at_ms),
        tz=dt.UTC,
    )


def summary(verdict: Verdict) -> tuple[object, ...]:
    return (verdict.refusal, verdict.rates, verdict.quotas)


async def both(stores, make_plan, *, at_ms: int) -> Verdict:
    """Evaluate on both stores; they must agree. Returns the verdict."""
    local = await stores["local"].evaluate(make_plan(), now_ms=at_ms)
    shared = await stores["redis"].evaluate(make_plan(), now_ms=at_ms)
    assert summary(local) == summary(shared)
    assert shared.now_ms == at_ms
    return shared


async def settle_both(stores, the_plan: Plan, *, admitted_ms: int, tokens: int, cost: int, at_ms: int):
    local = await stores["local"].settle(
        the_plan, admitted_ms=admitted_ms, tokens=tokens, cost_micro=cost, now_ms=at_ms
    )
    shared = await stores["redis"].settle(
        the_plan, admitted_ms=admitted_ms, tokens=tokens, cost_micro=cost, now_ms=at_ms
    )
    assert local == shared
    return shared


def tier_policy(algorithm, **limits) -> LimitPolicy:
    tier = TierPolicy(name="t", algorithm=algorithm, limits=Limits(**limits))
    return LimitPolicy(tenant_id=7, key_id=70, tenant_tier=tier)


# The time line each algorithm is driven through: a burst inside one window, the last
# millisecond of the window, the first of the next, and a little later.
TIMELINE = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, MINUTE_MS - 1, MINUTE_MS, MINUTE_MS + 6_000]
BURST_ADMITTED = {"fixed_window": 10, "sliding_window": 10, "token_bucket": 10, "leaky_bucket": 1}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_both_stores_decide_alike_through_window_edges(stores, redis_prefix, algorithm):
    policy = tier_policy(algorithm, requests_per_minute=10, tokens_per_minute=1_000)
    decisions = []
    for n, offset in enumerate(TIMELINE):
        at = T0_MS + offset
        verdict = await both(
            stores, lambda n=n, at=at: plan(policy, redis_prefix, f"r{n}", at_ms=at, tokens=60), at_ms=at
        )
        decisions.append(verdict.refusal is None)

    assert sum(decisions[:12]) == BURST_ADMITTED[algorithm]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_settlement_replaces_the_token_reservation(stores, redis_prefix, algorithm):
    policy = tier_policy(algorithm, tokens_per_minute=6_000)
    first = plan(policy, redis_prefix, "a", at_ms=T0_MS, tokens=5_000)
    assert (await both(stores, lambda: first, at_ms=T0_MS)).refusal is None
    refused = await both(
        stores, lambda: plan(policy, redis_prefix, "b", at_ms=T0_MS + 1, tokens=5_000), at_ms=T0_MS + 1
    )
    assert refused.refusal is not None and refused.refusal.kind == "rate"

    # The first request used 500 tokens, not 5,000: the same second request now fits.
    await settle_both(stores, first, admitted_ms=T0_MS, tokens=500, cost=0, at_ms=T0_MS + 2)
    after = await both(
        stores, lambda: plan(policy, redis_prefix, "c", at_ms=T0_MS + 3, tokens=5_000), at_ms=T0_MS + 3
    )
    if algorithm == "leaky_bucket":
        # 100 tokens of burst: a 5,000-token request only fits an empty meter. Settled, the meter
        # holds 499.7 tokens, empty in 4,998 ms at 0.1 a millisecond (unsettled: 4,999.7, 49,997).
        assert after.refusal is not None and after.refusal.kind == "rate"
        assert (after.refusal.retry_ms, after.rates[0]) == (4_998, LineState(0, 4_998))
    else:
        assert after.refusal is None


async def test_request_larger_than_a_limit_is_refused_as_never_fitting(stores, redis_prefix):
    policy = tier_policy("sliding_window", requests_per_minute=10, tokens_per_minute=1_000)
    verdict = await both(
        stores, lambda: plan(policy, redis_prefix, "big", at_ms=T0_MS, tokens=1_001), at_ms=T0_MS
    )

    assert verdict.refusal is not None
    assert (verdict.refusal.kind, verdict.refusal.index, verdict.refusal.retry_ms) == ("too_large", 1, None)


async def test_parallel_slots_are_released_by_settlement_or_by_lease_expiry(stores, redis_prefix):
    policy = tier_policy("fixed_window", max_parallel=2)
    plans = {rid: plan(policy, redis_prefix, rid, at_ms=T0_MS) for rid in ("a", "b", "c", "d")}
    assert (await both(stores, lambda: plans["a"], at_ms=T0_MS)).refusal is None
    assert (await both(stores, lambda: plans["b"], at_ms=T0_MS)).refusal is None
    third = await both(stores, lambda: plans["c"], at_ms=T0_MS + 1)
    assert third.refusal is not None
    assert (third.refusal.kind, third.refusal.retry_ms) == ("parallel", 1_000)

    await settle_both(stores, plans["a"], admitted_ms=T0_MS, tokens=1, cost=0, at_ms=T0_MS + 2)
    assert (await both(stores, lambda: plans["c"], at_ms=T0_MS + 3)).refusal is None
    assert (await both(stores, lambda: plans["d"], at_ms=T0_MS + 4)).refusal is not None
    # "b" never settles (its process crashed): its slot frees itself when the lease ends.
    assert (await both(stores, lambda: plans["d"], at_ms=T0_MS + LEASE_MS - 1)).refusal is not None
    assert (await both(stores, lambda: plans["d"], at_ms=T0_MS + LEASE_MS)).refusal is None


def quota_policy(**changes) -> LimitPolicy:
    quota = QuotaPolicy(
        id=3, owner="tenant", period="day", limit_usd=Decimal("0.001"), hard=True, alert_at=Decimal("0.5")
    )
    return LimitPolicy(tenant_id=7, key_id=70, quotas=(dataclasses.replace(quota, **changes),))


async def test_hard_quota_reserves_the_maximum_and_settles_the_actual_cost(stores, redis_prefix):
    policy = quota_policy()  # $0.001 = 1,000 micro-dollars
    plans = [plan(policy, redis_prefix, f"r{i}", at_ms=T0_MS, cost=300) for i in range(5)]
    verdicts = [await both(stores, lambda p=p: p, at_ms=T0_MS) for p in plans[:4]]

    assert [v.refusal is None for v in verdicts] == [True, True, True, False]
    assert verdicts[3].refusal.kind == "quota"
    assert verdicts[3].quotas[0].spent == 0 and verdicts[3].quotas[0].reserved == 900

    results = [
        await settle_both(stores, p, admitted_ms=T0_MS, tokens=10, cost=120, at_ms=T0_MS + 1)
        for p in plans[:3]
    ]
    # 360 of 1,000 spent; the alert (at 500) has not fired.
    assert [r[0].spent for r in results] == [120, 240, 360]
    assert not any(r[0].alert for r in results)
    again = await both(stores, lambda: plans[3], at_ms=T0_MS + 2)
    assert again.refusal is None and again.quotas[0].spent == 360


async def test_reservation_of_a_crashed_process_expires(stores, redis_prefix):
    policy = quota_policy()
    crashed = plan(policy, redis_prefix, "crashed", at_ms=T0_MS, cost=900)
    assert (await both(stores, lambda: crashed, at_ms=T0_MS)).refusal is None
    blocked = await both(
        stores, lambda: plan(policy, redis_prefix, "next", at_ms=T0_MS, cost=200), at_ms=T0_MS + 1
    )
    assert blocked.refusal is not None and blocked.quotas[0].reserved == 900

    freed = await both(
        stores, lambda: plan(policy, redis_prefix, "next", at_ms=T0_MS, cost=200), at_ms=T0_MS + LEASE_MS
    )
    assert freed.refusal is None and freed.quotas[0].reserved == 0


async def test_a_lease_ends_by_itself_with_no_reservation_after_it(stores, redis_prefix):
    """Nothing refreshes the quota's leases after the crashed reservation: once Redis's own clock
    has passed the lease (its keys expire by it), a mere read at the deadline releases it."""
    crashed = dataclasses.replace(
        plan(quota_policy(), redis_prefix, "crashed", at_ms=T0_MS, cost=900), lease_ms=200
    )
    assert (await both(stores, lambda: crashed, at_ms=T0_MS)).refusal is None
    await asyncio.sleep(0.4)  # time passing: past the 200 ms lease by the wall clock (Redis's too)

    for store in stores.values():
        assert await store.quota_states(crashed.quotas, now_ms=T0_MS + 199) == (QuotaState(0, 900),)
        assert await store.quota_states(crashed.quotas, now_ms=T0_MS + 200) == (QuotaState(0, 0),)
    later = await both(
        stores, lambda: plan(quota_policy(), redis_prefix, "next", at_ms=T0_MS, cost=1_000), at_ms=T0_MS + 201
    )
    assert later.refusal is None and later.quotas[0] == QuotaState(0, 0)


async def test_alert_fires_once_per_period_and_the_next_period_starts_empty(stores, redis_prefix):
    policy = quota_policy(hard=False)  # soft: never refuses, still counts and alerts
    end_of_day = T0_MS + (86_400_000 - T0_MS % 86_400_000) - 1  # 23:59:59.999 UTC
    fired = []
    for i in range(4):
        p = plan(policy, redis_prefix, f"d1-{i}", at_ms=end_of_day, cost=400)
        assert (await both(stores, lambda p=p: p, at_ms=end_of_day)).refusal is None
        fired.append(
            await settle_both(stores, p, admitted_ms=end_of_day, tokens=1, cost=400, at_ms=end_of_day)
        )
    assert [(r[0].spent, r[0].alert) for r in fired] == [
        (400, False),
        (800, True),
        (1_200, False),
        (1_600, False),
    ]

    next_day = end_of_day + 1
    p = plan(policy, redis_prefix, "d2-0", at_ms=next_day, cost=600)
    assert p.quotas[0].period.key != plan(policy, redis_prefix, "x", at_ms=end_of_day).quotas[0].period.key
    fresh = await both(stores, lambda: p, at_ms=next_day)
    assert fresh.quotas[0].spent == 0
    assert (await settle_both(stores, p, admitted_ms=next_day, tokens=1, cost=600, at_ms=next_day))[0].alert


async def test_period_counter_expires_after_its_period(stores, redis_prefix):
    policy = quota_policy()
    p = plan(policy, redis_prefix, "a", at_ms=T0_MS, cost=100)
    await both(stores, lambda: p, at_ms=T0_MS)
    client = aioredis.Redis.from_url(redis_url())
    try:
        expire_at = await client.pexpiretime(p.quotas[0].key)
    finally:
        await client.aclose()
    period = current_period("day", moment(T0_MS), dt.UTC)
    assert period.end is not None
    assert expire_at == int((period.end + dt.timedelta(days=35)).timestamp() * 1000)


# --- the Limiter: headers, refusal errors, failing open or closed ---------------------------


def limiter(store, alerts: list[QuotaAlertNotice] | None = None, *, fail_open: bool = True) -> Limiter:
    return Limiter(store, fail_open=fail_open, on_alert=(alerts if alerts is not None else []).append)


async def test_admission_headers_and_rate_limit_refusal(redis_prefix):
    policy = tier_policy("fixed_window", requests_per_minute=2, tokens_per_minute=1_000)
    gate = limiter(LocalStore())
    first = await gate.admit(plan(policy, redis_prefix, "a", at_ms=T0_MS, tokens=300), now_ms=T0_MS + 15_000)

    assert first.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "700",
        "x-ratelimit-reset-tokens": "45s",
    }
    await gate.admit(plan(policy, redis_prefix, "b", at_ms=T0_MS, tokens=300), now_ms=T0_MS + 15_000)
    with pytest.raises(RateLimited) as caught:
        await gate.admit(plan(policy, redis_prefix, "c", at_ms=T0_MS, tokens=300), now_ms=T0_MS + 15_500)
    error = caught.value
    assert (error.status, error.error_type, error.code) == (429, "requests", "rate_limit_exceeded")
    assert error.headers["retry-after"] == "45"
    assert error.headers["retry-after-ms"] == "44500"
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.headers["x-ratelimit-reset-requests"] == "44.5s"
    assert error.message == (
        "Rate limit reached for requests per minute (tenant): limit 2, remaining 0, requested 1. "
        "Please try again in 44.5s."
    )


async def test_quota_states_show_live_reservations_and_release_expired_ones(stores, redis_prefix):
    policy = quota_policy()
    crashed = plan(policy, redis_prefix, "crashed", at_ms=T0_MS, cost=300)
    live = plan(policy, redis_prefix, "live", at_ms=T0_MS, cost=200)
    assert (await both(stores, lambda: crashed, at_ms=T0_MS)).refusal is None
    assert (await both(stores, lambda: live, at_ms=T0_MS + 1_000)).refusal is None
    await settle_both(stores, live, admitted_ms=T0_MS + 1_000, tokens=1, cost=150, at_ms=T0_MS + 2_000)
    again = plan(policy, redis_prefix, "again", at_ms=T0_MS, cost=100)
    assert (await both(stores, lambda: again, at_ms=T0_MS + 3_000)).refusal is None
    for store in stores.values():
        assert await store.quota_states(crashed.quotas, now_ms=T0_MS + LEASE_MS - 1) == (
            QuotaState(150, 400),
        )
        # the crashed reservation's lease has ended: it is released by the read, not only shown less
        assert await store.quota_states(crashed.quotas, now_ms=T0_MS + LEASE_MS) == (QuotaState(150, 100),)
        assert await store.quota_states(crashed.quotas, now_ms=T0_MS + 3_000 + LEASE_MS) == (
            QuotaState(150, 0),
        )
        assert await store.quota_states((), now_ms=T0_MS) == ()


async def test_quota_refusal_is_insufficient_quota_until_the_period_ends(redis_prefix):
    gate = limiter(LocalStore())
    policy = quota_policy()
    at = T0_MS - T0_MS % 86_400_000 + 3_600_000  # 01:00 UTC
    await gate.admit(plan(policy, redis_prefix, "a", at_ms=at, cost=900), now_ms=at)
    admission = await gate.admit(plan(policy, redis_prefix, "b", at_ms=at, cost=50), now_ms=at)
    assert admission.headers == {}

    with pytest.raises(QuotaExceeded) as caught:
        await gate.admit(plan(policy, redis_prefix, "c", at_ms=at, cost=100), now_ms=at)
    error = caught.value
    assert (error.status, error.error_type, error.code) == (429, "insufficient_quota", "insufficient_quota")
    # 900 + 50 are only reserved: they may settle for less, so try again in a second.
    assert error.headers == {"retry-after": "1", "retry-after-ms": "1000"}

    await gate.settle(admission, tokens=1, cost_micro=50, now_ms=at)
    with pytest.raises(QuotaExceeded) as caught:
        await gate.admit(plan(policy, redis_prefix, "d", at_ms=at, cost=1_000), now_ms=at)
    # Spent alone leaves no room for it: wait for the next day (23 hours).
    assert caught.value.headers["retry-after"] == str(23 * 3600)


async def test_unreachable_redis_fails_open_or_closed():
    dead = RedisStore(create_client(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5))
    policy = tier_policy("fixed_window", requests_per_minute=1)
    the_plan = plan(policy, "gwtest:dead:", "a", at_ms=T0_MS)

    open_gate = limiter(dead)
    admissions = [await open_gate.admit(the_plan) for _ in range(3)]
    assert [a.plan for a in admissions] == [None, None, None]  # admitted, nothing to settle
    assert open_gate.unenforced_total == 3

    with pytest.raises(LimiterUnavailable) as caught:
        await limiter(dead, fail_open=False).admit(the_plan)
    assert (caught.value.status, caught.value.code, caught.value.headers) == (
        503,
        "rate_limiter_unavailable",
        {"retry-after": "1"},
    )
    with pytest.raises(StoreUnavailable):
        await dead.evaluate(the_plan)
    await dead.aclose()


async def test_failed_redis_calls_reach_the_error_hook_once_each():
    failures: list[str] = []
    clock = [100.0]
    dead = RedisStore(
        create_client(f"redis://127.0.0.1:{closed_port()}/0", timeout=0.5),
        retry_seconds=1.0,
        monotonic=lambda: clock[0],
        on_error=lambda: failures.append("failed"),
    )
    the_plan = plan(tier_policy("fixed_window", requests_per_minute=1), "gwtest:dead:", "a", at_ms=T0_MS)
    with pytest.raises(StoreUnavailable):
        await dead.evaluate(the_plan)
    assert failures == ["failed"]
    with pytest.raises(StoreUnavailable):  # within retry_seconds: Redis is not called at all
        await dead.evaluate(the_plan)
    assert failures == ["failed"]
    clock[0] += 1.5
    with pytest.raises(StoreUnavailable):
        await dead.evaluate(the_plan)
    assert failures == ["failed", "failed"]
    # Reading quota spend shares the same failure window.
    lines = plan(quota_policy(), "gwtest:dead:", "b", at_ms=T0_MS).quotas
    with pytest.raises(StoreUnavailable):
        await dead.quota_states(lines)
    assert failures == ["failed", "failed"]
    clock[0] += 1.5
    with pytest.raises(StoreUnavailable):
        await dead.quota_states(lines)
    assert failures == ["failed", "failed", "failed"]
    await dead.aclose()


async def test_more_concurrent_calls_than_connections_wait_for_one_and_are_all_decided(redis_prefix):
    """Past its connections a call waits for one: the requests of a busy gateway are all
    checked, none admitted unchecked (redis-py's default pool failed them past 100)."""
    client = create_client(redis_url(), timeout=2, max_connections=4)
    gate = limiter(RedisStore(client))
    policy = tier_policy("fixed_window", requests_per_minute=150)
    try:
        admissions = await asyncio.gather(
            *(gate.admit(plan(policy, redis_prefix, f"r{i}", at_ms=T0_MS), now_ms=T0_MS) for i in range(150))
        )
        assert all(admission.plan is not None for admission in admissions)
        assert gate.unenforced_total == 0
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 4
        with pytest.raises(RateLimited):  # the 151st of the minute: every one above was counted
            await gate.admit(plan(policy, redis_prefix, "r150", at_ms=T0_MS), now_ms=T0_MS)
    finally:
        await client.aclose()
