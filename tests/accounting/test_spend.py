"""Quota spend rebuilt from the usage records, and ``reconcilequotas`` writing it into Redis
(real Redis): a counter behind the records is raised, one ahead is kept unless ``--exact``;
reservations whose lease ended or was lost are released, live ones kept."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from io import StringIO

import pytest
import redis
from django.core.management import call_command

from accounting.models import UsageRecord
from accounting.spend import recorded_spend
from accounting.tasks import reconcile_quotas
from quotas.budget import current_period
from quotas.models import CostQuota
from quotas.policy import quota_counter_key, quota_leases_key
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


def redis_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def counter_keys(tenant, monthly, daily_key, prefix: str) -> tuple[str, str]:
    month = current_period("month", NOW, dt.UTC)
    day = current_period("day", NOW, dt.UTC)
    return (
        quota_counter_key(prefix, tenant_id=tenant.pk, quota_id=monthly.pk, period=month),
        quota_counter_key(prefix, tenant_id=tenant.pk, quota_id=daily_key.pk, period=day),
    )


def test_reconcilequotas_raises_a_lagging_counter_and_keeps_one_ahead(quotas, settings, redis_prefix):
    tenant, _, monthly, daily_key = quotas
    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    client = redis.Redis.from_url(settings.REDIS_URL)
    month_key, day_key = counter_keys(tenant, monthly, daily_key, redis_prefix)
    # a reservation in flight, its lease live for ten more minutes
    client.hset(month_key, mapping={"spent": 100, "reserved": 30, "r:live": 30})
    client.zadd(quota_leases_key(month_key), {"live": redis_ms(client) + 600_000})
    client.hset(day_key, mapping={"spent": 50})
    try:
        out = StringIO()
        call_command("reconcilequotas", stdout=out)
        assert [int(v) for v in client.hmget(month_key, "spent", "reserved", "r:live")] == [250_002, 30, 30]
        assert client.hgetall(day_key) == {b"spent": b"50"}
        lines = out.getvalue().splitlines()
        assert len(lines) == 2
        assert lines[0].endswith("records $0.250002, counter $0.0001 -> $0.250002 (raised)")
        assert lines[1].endswith("records $0.000002, counter $0.00005 -> $0.00005 (unchanged)")
        assert client.pttl(month_key) > 0

        call_command("reconcilequotas", "--exact", stdout=StringIO())
        assert int(client.hget(day_key, "spent")) == 2
    finally:
        client.delete(month_key, day_key)
        client.close()


def test_reconcilequotas_releases_orphaned_reservations_and_says_so(quotas, settings, redis_prefix):
    """A crashed gateway's reservations: one whose lease ended, one whose lease was lost with
    its leases set. Both are released and ``reserved`` keeps only the live one; the Celery task
    running the command does the same."""
    tenant, _, monthly, daily_key = quotas
    settings.GATEWAY_REDIS_PREFIX = redis_prefix
    client = redis.Redis.from_url(settings.REDIS_URL)
    month_key, day_key = counter_keys(tenant, monthly, daily_key, redis_prefix)
    leases = quota_leases_key(month_key)
    now = redis_ms(client)
    client.hset(
        month_key, mapping={"spent": 250_002, "reserved": 930, "r:live": 30, "r:ended": 400, "r:lost": 500}
    )
    client.zadd(leases, {"live": now + 600_000, "ended": now - 1_000})
    try:
        out = StringIO()
        call_command("reconcilequotas", stdout=out)

        assert client.hgetall(month_key) == {b"spent": b"250002", b"reserved": b"30", b"r:live": b"30"}
        assert client.zrange(leases, 0, -1) == [b"live"]
        assert client.pexpiretime(leases) == client.pexpiretime(month_key) > now
        month_line = out.getvalue().splitlines()[0]
        assert month_line.endswith(
            "records $0.250002, counter $0.250002 -> $0.250002 (unchanged); "
            "released 2 orphaned reservation(s), reserved $0.00093 -> $0.00003"
        )

        again = StringIO()
        call_command("reconcilequotas", stdout=again)
        assert "released" not in again.getvalue()
        assert client.hgetall(month_key) == {b"spent": b"250002", b"reserved": b"30", b"r:live": b"30"}

        client.hset(month_key, mapping={"reserved": 330, "r:gone": 300})
        reconcile_quotas.delay()
        assert client.hgetall(month_key) == {b"spent": b"250002", b"reserved": b"30", b"r:live": b"30"}
    finally:
        client.delete(month_key, day_key, leases)
        client.close()


def test_reconcilequotas_without_redis_says_there_is_nothing_to_do(quotas, settings):
    settings.REDIS_URL = ""
    out = StringIO()

    call_command("reconcilequotas", stdout=out)

    assert out.getvalue().startswith("REDIS_URL is not set: nothing to reconcile")
