"""The admin's routing overview (``/admin/routing/``, and the same numbers as JSON at
``/admin/routing/stats.json``; staff only): each deployment's circuit breaker, its moving
average latency, and the upstream calls of the last minutes with their error rate; below, the
latency and error rate of each deployment over a chosen range (``routing_history``).

With ``REDIS_URL`` the numbers are every instance's, read from the hashes ``routing.sync``
keeps (breakers, latency averages, per-minute call counts); without it, this process's own
routers, which in the embedded setup are the only ones."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from redis.exceptions import RedisError

from gateway_site.console.routing_history import history_charts
from gateway_site.console.window import quick_ranges, window_from
from gateway_site.runtime.process import breaker_policy, get_runtime
from providers.models import Deployment
from quotas.stores.redis_target import sync_client
from routing.breaker import Breaker, current
from routing.stats import CallCounts, merge_totals, minute_of, parse_shared, shared_key
from routing.sync import breakers_key, latency_key

DEFAULT_MINUTES = 15
MAX_MINUTES = 120
_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}


@dataclass(frozen=True, slots=True)
class RoutingView:
    """What is known of every deployment, by id."""

    breakers: dict[int, Breaker]
    latency_ms: dict[int, float]
    calls: dict[int, CallCounts]


@dataclass(frozen=True, slots=True)
class DeploymentStats:
    id: int
    model: str
    provider: str
    kind: str
    upstream_model: str
    enabled: bool
    breaker: str  # closed | half_open | open
    opened_at: float | None
    latency_ms: float | None  # moving average of successful calls
    calls: int
    failures: int
    error_rate: float | None
    mean_latency_ms: float | None


def shared_view(minutes: int) -> RoutingView:
    """Every instance's view, from Redis: one pipelined round trip."""
    prefix = settings.GATEWAY_REDIS_PREFIX
    now = time.time()
    last = minute_of(now)
    client = sync_client(settings.REDIS_URL, timeout=settings.GATEWAY_REDIS_TIMEOUT_SECONDS)
    try:
        with client.pipeline(transaction=False) as pipe:
            pipe.hgetall(breakers_key(prefix))
            pipe.hgetall(latency_key(prefix))
            for minute in range(last - minutes + 1, last + 1):
                pipe.hgetall(shared_key(prefix, minute))
            breakers_raw, latency_raw, *per_minute = pipe.execute()
    finally:
        client.close()
    policy = breaker_policy()
    breakers = {
        int(k): current(policy, Breaker(state="open", opened_at=float(v)), now)
        for k, v in breakers_raw.items()
    }
    return RoutingView(
        breakers=breakers,
        latency_ms={int(k): float(v) for k, v in latency_raw.items()},
        calls=merge_totals(parse_shared(fields) for fields in per_minute),
    )


def local_view(minutes: int) -> RoutingView:
    """This process's routers (one per event loop): the worst breaker state of each deployment."""
    breakers: dict[int, Breaker] = {}
    latency: dict[int, float] = {}
    routers = get_runtime().routers()
    for router in routers:
        for deployment_id, breaker in router.breakers.states().items():
            known = breakers.get(deployment_id)
            if known is None or _SEVERITY[breaker.state] > _SEVERITY[known.state]:
                breakers[deployment_id] = breaker
        latency.update(dict(router.latency.averages()))
    calls = merge_totals(router.stats.window(minutes) for router in routers)
    return RoutingView(breakers=breakers, latency_ms=latency, calls=calls)


def current_view(minutes: int) -> tuple[RoutingView, str]:
    """The view and where it came from: ``redis``, ``process``, or ``process (redis
    unreachable)`` when Redis is configured but did not answer."""
    if not settings.REDIS_URL:
        return local_view(minutes), "process"
    try:
        return shared_view(minutes), "redis"
    except (RedisError, OSError):
        return local_view(minutes), "process (redis unreachable)"


def deployment_stats(view: RoutingView) -> list[DeploymentStats]:
    rows = []
    for d in Deployment.objects.select_related("model", "provider").order_by("model__name", "priority", "pk"):
        breaker = view.breakers.get(d.pk, Breaker())
        counts = view.calls.get(d.pk, CallCounts())
        rows.append(
            DeploymentStats(
                id=d.pk,
                model=d.model.name,
                provider=d.provider.name,
                kind=d.provider.kind,
                upstream_model=d.upstream_model,
                enabled=d.enabled and d.model.enabled and d.provider.enabled,
                breaker=breaker.state,
                opened_at=breaker.opened_at or None,
                latency_ms=_rounded(view.latency_ms.get(d.pk)),
                calls=counts.calls,
                failures=counts.failures,
                error_rate=None if counts.error_rate is None else round(counts.error_rate, 4),
                mean_latency_ms=_rounded(counts.mean_latency_ms),
            )
        )
    return rows


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _minutes(request: HttpRequest) -> int:
    raw = request.GET.get("minutes", "")
    return min(MAX_MINUTES, max(1, int(raw))) if raw.isdigit() else DEFAULT_MINUTES


def overview_page(request: HttpRequest) -> HttpResponse:
    minutes = _minutes(request)
    view, source = current_view(minutes)
    window = window_from(request.GET, default_days=2, default_granularity="hour")
    context = {
        **admin.site.each_context(request),
        "title": "Routing overview",
        "minutes": minutes,
        "rows": deployment_stats(view),
        "source": source,
        "window": window,
        "quick_ranges": quick_ranges(),
        "keep": f"&minutes={minutes}",
        "hidden": [("minutes", minutes)],
        "charts": history_charts(window),
    }
    return render(request, "admin/routing/overview.html", context)


def overview_json(request: HttpRequest) -> JsonResponse:
    minutes = _minutes(request)
    view, source = current_view(minutes)
    return JsonResponse(
        {
            "window_minutes": minutes,
            "source": source,
            "deployments": [asdict(row) for row in deployment_stats(view)],
        }
    )
