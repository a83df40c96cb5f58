"""The spend dashboard (``/admin/spend/``, staff only): across every tenant, over a chosen range
and granularity, the totals (requests, tokens, cost, errors, mean latency), their time series,
cost per group (tenant, model, provider or key), and the top tenants, models and keys by cost,
each tenant linking to its usage page.

Everything but latency comes from the rollups (``accounting.reports``, the same numbers as the
reports API); latency, which the rollups do not keep, is averaged from the raw records of the
range (an index range scan on ``created_at``). The aggregates are cached with Django's cache for
``GATEWAY_CONSOLE_CACHE_SECONDS`` per range, granularity and grouping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.db.models import Avg
from django.db.models.functions import TruncDay, TruncHour
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from accounting.models import UsageRecord
from accounting.reports import GroupBy, Row, Scope, usage_report
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
    since = dt.datetime(window.start.year, window.start.month, window.start.day, tzinfo=dt.UTC)
    until = dt.datetime(window.end.year, window.end.month, window.end.day, tzinfo=dt.UTC) + dt.timedelta(
        days=1
    )
    records = UsageRecord.objects.filter(created_at__gte=since, created_at__lt=until).order_by()
    trunc = TruncHour("created_at") if window.granularity == "hour" else TruncDay("created_at")
    per_bucket = {
        row["bucket"]: float(row["mean"])
        for row in records.annotate(bucket=trunc).values("bucket").annotate(mean=Avg("latency_ms"))
    }
    overall = records.aggregate(mean=Avg("latency_ms"))["mean"]
    return per_bucket, (float(overall) if overall is not None else None)


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
