"""Cost-quota maths: calendar periods, money in integer micro-dollars, the admission and alert
rules. Pure: the time is always passed in.

Money is ``Decimal`` in Python and integer micro-dollars in the counters. Every amount that
enters a counter is rounded *up* to the micro-dollar (a reservation, and each request's actual
cost), so the counted spend is never below the true spend and a hard limit holds in true
dollars; the usage records keep the exact cost."""

from __future__ import annotations

import datetime as dt
import functools
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

PeriodName = Literal["day", "week", "month", "lifetime"]
MICRO = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a quota: ``key`` names it in counters (``d2026-03-08``, ``w2026-03-02``,
    ``m2026-03``, ``lifetime``); ``end`` is None for a lifetime quota."""

    key: str
    start: dt.datetime | None
    end: dt.datetime | None

    def seconds_left(self, now: dt.datetime) -> float | None:
        return None if self.end is None else max(0.0, (self.end - now).total_seconds())


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    # Wall-clock midnight in the zone (a DST day is 23 or 25 hours long, as a calendar day is),
    # as a UTC instant: arithmetic on aware datetimes of one zone ignores its offset changes.
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz).astimezone(dt.UTC)


def current_period(period: PeriodName, now: dt.datetime, tz: ZoneInfo) -> Period:
    """The calendar period containing ``now`` (an aware datetime) in the zone ``tz``."""
    if period == "lifetime":
        return Period("lifetime", None, None)
    return _period_of_day(period, now.astimezone(tz).date(), tz)


@functools.lru_cache(maxsize=256)
def _period_of_day(period: PeriodName, today: dt.date, tz: ZoneInfo) -> Period:
    if period == "day":
        start, end = today, today + dt.timedelta(days=1)
        key = f"d{start.isoformat()}"
    elif period == "week":
        start = today - dt.timedelta(days=today.weekday())  # ISO weeks start on Monday
        end = start + dt.timedelta(days=7)
        key = f"w{start.isoformat()}"
    else:
        start = today.replace(day=1)
        end = (start + dt.timedelta(days=32)).replace(day=1)
        key = f"m{start:%Y-%m}"
    return Period(key, _midnight(start, tz), _midnight(end, tz))


def to_micro(amount: Decimal) -> int:
    """Dollars to integer micro-dollars, rounded up."""
    return int((amount * MICRO).to_integral_value(rounding=ROUND_CEILING))


def from_micro(micro: int) -> Decimal:
    return Decimal(micro) / MICRO


def alert_threshold(limit_micro: int, alert_at: Decimal | None) -> int | None:
    """The spend in micro-dollars at which the alert fires (None: no alert)."""
    if alert_at is None:
        return None
    return max(1, math.ceil(Decimal(limit_micro) * alert_at))


def quota_admits(*, spent: int, reserved: int, amount: int, limit: int, hard: bool) -> bool:
    """Whether a reservation of ``amount`` fits: a soft quota always admits; a hard one only
    while settled spend, reservations in flight and this request stay within the limit."""
    return not hard or spent + reserved + amount <= limit


def alert_due(*, spent: int, threshold: int | None, alerted: bool) -> bool:
    return threshold is not None and not alerted and spent >= threshold
