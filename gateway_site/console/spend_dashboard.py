"""The spend dashboard (``/admin/spend/``, staff only): across every tenant, over a chosen range
and granularity, the totals (requests, tokens, cost, errors, mean latency), their time series,
cost per group (tenant, model, provider or key), and the top tenants, models and keys by cost,
each tenant linking to its usage page.

Everything comes from the rollups plus the records not rolled up yet (``accounting.reports``,
the same numbers as the reports API; the mean latency from the rollups' latency sums), never a
scan of the raw records. The aggregates are cached with Django's cache for
``GATEWAY_CONSOLE_CACHE_SECONDS`` per range, granularity and grouping."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.db.models import Count, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounting.models import UsageRollup
from accounting.reports import GroupBy, Row, Scope, usage_report
from accounting.rollups import unrolled_records
from gateway_site.console.charts import Series, usage_charts
from gateway_site.console.window import Window, quick_ranges, window_from

GROUPS: tuple[GroupBy, ...] = ("tenant", "model", "provider", "key")
TOP = 10
STACKED = 6  # groups drawn one by one in the cost chart; the rest are "other"


def group_label(row: Row, group_by: GroupBy) -> str:
    if group_by == "tenant":
        return str(row.group["tenant_name"] or f"deleted tenant {row.group['tenant_id']}")
    if group_by == "key":
        return str(row.group["key_prefix"] or f"deleted key {row.group['key_id']}")
    return str(row.group[group_by])


def _by_cost(rows: list[Row]) -> list[Row]:
    return sorted(rows, key=lambda r: (-r.cost_usd, -r.requests))


def _latency(window: Window) -> tuple[dict[dt.datetime, float], float | None]:
    """The mean latency per bucket and over the range: the rollups' latency sums over their
    requests (rollups made before the sums were kept, ``latency_ms_sum`` 0, are left out),
    plus the records not rolled up yet."""
    scope = Scope(tenant_id=None, start=window.start, end=window.end)
    sums: dict[dt.datetime, list[float]] = defaultdict(lambda: [0.0, 0.0])
    rolled = (
        UsageRollup.objects.filter(
            granularity=window.granularity,
            bucket_start__gte=scope.since,
            bucket_start__lt=scope.until,
            latency_ms_sum__gt=0,
        )
        .order_by()
        .values("bucket_start")
        .annotate(total=Sum("latency_ms_sum"), n=Sum("requests"))
    )
    trunc = TruncHour("created_at") if window.granularity == "hour" else TruncDay("created_at")
    fresh = (
        unrolled_records()
        .filter(created_at__gte=scope.since, created_at__lt=scope.until)
        .order_by()
        .annotate(bucket_start=trunc)
        .values("bucket_start")
        .annotate(total=Sum("latency_ms"), n=Count("id"))
    )
    for row in [*rolled, *fresh]:
        bucket = sums[row["bucket_start"]]
        bucket[0] += float(row["total"] or 0)
        bucket[1] += float(row["n"] or 0)
    means = {moment: total / n for moment, (total, n) in sums.items() if n}
    total, count = sum(v[0] for v in sums.values()), sum(v[1] for v in sums.values())
    return means, (total / count if count else None)


def aggregates(window: Window, group_by: GroupBy) -> dict[str, Any]:
    """Everything the dashboard shows, as plain data (cacheable)."""
    scope = Scope(tenant_id=None, start=window.start, end=window.end)
    series = usage_report(scope, granularity=window.granularity)
    grouped_series = usage_report(scope, group_by=group_by, granularity=window.granularity)
    tops = {name: _by_cost(usage_report(scope, group_by=name)) for name in ("tenant", "model", "key")}
    groups = tops[group_by] if group_by in tops else _by_cost(usage_report(scope, group_by=group_by))
    latency, mean_latency = _latency(window)
    requests = sum(r.requests for r in series)
    errors = sum(r.errors for r in series)
    return {
        "totals": {
            "requests": requests,
            "errors": errors,
            "error_rate": (Decimal(errors * 100) / requests).quantize(Decimal("0.1")) if requests else None,
            "prompt_tokens": sum(r.prompt_tokens for r in series),
            "completion_tokens": sum(r.completion_tokens for r in series),
            "tokens": sum(r.prompt_tokens + r.completion_tokens for r in series),
            "cost_usd": sum((r.cost_usd for r in series), Decimal(0)),
            "mean_latency_ms": mean_latency,
        },
        "series": series,
        "grouped_series": grouped_series,
        "groups": groups,
        "tops": {name: rows[:TOP] for name, rows in tops.items()},
        "latency": latency,
    }


def _charts(data: dict[str, Any], window: Window, group_by: GroupBy) -> list[dict[str, object]]:
    ranked = [group_label(r, group_by) for r in data["groups"]]
    shown = ranked[:STACKED] if len(ranked) <= STACKED else ranked[: STACKED - 1]
    per_group = {name: Series(name) for name in shown}
    other = Series("other")
    for row in cast(list[Row], data["grouped_series"]):
        if row.bucket is None:
            continue
        target = per_group.get(group_label(row, group_by), other)
        target.values[row.bucket] = Decimal(target.values.get(row.bucket, 0)) + row.cost_usd
    cost_series = [*per_group.values(), *([other] if other.values else [])]
    return usage_charts(data["series"], window, cost=cost_series, latency=data["latency"])


def cached_aggregates(window: Window, group_by: GroupBy) -> dict[str, Any]:
    key = f"console:spend:{window.start}:{window.end}:{window.granularity}:{group_by}"
    data = cache.get(key)
    if data is None:
        data = aggregates(window, group_by)
        cache.set(key, data, timeout=settings.GATEWAY_CONSOLE_CACHE_SECONDS)
    return cast(dict[str, Any], data)


def _rows(rows: list[Row], group_by: GroupBy, window: Window) -> list[dict[str, object]]:
    out = []
    for row in rows:
        link = ""
        if group_by == "tenant" and row.group.get("tenant_id"):
            link = reverse("tenant-usage", args=[row.group["tenant_id"]]) + "?" + window.query()
        out.append({"name": group_label(row, group_by), "link": link, "row": row})
    return out


def spend_dashboard(request: HttpRequest) -> HttpResponse:
    window = window_from(request.GET)
    asked = request.GET.get("group_by", "tenant")
    group_by: GroupBy = next((name for name in GROUPS if name == asked), "tenant")
    data = cached_aggregates(window, group_by)
    context = {
        **admin.site.each_context(request),
        "title": "Spend across tenants",
        "window": window,
        "group_by": group_by,
        "extra_selects": [("group_by", "group by", GROUPS, group_by)],
        "keep": f"&group_by={group_by}",
        "quick_ranges": quick_ranges(),
        "totals": data["totals"],
        "charts": _charts(data, window, group_by),
        "groups": _rows(data["groups"], group_by, window),
        "top_tenants": _rows(data["tops"]["tenant"], "tenant", window),
        "top_models": _rows(data["tops"]["model"], "model", window),
        "top_keys": _rows(data["tops"]["key"], "key", window),
        "cache_seconds": settings.GATEWAY_CONSOLE_CACHE_SECONDS,
    }
    return render(request, "admin/console/spend.html", context)
