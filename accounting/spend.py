"""Quota spend as the usage records tell it: the current period's spend of every cost quota,
rebuilt from ``UsageRecord`` (each record's cost rounded up to the micro-dollar, the rule of the
live counters), and written into the shared counters by ``reconcilequotas``.

Reconciling raises a counter to the records' total and never lowers it unless asked
(``exact``): a counter ahead of the records is normal for the records still queued in a gateway's
usage writer, while a counter behind them has lost data (Redis restarted without persistence,
a gateway crashed before settling)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import cast
from zoneinfo import ZoneInfo

import redis
from django.db.models import F, Sum, Value
from django.db.models.functions import Ceil

from accounting.models import UsageRecord
from quotas.budget import Period, PeriodName, current_period
from quotas.lua import RECONCILE
from quotas.models import CostQuota
from quotas.policy import quota_counter_key, quota_expire_at_ms


@dataclass(frozen=True, slots=True)
class RecordedSpend:
    quota: CostQuota
    tenant_id: int
    period: Period
    micro: int


def recorded_spend_micro(quota: CostQuota, period: Period) -> int:
    records = UsageRecord.objects.all()
    records = (
        records.filter(tenant_id=quota.tenant_id) if quota.tenant_id else records.filter(key_id=quota.key_id)
    )
    if period.start is not None and period.end is not None:
        records = records.filter(created_at__gte=period.start, created_at__lt=period.end)
    total = records.aggregate(total=Sum(Ceil(F("cost_usd") * Value(Decimal(1_000_000)))))["total"]
    return int(total or 0)


def recorded_spend(*, now: dt.datetime, tz: ZoneInfo) -> list[RecordedSpend]:
    """Every quota's spend in its period containing ``now``, from the usage records."""
    result = []
    for quota in CostQuota.objects.select_related("key").order_by("id"):
        tenant_id = quota.tenant_id or (quota.key.tenant_id if quota.key is not None else 0)
        period = current_period(cast(PeriodName, quota.period), now, tz)
        micro = recorded_spend_micro(quota, period)
        result.append(RecordedSpend(quota=quota, tenant_id=tenant_id, period=period, micro=micro))
    return result


@dataclass(frozen=True, slots=True)
class Reconciled:
    spend: RecordedSpend
    before: int
    after: int


def reconcile_redis(
    client: redis.Redis, spends: list[RecordedSpend], *, prefix: str, exact: bool
) -> list[Reconciled]:
    script = client.register_script(RECONCILE)
    results = []
    for spend in spends:
        key = quota_counter_key(
            prefix, tenant_id=spend.tenant_id, quota_id=spend.quota.pk, period=spend.period
        )
        before = int(client.hget(key, "spent") or 0)
        after = int(
            script(keys=[key], args=[spend.micro, "1" if exact else "0", quota_expire_at_ms(spend.period)])
        )
        results.append(Reconciled(spend=spend, before=before, after=after))
    return results
