"""The admin's usage page per tenant (``/admin/usage/<tenant id>/``, staff only; a tenant
admin only their tenants'): over a chosen
range (``window``) and granularity, the cost, tokens, requests and errors per bucket and tokens
by model (Chart.js, ``charts``), the current period's spend against each cost quota, and the top
keys. Reads rollups (``accounting.reports``), never the raw records, except for quota spend
without Redis."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import cast

from django.conf import settings
from django.contrib import admin
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from accounting.reports import Row, Scope, usage_report
from accounting.spend import recorded_spend_micro
from gateway_site.console.charts import category_chart, usage_charts
from gateway_site.console.window import Window, quick_ranges, window_from
from quotas.budget import PeriodName, current_period, from_micro
from quotas.models import CostQuota, Tenant
from quotas.policy import quota_counter_key
from quotas.stores.redis_target import sync_client
from quotas.tenancy import visible_tenant_ids

TOP_KEYS = 10


def _quota_rows(tenant: Tenant) -> list[dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    quotas = CostQuota.objects.filter(tenant=tenant) | CostQuota.objects.filter(key__tenant=tenant)
    client = sync_client(settings.REDIS_URL, timeout=2) if settings.REDIS_URL else None
    rows = []
    try:
        for quota in quotas.select_related("key").order_by("id"):
            period = current_period(cast(PeriodName, quota.period), now, settings.GATEWAY_QUOTA_TIMEZONE)
            if client is not None:
                key = quota_counter_key(
                    settings.GATEWAY_REDIS_PREFIX, tenant_id=tenant.pk, quota_id=quota.pk, period=period
                )
                spent = from_micro(int(client.hget(key, "spent") or 0))
            else:
                spent = from_micro(recorded_spend_micro(quota, period))
            share = (spent / quota.limit_usd * 100) if quota.limit_usd else Decimal(0)
            rows.append(
                {
                    "owner": f"key {quota.key.prefix}" if quota.key else "tenant",
                    "period": quota.period,
                    "limit": quota.limit_usd,
                    "spent": spent,
                    "percent": min(share, Decimal(100)).quantize(Decimal("0.1")),
                    "hard": quota.hard,
                }
            )
    finally:
        if client is not None:
            client.close()
    return rows


def _charts(rows: list[Row], by_model: list[Row], window: Window) -> list[dict[str, object]]:
    """The charts of a usage page, from a time series (``rows``) and totals per model."""
    models = {str(r.group["model"]): r.prompt_tokens + r.completion_tokens for r in by_model}
    return [
        *usage_charts(rows, window),
        category_chart(chart_id="chart-models", title="Tokens by model", unit="tokens", values=models),
    ]


def tenant_usage(request: HttpRequest, tenant_id: int) -> HttpResponse:
    visible = visible_tenant_ids(request.user)
    if visible is not None and tenant_id not in visible:
        raise Http404("No such tenant.")  # a tenant admin: another tenant does not exist for them
    tenant = get_object_or_404(Tenant, pk=tenant_id)
    window = window_from(request.GET)
    scope = Scope(tenant_id=tenant.pk, start=window.start, end=window.end)
    series = usage_report(scope, granularity=window.granularity)
    by_model = usage_report(scope, group_by="model")
    keys = sorted(usage_report(scope, group_by="key"), key=lambda r: r.cost_usd, reverse=True)[:TOP_KEYS]
    context = {
        **admin.site.each_context(request),
        "title": f"Usage of {tenant.name}",
        "tenant": tenant,
        "window": window,
        "quick_ranges": quick_ranges(),
        "charts": _charts(series, by_model, window),
        "total_cost": sum((r.cost_usd for r in series), Decimal(0)),
        "total_requests": sum(r.requests for r in series),
        "quotas": _quota_rows(tenant),
        "top_keys": keys,
        "tenants": Tenant.objects.order_by("name")
        .only("id", "name")
        .filter(*([] if visible is None else [Q(pk__in=sorted(visible))])),
    }
    return render(request, "admin/usage/tenant.html", context)
