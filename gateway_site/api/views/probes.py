"""Liveness, readiness and health probes (no authentication, no middleware)."""

from __future__ import annotations

import os

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from gateway_site.api.responses import json_response
from gateway_site.runtime.health import database_ok, redis_ok
from gateway_site.runtime.overload import LoadGate
from gateway_site.runtime.periodic import celery_report
from gateway_site.runtime.process import get_runtime


async def live(request: HttpRequest) -> HttpResponse:
    return json_response({"status": "ok"})


async def ready(request: HttpRequest) -> HttpResponse:
    checks = {"database": "ok" if await database_ok() else "unavailable"}
    if settings.REDIS_URL:
        checks["redis"] = "ok" if await redis_ok() else "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return json_response(
        {"status": "ok" if healthy else "unavailable", "checks": checks}, status=200 if healthy else 503
    )


async def health(request: HttpRequest) -> HttpResponse:
    runtime = get_runtime()
    snapshot = runtime.watcher.current()
    return json_response(
        {
            "status": "ok",
            "pid": os.getpid(),
            "config_revision": snapshot.revision,
            "models": len(snapshot.catalog.models),
            "limits": {
                "store": "redis" if settings.REDIS_URL else "process",
                "admitted_unchecked": runtime.admitted_unchecked(),
            },
            "load": _load(runtime.gate()),
            "periodic": runtime.beat.report()
            if runtime.beat
            else celery_report(settings.CELERY_BEAT_SCHEDULE),
        }
    )


def _load(gate: LoadGate) -> dict[str, object]:
    """This worker's admission gate: requests in flight, the event loop's lag and the bounds."""
    return {
        "in_flight": gate.in_flight,
        "max_in_flight": gate.max_in_flight,
        "loop_lag_ms": round(gate.monitor.lag() * 1000, 3),
        "max_loop_lag_ms": round(gate.max_lag * 1000, 3),
    }
