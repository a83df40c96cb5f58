"""Routing health over time, on the routing overview page: per deployment and hour (or day) of
the chosen range, the mean latency of its successful requests and its error rate (responses
with status 429 or 5xx, the failures a circuit breaker counts, over all its requests), from the
usage records (they name the deployment that answered; the rollups do not). An index range on
``created_at``, cached with Django's cache for ``GATEWAY_CONSOLE_CACHE_SECONDS``."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDay, TruncHour

from accounting.models import UsageRecord
from gateway_site.console.charts import Series, time_chart
from gateway_site.console.window import Window
from providers.models import Deployment

SHOWN = 8  # deployments charted: the busiest
FAILED = Q(status=429) | Q(status__gte=500)


def _buckets(window: Window) -> list[dict[str, Any]]:
    since = dt.datetime(window.start.year, window.start.month, window.start.day, tzinfo=dt.UTC)
    until = dt.datetime(window.end.year, window.end.month, window.end.day, tzinfo=dt.UTC) + dt.timedelta(
        days=1
    )
    trunc = TruncHour("created_at") if window.granularity == "hour" else TruncDay("created_at")
    return [
        dict(row)
        for row in UsageRecord.objects.filter(
            created_at__gte=since, created_at__lt=until, deployment_id__isnull=False
        )
        .order_by()
        .annotate(bucket=trunc)
        .values("deployment_id", "bucket")
        .annotate(
            requests=Count("id"),
            failures=Count("id", filter=FAILED),
            latency=Avg("latency_ms", filter=Q(status__lt=400)),
        )
    ]


def _label(deployment: Deployment | None, deployment_id: int) -> str:
    if deployment is None:
        return f"deployment {deployment_id} (deleted)"
    return f"{deployment.model.name} → {deployment.provider.name}/{deployment.upstream_model}"


def history_charts(window: Window) -> list[dict[str, object]]:
    key = f"console:routing:{window.start}:{window.end}:{window.granularity}"
    rows = cache.get(key)
    if rows is None:
        rows = _buckets(window)
        cache.set(key, rows, timeout=settings.GATEWAY_CONSOLE_CACHE_SECONDS)
    rows = cast(list[dict[str, Any]], rows)
    totals: dict[int, int] = {}
    for row in rows:
        totals[row["deployment_id"]] = totals.get(row["deployment_id"], 0) + row["requests"]
    busiest = sorted(totals, key=lambda d: (-totals[d], d))[:SHOWN]
    known = Deployment.objects.select_related("model", "provider").in_bulk(busiest)
    latency = {d: Series(_label(known.get(d), d)) for d in busiest}
    errors = {d: Series(_label(known.get(d), d)) for d in busiest}
    for row in rows:
        deployment = row["deployment_id"]
        if deployment not in latency:
            continue
        if row["latency"] is not None:
            latency[deployment].values[row["bucket"]] = float(row["latency"])
        errors[deployment].values[row["bucket"]] = round(100.0 * row["failures"] / row["requests"], 2)
    per = "hour" if window.granularity == "hour" else "day"
    common: dict[str, Any] = {"window": window, "kind": "line", "gaps": True}
    charts = [
        time_chart(
            chart_id="chart-deployment-latency",
            title=f"Mean latency of successful requests per {per}, by deployment",
            unit="ms",
            series=list(latency.values()),
            **common,
        ),
        time_chart(
            chart_id="chart-deployment-errors",
            title=f"Error rate (429 and 5xx) per {per}, by deployment",
            unit="percent",
            series=list(errors.values()),
            **common,
        ),
    ]
    for chart in charts:
        chart["legend"] = True  # the deployment's name, even when it is the only one
    return charts
