"""Quota spend rebuilt from the hourly rollups plus the records not in them: it survives the purge
of raw records (a lifetime quota), and a period that starts and ends off the hour (a time zone
with a half-hour offset) takes its partial hours from the records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from accounting.models import UsageRecord, UsageRollup
from accounting.recorder import UsageEvent, write_events
from accounting.rollups import usage_purge, usage_rollup
from accounting.spend import recorded_spend_micro
from quotas.budget import current_period
from quotas.models import CostQuota
from tests.accounting.events import usage_event

pytestmark = pytest.mark.django_db(transaction=True)
NO_LAG = dt.timedelta(0)
KOLKATA = ZoneInfo("Asia/Kolkata")  # UTC+05:30: its days start at 18:30 UTC


def event(key, n: int, *, at: dt.datetime, cost: str) -> UsageEvent:
    return usage_event(key, n, at=at, model="m", cost=cost)


def test_lifetime_spend_survives_the_purge_of_raw_records(make_key):
    key = make_key("acme")
    lifetime = CostQuota.objects.create(tenant=key.tenant, period="lifetime", limit_usd=Decimal("100"))
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=100)
    write_events([event(key, n, at=old + dt.timedelta(minutes=n), cost="0.0000015") for n in range(3)])
    write_events([event(key, 3, at=now - dt.timedelta(minutes=5), cost="0.25")])
    period = current_period("lifetime", now, dt.UTC)
    assert recorded_spend_micro(lifetime, period) == 3 * 2 + 250_000  # nothing rolled up yet

    usage_rollup(lag=NO_LAG)
    assert usage_purge(cutoff=now - dt.timedelta(days=90)) == 3
    assert UsageRecord.objects.count() == 1

    assert recorded_spend_micro(lifetime, period) == 250_006
    write_events([event(key, 4, at=now, cost="0.000001")])  # not rolled up yet
    assert recorded_spend_micro(lifetime, period) == 250_007
    usage_rollup(lag=NO_LAG)
    assert recorded_spend_micro(lifetime, period) == 250_007


def test_a_period_off_the_hour_takes_its_partial_hours_from_the_records(make_key):
    key = make_key("acme")
    other = make_key("globex")
    daily = CostQuota.objects.create(key_id=key.key_id, period="day", limit_usd=Decimal("1"))
    period = current_period("day", dt.datetime(2026, 11, 20, 12, 0, tzinfo=dt.UTC), KOLKATA)
    assert period.start == dt.datetime(2026, 11, 19, 18, 30, tzinfo=dt.UTC)
    assert period.end == dt.datetime(2026, 11, 20, 18, 30, tzinfo=dt.UTC)
    start, end, minutes = period.start, period.end, dt.timedelta(minutes=10)
    write_events(
        [
            event(key, 1, at=start - minutes, cost="1"),  # the day before, in the same UTC hour
            event(key, 2, at=start + minutes, cost="0.0000015"),  # 2 micro-dollars
            event(key, 3, at=start + 12 * 6 * minutes, cost="0.25"),  # a whole hour
            event(key, 4, at=end - minutes, cost="0.0000021"),  # 3 micro-dollars
            event(key, 5, at=end + minutes, cost="2"),  # the next day, in the same UTC hour
            event(other, 6, at=start + 12 * 6 * minutes, cost="5"),  # another tenant's key
        ]
    )
    usage_rollup(lag=NO_LAG)
    assert UsageRollup.objects.filter(granularity="hour", key_id=key.key_id).count() == 3
    write_events([event(key, 7, at=start + 2 * minutes, cost="0.000001")])  # not rolled up yet

    assert recorded_spend_micro(daily, period) == 2 + 250_000 + 3 + 1


def test_rollups_keep_the_cost_rounded_up_per_record(make_key):
    key = make_key("acme")
    hour = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    write_events([event(key, n, at=hour + dt.timedelta(minutes=n), cost="0.0000001") for n in range(4)])

    usage_rollup(lag=NO_LAG)

    rows = UsageRollup.objects.order_by("granularity").values_list("granularity", "cost_usd", "cost_micro")
    assert list(rows) == [("day", Decimal("0.0000004"), 4), ("hour", Decimal("0.0000004"), 4)]
