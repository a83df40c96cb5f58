"""Chart specifications for the console pages, drawn in the browser by the vendored Chart.js
(``static/console/vendor``, no network) through ``static/console/charts.js``; the template
``admin/console/chart.html`` puts one on a page. The server decides everything a reader needs:

* a real timeline: every bucket (hour or day, UTC) from the range's start to its end, buckets
  without usage as zero;
* a unit per chart (``usd``, ``tokens``, ``requests``, ``ms``) naming the y-axis;
* each point's hover text, money written by ``quotas.money.usd`` (the one format).

Bucket times are sent without an offset (``2026-03-10T00:00:00``): the browser reads them as
its local wall clock, so the axis shows UTC hours and days wherever the reader is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from accounting.reports import Row
from gateway_site.console.window import Granularity, Window
from quotas.money import usd

Unit = Literal["usd", "tokens", "requests", "ms", "percent"]
AXIS_TITLES: dict[str, str] = {
    "usd": "cost (US dollars)",
    "tokens": "tokens",
    "requests": "requests",
    "ms": "latency (milliseconds)",
    "percent": "error rate (%)",
}
# Distinct, colour-blind-safe hues (Okabe-Ito), the same order on every page.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999")
MAX_BUCKETS = 24 * 92  # an hourly chart of three months


def hover_text(value: Decimal | int | float, unit: str) -> str:
    if unit == "usd":
        return usd(value)
    if unit == "ms":
        return f"{float(value):,.1f} ms"
    if unit == "percent":
        return f"{float(value):.1f}%"
    return f"{int(value):,} {unit}"


def buckets(start: dt.date, end: dt.date, granularity: Granularity) -> list[dt.datetime]:
    """Every bucket start from ``start`` 00:00 UTC to the end of ``end`` (inclusive)."""
    step = dt.timedelta(hours=1) if granularity == "hour" else dt.timedelta(days=1)
    moment = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)
    until = dt.datetime(end.year, end.month, end.day, tzinfo=dt.UTC) + dt.timedelta(days=1)
    out: list[dt.datetime] = []
    while moment < until and len(out) < MAX_BUCKETS:
        out.append(moment)
        moment += step
    return out


@dataclass(slots=True)
class Series:
    label: str
    values: dict[dt.datetime, Decimal | int | float] = field(default_factory=dict)


def _number(value: Decimal | int | float) -> float | int:
    return int(value) if isinstance(value, int) else float(value)


def time_chart(
    *,
    chart_id: str,
    title: str,
    unit: Unit,
    series: Iterable[Series],
    window: Window,
    kind: Literal["bar", "line"] = "bar",
    stacked: bool = False,
    gaps: bool = False,
) -> dict[str, object]:
    """A chart over time: one dataset per series, a point for every bucket: zero where the
    series has none, or (``gaps``, for averages such as latency) no point, the line broken."""
    moments = buckets(window.start, window.end, window.granularity)
    datasets = []
    for index, one in enumerate(series):
        points: list[dict[str, object]] = []
        for moment in moments:
            if gaps and moment not in one.values:
                points.append(
                    {"x": moment.replace(tzinfo=None).isoformat(), "y": None, "text": "no requests"}
                )
                continue
            value = one.values.get(moment, 0)
            points.append(
                {
                    "x": moment.replace(tzinfo=None).isoformat(),
                    "y": _number(value),
                    "text": hover_text(value, unit),
                }
            )
        datasets.append({"label": one.label, "color": PALETTE[index % len(PALETTE)], "points": points})
    return {
        "id": chart_id,
        "type": kind,
        "title": title,
        "unit": unit,
        "axis": AXIS_TITLES[unit],
        "time_unit": window.granularity,
        "stacked": stacked,
        "datasets": datasets,
    }


def category_chart(
    *, chart_id: str, title: str, unit: Unit, values: Mapping[str, Decimal | int | float]
) -> dict[str, object]:
    """Horizontal bars, one per name (names on the y-axis, never cut), largest first."""
    ordered = sorted(values.items(), key=lambda item: item[1], reverse=True)
    return {
        "id": chart_id,
        "type": "category",
        "title": title,
        "unit": unit,
        "axis": AXIS_TITLES[unit],
        "datasets": [
            {
                "label": AXIS_TITLES[unit],
                "color": PALETTE[0],
                "points": [{"x": name, "y": _number(v), "text": hover_text(v, unit)} for name, v in ordered],
            }
        ],
    }


def usage_charts(
    rows: list[Row],
    window: Window,
    *,
    cost: list[Series] | None = None,
    latency: Mapping[dt.datetime, float] | None = None,
) -> list[dict[str, object]]:
    """Cost, tokens, and requests with errors per bucket from a usage time series (``rows``);
    ``cost``: other series for the cost chart (stacked), instead of the rows' cost; ``latency``:
    a mean latency per bucket, drawn as a line (broken where there is none)."""
    own_cost, tokens = Series("cost"), Series("tokens")
    requests, errors = Series("requests"), Series("errors")
    for row in rows:
        if row.bucket is None:
            continue
        own_cost.values[row.bucket] = row.cost_usd
        tokens.values[row.bucket] = row.prompt_tokens + row.completion_tokens
        requests.values[row.bucket] = row.requests
        errors.values[row.bucket] = row.errors
    per = "hour" if window.granularity == "hour" else "day"
    charts = [
        time_chart(
            chart_id="chart-cost",
            title=f"Cost per {per}",
            unit="usd",
            series=cost if cost is not None else [own_cost],
            stacked=cost is not None,
            window=window,
        ),
        time_chart(
            chart_id="chart-tokens", title=f"Tokens per {per}", unit="tokens", series=[tokens], window=window
        ),
        time_chart(
            chart_id="chart-requests",
            title=f"Requests and errors per {per}",
            unit="requests",
            series=[requests, errors],
            window=window,
        ),
    ]
    if latency is not None:
        charts.append(
            time_chart(
                chart_id="chart-latency",
                title=f"Mean latency per {per}",
                unit="ms",
                series=[Series("mean latency", dict(latency))],
                kind="line",
                gaps=True,
                window=window,
            )
        )
    return charts
