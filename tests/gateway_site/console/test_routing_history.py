"""Routing health over time on the routing overview page, in process: per deployment and hour,
the mean latency of successful requests and the share of 429 and 5xx answers, every hour of the
range present (no point where a deployment had no request), labelled by model and deployment."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from django.core.cache import cache

from accounting.recorder import write_events
from providers.models import Deployment
from tests.accounting.events import usage_event
from tests.conftest import mock_echo_yaml, platform_staff
from tests.gateway_site.console.console_pages import chart_specs, series

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_latency_and_error_rate_per_deployment_and_hour(configure, make_key, client):
    configure(mock_echo_yaml())
    deployment = Deployment.objects.get()
    key = make_key("acme", name="a")
    yesterday = dt.datetime.now(dt.UTC).replace(hour=10, minute=5, second=0, microsecond=0) - dt.timedelta(
        days=1
    )

    def event(n, minutes, **changes):
        base = usage_event(key, n, at=yesterday + dt.timedelta(minutes=minutes), model="mock-echo", cost="0")
        return dataclasses.replace(base, **{"deployment_id": deployment.pk, **changes})

    write_events(
        [
            event(1, 0, latency_ms=100.0),
            event(2, 10, latency_ms=300.0),
            event(3, 20, status=502, latency_ms=5000.0),  # not in the latency mean
            event(4, 30, status=429, latency_ms=1.0),
            event(5, 125, latency_ms=50.0),  # 12:10
            event(6, 130, status=400, latency_ms=2.0),  # a client's error: not a failure
            event(7, 0, deployment_id=None),  # answered by no deployment: not charted
        ]
    )
    client.force_login(platform_staff("ops"))
    html = client.get("/admin/routing/").content.decode()  # the last 2 days by hour
    charts = chart_specs(html)
    assert sorted(charts) == ["chart-deployment-errors", "chart-deployment-latency"]
    label = f"mock-echo → mock/{deployment.upstream_model}"
    latency = series(charts["chart-deployment-latency"], label)
    assert len(latency) == 48
    assert [(p[0][11:13], p[1], p[2]) for p in latency if p[1] is not None] == [
        ("10", 200.0, "200.0 ms"),
        ("12", 50.0, "50.0 ms"),
    ]
    errors = series(charts["chart-deployment-errors"], label)
    assert [(p[0][11:13], p[1], p[2]) for p in errors if p[1] is not None] == [
        ("10", 50.0, "50.0%"),
        ("12", 0.0, "0.0%"),
    ]
    assert charts["chart-deployment-errors"]["axis"] == "error rate (%)"
    assert [d["label"] for d in charts["chart-deployment-latency"]["datasets"]] == [label]
    assert charts["chart-deployment-latency"]["legend"] is True
