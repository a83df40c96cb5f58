"""Which limits apply to a request: the registry's limit policies (loaded from the database
with the keys, so admission needs no query) and the plan of lines built from them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from quotas.access import compile_patterns
from quotas.authentication.keys import hash_key
from quotas.authentication.registry import load_registry
from quotas.errors import AuthenticationError
from quotas.models import ApiKey, CostQuota, RateTier, TierModelLimit
from quotas.policy import LimitPolicy, Limits, ModelLimits, QuotaPolicy, TierPolicy, build_plan
from quotas.services import key_issue, key_rotate, tenant_create

NOW = dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)


def plan_for(policy: LimitPolicy, model: str = "gpt-4o", *, tokens: int = 50, cost: int = 70):
    return build_plan(
        policy,
        prefix="gw:",
        request_id="req_1",
        model=model,
        tokens=tokens,
        cost_micro=cost,
        lease_ms=660_000,
        now=NOW,
        tz=dt.UTC,
    )


STANDARD = TierPolicy(
    name="standard",
    algorithm="sliding_window",
    limits=Limits(
        requests_per_minute=600, tokens_per_minute=200_000, requests_per_day=100_000, max_parallel=20
    ),
    models=(
        ModelLimits("gpt-4o*", compile_patterns(["gpt-4o*"])[0], Limits(requests_per_minute=100)),
        ModelLimits("gpt-*", compile_patterns(["gpt-*"])[0], Limits(requests_per_minute=5)),
    ),
)


def test_a_key_inheriting_the_tenant_tier_is_counted_per_tenant_only():
    plan = plan_for(LimitPolicy(tenant_id=4, key_id=9, tenant_tier=STANDARD))

    assert [(r.key, r.dimension, r.limit, r.cost) for r in plan.rates] == [
        ("gw:{t4}:t:rpm:s", "requests", 600, 1),
        ("gw:{t4}:t:tpm:s", "tokens", 200_000, 50),
        ("gw:{t4}:t:rpd:s", "requests", 100_000, 1),
        # The first matching per-model line only, counted for this model.
        ("gw:{t4}:t:m:gpt-4o:rpm:s", "requests", 100, 1),
    ]
    assert [(p.key, p.limit) for p in plan.parallel] == [("gw:{t4}:t:par", 20)]
    assert plan.rates[3].label == "requests per minute (tenant, model gpt-4o)"
    assert plan.needs_settlement


def test_a_key_with_its_own_tier_is_counted_per_key_and_per_tenant():
    own = TierPolicy(name="burst", algorithm="token_bucket", limits=Limits(requests_per_day=10))
    plan = plan_for(LimitPolicy(tenant_id=4, key_id=9, key_tier=own, tenant_tier=STANDARD), model="o1")

    assert [r.key for r in plan.rates] == [
        "gw:{t4}:k9:rpd:t",
        "gw:{t4}:t:rpm:s",
        "gw:{t4}:t:tpm:s",
        "gw:{t4}:t:rpd:s",
    ]
    assert [r.scope for r in plan.rates] == ["key", "tenant", "tenant", "tenant"]


def test_quota_lines_reserve_only_for_hard_quotas():
    hard = QuotaPolicy(id=1, owner="tenant", period="month", limit_usd=Decimal("100.00"), hard=True)
    soft = QuotaPolicy(
        id=2, owner="key", period="lifetime", limit_usd=Decimal("5"), hard=False, alert_at=Decimal("0.8")
    )
    plan = plan_for(LimitPolicy(tenant_id=4, key_id=9, quotas=(hard, soft)))

    first, second = plan.quotas
    assert (first.key, first.leases_key, first.limit_micro, first.amount_micro) == (
        "gw:{t4}:q1:m2026-11",
        "gw:{t4}:q1:m2026-11:leases",
        100_000_000,
        70,
    )
    assert first.expire_at_ms == int(dt.datetime(2027, 1, 5, tzinfo=dt.UTC).timestamp() * 1000)
    assert (second.key, second.amount_micro, second.threshold_micro, second.expire_at_ms) == (
        "gw:{t4}:q2:lifetime",
        0,
        4_000_000,
        0,
    )
    assert plan.rates == () and plan.parallel == ()


def test_no_tier_and_no_quota_is_empty():
    policy = LimitPolicy(tenant_id=4, key_id=9)

    assert policy.empty
    assert not plan_for(policy).needs_settlement


@pytest.mark.django_db
def test_load_registry_builds_tiers_per_model_lines_and_quotas():
    standard = RateTier.objects.create(name="standard", algorithm="leaky_bucket", requests_per_minute=60)
    TierModelLimit.objects.create(tier=standard, position=1, pattern="o1*", tokens_per_day=1_000)
    TierModelLimit.objects.create(tier=standard, position=0, pattern="gpt-4o*", max_parallel=2)
    burst = RateTier.objects.create(name="burst", max_parallel=3)
    tenant = tenant_create(name="acme", tier_name="standard")
    _, plain_raw = key_issue(tenant=tenant, name="plain")
    own, own_raw = key_issue(tenant=tenant, name="own", tier=burst)
    tenant_quota = CostQuota.objects.create(tenant=tenant, period="week", limit_usd=Decimal("10"), hard=True)
    key_quota = CostQuota.objects.create(key=own, period="day", limit_usd=Decimal("1"), hard=False)

    registry = load_registry()

    plain_limits = registry.authenticate(plain_raw).limits
    own_limits = registry.authenticate(own_raw).limits
    assert plain_limits.key_tier is None
    assert plain_limits.tenant_tier is not None
    assert plain_limits.tenant_tier.algorithm == "leaky_bucket"
    assert [m.pattern for m in plain_limits.tenant_tier.models] == ["gpt-4o*", "o1*"]
    assert plain_limits.tenant_tier.model_limits("gpt-4o-mini") == Limits(max_parallel=2)
    assert [q.id for q in plain_limits.quotas] == [tenant_quota.pk]
    assert own_limits.key_tier is not None and own_limits.key_tier.name == "burst"
    assert [(q.id, q.owner, q.hard) for q in own_limits.quotas] == [
        (tenant_quota.pk, "tenant", True),
        (key_quota.pk, "key", False),
    ]


@pytest.mark.django_db
def test_a_rotated_key_answers_to_both_secrets_until_the_grace_ends():
    tenant = tenant_create(name="acme")
    key, old_raw = key_issue(tenant=tenant, name="ci")
    new_raw = key_rotate(key, grace=dt.timedelta(hours=2))

    registry = load_registry()

    new_context = registry.authenticate(new_raw)
    old_context = registry.authenticate(old_raw)
    assert new_context.key_id == old_context.key_id == key.pk
    assert new_context.expires_at is None
    assert old_context.expires_at == pytest.approx(
        (timezone.now() + dt.timedelta(hours=2)).timestamp(), abs=5
    )
    assert dataclasses.replace(old_context, expires_at=None) == new_context
    with pytest.raises(AuthenticationError, match="expired"):
        registry.authenticate(old_raw, now=old_context.expires_at)
    stored = ApiKey.objects.get(pk=key.pk)
    assert (stored.key_hash, stored.previous_key_hash) == (hash_key(new_raw), hash_key(old_raw))


@pytest.mark.django_db
def test_grace_never_outlives_the_key_and_zero_grace_ends_the_old_secret_at_once():
    tenant = tenant_create(name="acme")
    expires = timezone.now() + dt.timedelta(minutes=30)
    key, first = key_issue(tenant=tenant, name="ci", expires_at=expires)
    second = key_rotate(key, grace=dt.timedelta(hours=5))
    assert load_registry().authenticate(first).expires_at == expires.timestamp()

    third = key_rotate(key)

    registry = load_registry()
    assert registry.authenticate(third).key_id == key.pk
    for stale in (first, second):
        with pytest.raises(AuthenticationError, match="Incorrect API key"):
            registry.authenticate(stale)
