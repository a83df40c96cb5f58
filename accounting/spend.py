"""Quota spend as the usage records tell it: the current period's spend of every cost quota,
rebuilt from the hourly rollups and the records not in them (each record's cost rounded up to
the micro-dollar, the rule of the live counters), and written into the shared counters by
``reconcilequotas``, which also releases the reservations a crashed gateway left behind.

Reconciling raises a counter to the records' total and never lowers it unless asked
(``exact``): a counter ahead of the records is normal for the records still queued in a gateway's
usage writer, while a counter behind them has lost data (Redis restarted without persistence,
a gateway crashed before settling)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

import redis
from django.db.models import Q, Sum

from accounting.models import UsageRecord, UsageRollup
from accounting.rollups import MICRO_COST, hour_ceil, hour_floor, watermark
from quotas.budget import Period, PeriodName, current_period
from quotas.models import CostQuota
from quotas.policy import quota_counter_key, quota_expire_at_ms, quota_leases_key
from quotas.stores.scripts import RECONCILE


@dataclass(frozen=True, slots=True)
class RecordedSpend:
    quota: CostQuota
    tenant_id: int
    period: Period
    micro: int


def recorded_spend_micro(quota: CostQuota, period: Period) -> int:
    """The quota's spend in ``period`` (micro-dollars, each record rounded up), read like the
    reports: the hourly rollups of the whole hours in the period, plus the records of its
    partial hours (a time zone off the hour) and those not rolled up yet. So the spend survives
    the purge of raw records (a lifetime quota) and never scans a period's raw records."""
    owner = {"tenant_id": quota.tenant_id} if quota.tenant_id else {"key_id": quota.key_id}
    records = UsageRecord.objects.filter(**owner).order_by()
    hours = UsageRollup.objects.filter(granularity="hour", **owner)
    mark = watermark()
    if mark is None:
        rolled, unrolled = records.none(), records
    else:
        rolled, unrolled = records.filter(ingested_at__lte=mark), records.filter(ingested_at__gt=mark)
    if period.start is not None and period.end is not None:
        whole_from, whole_to = hour_ceil(period.start), hour_floor(period.end)
        hours = hours.filter(bucket_start__gte=whole_from, bucket_start__lt=whole_to)
        edges = Q(created_at__gte=period.start, created_at__lt=whole_from) | Q(
            created_at__gte=whole_to, created_at__lt=period.end
        )
        rolled = rolled.filter(edges)
        unrolled = unrolled.filter(created_at__gte=period.start, created_at__lt=period.end)
    else:
        rolled = rolled.none()  # lifetime: every rolled-up record is in an hour
    total = hours.aggregate(total=Sum("cost_micro"))["total"] or 0
    for part in (rolled, unrolled):
        total += part.aggregate(total=Sum(MICRO_COST))["total"] or 0
    return int(total)


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
    """One quota's counter before and after: its settled spend, its reservations in flight, and
    how many orphaned reservations were released."""

    spend: RecordedSpend
    before: int
    after: int
    reserved_before: int
    reserved_after: int
    released: int


def reconcile_redis(
    client: redis.Redis, spends: list[RecordedSpend], *, prefix: str, exact: bool
) -> list[Reconciled]:
    """Write each quota's recorded spend into its current period's counter, and release the
    counter's orphaned reservations (those whose lease ended or was lost: a crashed gateway's),
    one atomic script call per quota, on Redis's clock."""
    script = client.register_script(RECONCILE)
    results = []
    for spend in spends:
        key = quota_counter_key(
            prefix, tenant_id=spend.tenant_id, quota_id=spend.quota.pk, period=spend.period
        )
        args = [spend.micro, "1" if exact else "0", quota_expire_at_ms(spend.period), ""]
        before, after, reserved_before, reserved_after, released = (
            int(v) for v in script(keys=[key, quota_leases_key(key)], args=args)
        )
        results.append(
            Reconciled(
                spend=spend,
                before=before,
                after=after,
                reserved_before=reserved_before,
                reserved_after=reserved_after,
                released=released,
            )
        )
    return results
