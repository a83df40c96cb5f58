"""The date range and granularity a console page shows, from its query string (``start``,
``end``: ``YYYY-MM-DD``, UTC, inclusive; ``granularity``: ``day`` or ``hour``). Anything missing
or wrong falls back to the last ``DEFAULT_DAYS`` days by day, with a note for the page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Granularity = Literal["day", "hour"]

DEFAULT_DAYS = 30
MAX_DAYS = 366
MAX_HOURLY_DAYS = 31  # beyond this an hourly chart has more bars than pixels


@dataclass(frozen=True, slots=True)
class Window:
    start: dt.date
    end: dt.date
    granularity: Granularity
    note: str = ""

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def query(self) -> str:
        return f"start={self.start.isoformat()}&end={self.end.isoformat()}&granularity={self.granularity}"


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def window_from(
    params: Mapping[str, str],
    *,
    today: dt.date | None = None,
    default_days: int = DEFAULT_DAYS,
    default_granularity: Granularity = "day",
) -> Window:
    today = today or dt.datetime.now(dt.UTC).date()
    end = _date(params.get("end")) or today
    start = _date(params.get("start")) or end - dt.timedelta(days=default_days - 1)
    asked = params.get("granularity") or default_granularity
    granularity: Granularity = "hour" if asked == "hour" else "day"
    note = ""
    if start > end or (end - start).days >= MAX_DAYS:
        note = (
            f"The range must run forward and span at most {MAX_DAYS} days: showing the last {DEFAULT_DAYS}."
        )
        end, start = today, today - dt.timedelta(days=DEFAULT_DAYS - 1)
    if granularity == "hour" and (end - start).days >= MAX_HOURLY_DAYS:
        note = f"Hourly charts cover at most {MAX_HOURLY_DAYS} days: showing days."
        granularity = "day"
    return Window(start=start, end=end, granularity=granularity, note=note)


def quick_ranges(today: dt.date | None = None) -> list[dict[str, object]]:
    """The range picker's shortcuts: the last 2 days by hour, the last 7, 30 and 90 by day."""
    today = today or dt.datetime.now(dt.UTC).date()
    spans: list[tuple[str, int, Granularity]] = [
        ("2 days", 2, "hour"),
        ("7 days", 7, "day"),
        ("30 days", 30, "day"),
        ("90 days", 90, "day"),
    ]
    return [
        {"label": label, "start": today - dt.timedelta(days=n - 1), "end": today, "granularity": g}
        for label, n, g in spans
    ]
