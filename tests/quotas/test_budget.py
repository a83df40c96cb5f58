"""Cost-quota maths, pure, with an injected clock: calendar periods in a time zone (rollover at
the boundary, DST days, ISO weeks, year end), micro-dollar rounding, admission and alert rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from quotas.budget import (
    Period,
    alert_due,
    alert_threshold,
    current_period,
    from_micro,
    quota_admits,
    to_micro,
)

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_day_rolls_over_at_midnight_in_the_zone():
    # 22:59:59.999 UTC is 23:59:59.999 in Paris (winter, UTC+1); one millisecond later it is
    # the next day there.
    before = current_period("day", utc(2026, 1, 14, 22, 59, 59, 999_000), PARIS)
    after = current_period("day", utc(2026, 1, 14, 23, 0, 0), PARIS)

    assert before == Period(
        "d2026-01-14", dt.datetime(2026, 1, 14, tzinfo=PARIS), dt.datetime(2026, 1, 15, tzinfo=PARIS)
    )
    assert after.key == "d2026-01-15"
    assert before.seconds_left(utc(2026, 1, 14, 22, 59, 59, 999_000)) == pytest.approx(0.001)
    assert current_period("day", utc(2026, 1, 14, 23, 30), UTC).key == "d2026-01-14"


def test_dst_days_are_23_and_25_hours_long():
    spring = current_period("day", utc(2026, 3, 8, 12), NEW_YORK)
    autumn = current_period("day", utc(2026, 11, 1, 12), NEW_YORK)

    assert spring.end is not None and spring.start is not None
    assert autumn.end is not None and autumn.start is not None
    assert (spring.end - spring.start).total_seconds() == 23 * 3600
    assert (autumn.end - autumn.start).total_seconds() == 25 * 3600


def test_week_starts_on_monday_in_the_zone():
    sunday_night = current_period("week", utc(2026, 3, 1, 22, 59), PARIS)  # Sunday 23:59 in Paris
    monday = current_period("week", utc(2026, 3, 1, 23, 0), PARIS)  # Monday 00:00 in Paris

    assert sunday_night.key == "w2026-02-23"
    assert monday.key == "w2026-03-02"
    assert monday.start == dt.datetime(2026, 3, 2, tzinfo=PARIS)
    assert monday.end == dt.datetime(2026, 3, 9, tzinfo=PARIS)


def test_month_and_year_end():
    december = current_period("month", utc(2026, 12, 31, 23, 59, 59), UTC)
    january = current_period("month", utc(2027, 1, 1), UTC)
    february = current_period("month", utc(2028, 2, 10), UTC)

    assert (december.key, december.end) == ("m2026-12", utc(2027, 1, 1))
    assert january.key == "m2027-01"
    assert february.end == utc(2028, 3, 1)


def test_lifetime_never_ends():
    period = current_period("lifetime", utc(2026, 5, 5), PARIS)

    assert period == Period("lifetime", None, None)
    assert period.seconds_left(utc(2030, 1, 1)) is None


def test_money_rounds_up_to_the_micro_dollar():
    assert to_micro(Decimal("100.00")) == 100_000_000
    assert to_micro(Decimal("0.0000045")) == 5
    assert to_micro(Decimal("0.000004")) == 4
    assert to_micro(Decimal("0")) == 0
    assert from_micro(4_500_001) == Decimal("4.500001")


def test_hard_quota_admits_up_to_the_limit_including_reservations():
    assert quota_admits(spent=600, reserved=300, amount=100, limit=1_000, hard=True)
    assert not quota_admits(spent=600, reserved=300, amount=101, limit=1_000, hard=True)
    assert quota_admits(spent=5_000, reserved=0, amount=100, limit=1_000, hard=False)


def test_alert_threshold_fires_once():
    threshold = alert_threshold(1_000_000, Decimal("0.8"))

    assert threshold == 800_000
    assert alert_threshold(1_000_000, None) is None
    assert not alert_due(spent=799_999, threshold=threshold, alerted=False)
    assert alert_due(spent=800_000, threshold=threshold, alerted=False)
    assert not alert_due(spent=900_000, threshold=threshold, alerted=True)
    assert not alert_due(spent=10**9, threshold=None, alerted=False)
