"""Quota spend rebuilt from the usage records, and ``reconcilequotas`` writing it into Redis
(real Redis): a counter behind the records is raised, one ahead is kept unless ``--exact``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.core.management import call_command

from accounting.models import UsageRecord
from accounting.spend import recorded_spend
from quotas.budget import current_period
from quotas.models import CostQuota
from quotas.policy import quota_counter_key
from quotas.services import key_issue, tenant_create

pytestmark = pytest.mark.django_db

NOW = dt.datetime.now(dt.UTC)


def record(n: int, *, tenant, key, cost: str, at: dt.datetime) -> None:
    UsageRecord.objects.create(
        request_id=f"req_{n}",
        created_at=at,
        tenant=tenant,
        tenant_name=tenant.name,
        key=key,
        key_prefix=key.prefix,
        model="m",
        provider="p",
        upstream_model="m",
        status=200,
        latency_ms=1.0,
        cost_usd=Decimal(cost),
    )


@pytest.fixture
def quotas():
    tenant = tenant_create(name="acme")
    other = tenant_create(name="other")
    key, _ = key_issue(tenant=tenant, name="a")
    second, _ = key_issue(tenant=tenant, name="b")
    stranger, _ = key_issue(tenant=other, name="c")
    monthly = CostQuota.objects.create(tenant=tenant, period="month", limit_usd=Decimal("10"))
    daily_key = CostQuota.objects.create(key=key, period="day", limit_usd=Decimal("1"), hard=False)
    start = current_period("month", NOW, dt.UTC).start
    assert start is not None
    record(1, tenant=tenant, key=key, cost="0.0000015", at=NOW)  # 1.5 micro-dollars: counts as 2
    record(2, tenant=tenant, key=second, cost="0.25", at=NOW)
    record(3, tenant=tenant, key=key, cost="4", at=start - dt.timedelta(seconds=1))  # last month
    record(4, tenant=other, key=stranger, cost="7", at=NOW)
    return tenant, key, monthly, daily_key


def test_recorded_spend_per_quota_and_period(quotas):
    tenant, _, monthly, daily_key = quotas

    spends = {s.quota.pk: s for s in recorded_spend(now=NOW, tz=dt.UTC)}

    assert spends[monthly.pk].micro == 250_002
    assert spends[monthly.pk].period == current_period("month", NOW, dt.UTC)
    assert spends[daily_key.pk].micro == 2
    assert spends[daily_key.pk].tenant_id == tenant.pk


def test_reconcilequotas_raises_a_lagging_counter_and_keeps_one_ahead(quotas, settings, redis_prefix):
    tenant, _, monthly, daily_key = quotas
    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    client = redis.Redis.from_url(settings.REDIS_URL)
    month_key = quota_counter_key(
        redis_prefix, tenant_id=tenant.pk, quota_id=monthly.pk, period=current_period("month", NOW, dt.UTC)
    )
    day_key = quota_counter_key(
        redis_prefix, tenant_id=tenant.pk, quota_id=daily_key.pk, period=current_period("day", NOW, dt.UTC)
    )
    client.hset(month_key, mapping={"spent": 100, "reserved": 30})
    client.hset(day_key, mapping={"spent": 50})
    try:
        out = StringIO()
        call_command("reconcilequotas", stdout=out)
        assert [int(v) for v in client.hmget(month_key, "spent", "reserved")] == [250_002, 30]
        assert int(client.hget(day_key, "spent")) == 50
        assert "records $0.250002, counter $0.0001 -> $0.250002 (raised)" in out.getvalue()
        assert "records $0.000002, counter $0.00005 -> $0.00005 (unchanged)" in out.getvalue()
        assert client.pttl(month_key) > 0

        call_command("reconcilequotas", "--exact", stdout=StringIO())
        assert int(client.hget(day_key, "spent")) == 2
    finally:
        client.delete(month_key, day_key)
        client.close()


def test_reconcilequotas_without_redis_says_there_is_nothing_to_do(quotas, settings):
    settings.REDIS_URL = ""
    out = StringIO()

    call_command("reconcilequotas", stdout=out)

    assert out.getvalue().startswith("REDIS_URL is not set: nothing to reconcile")
